"""``python -m stemlab`` runs the command line."""

import sys

from .cli import entry

sys.exit(entry())
