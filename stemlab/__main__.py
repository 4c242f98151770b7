"""``python -m stemlab`` runs the command line."""

import sys

from .cli import entry

if __name__ == "__main__":  # not when a worker process (dask, multiprocessing) imports it
    sys.exit(entry())
