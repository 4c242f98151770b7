"""Text that is safe to show in a terminal.

A provider's labels, job ids and error words reach the screen. An escape sequence among them
(ANSI colours, OSC 8 links, OSC 52 clipboard writes, a cursor jump that hides a line) would act on
the user's terminal instead of being read. :func:`printable` removes every escape sequence and
every other control character, keeping line breaks and tabs; :class:`PrintableStream` applies
it to everything written to a stream (the CLI wraps its stdout in one).

>>> printable("vocals\\x1b[31m red\\x1b[0m\\x1b]8;;https://x.example\\x07link\\x1b]8;;\\x07\\rok\\n")
'vocals redlinkok\\n'
"""

from __future__ import annotations

import re
from typing import TextIO

__all__ = ["printable", "PrintableStream"]

_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"   # OSC ... BEL or ST (links, titles, clipboard)
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"       # DCS, PM, APC, SOS strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"            # CSI: colours, cursor moves, erases
    r"|\x9b[0-?]*[ -/]*[@-~]?"              # the 8-bit CSI
    r"|\x1b[ -/]*[0-~]?"                    # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps \t and \n


def printable(text: str) -> str:
    """``text`` without escape sequences or control characters (``\\n`` and ``\\t`` stay)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", str(text)))


class PrintableStream:
    """A text stream that passes everything through :func:`printable` before writing it.

    >>> import io
    >>> out = io.StringIO()
    >>> print("job \\x1b[2Jid", file=PrintableStream(out))
    >>> out.getvalue()
    'job id\\n'
    """

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str):  # flush, isatty, encoding, fileno...
        return getattr(self._stream, name)
