"""Progress bars that work in terminals and notebooks (``tqdm.auto``), and can be switched off.

>>> with byte_bar(desc="download", enabled=False) as bar:
...     bar.grow(100); bar.advance(100)
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from .terminal import printable

__all__ = ["byte_bar", "job_bar"]


class _Bar:
    """A thread-safe facade over a tqdm bar (or over nothing, when disabled)."""

    def __init__(self, bar):
        self._bar = bar
        self._lock = threading.Lock()

    def grow(self, n: int) -> None:
        """Add ``n`` to the expected total."""
        if self._bar is not None:
            with self._lock:
                self._bar.total = (self._bar.total or 0) + n
                self._bar.refresh()

    def advance(self, n: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(n)

    def note(self, text: str) -> None:
        """Show ``text`` beside the bar (e.g. "cqtai asked to wait 60 s")."""
        if self._bar is not None:
            with self._lock:
                self._bar.set_postfix_str(printable(text), refresh=True)

    def set(self, value: float, *, note: str | None = None) -> None:
        """Move to an absolute position (for job progress in percent)."""
        if self._bar is not None:
            with self._lock:
                self._bar.n = value
                if note:
                    self._bar.set_postfix_str(printable(note), refresh=False)
                self._bar.refresh()


def _tqdm(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, leave=False, **{**kwargs, "desc": printable(kwargs["desc"])})


@contextlib.contextmanager
def byte_bar(*, desc: str, enabled: bool = True) -> Iterator[_Bar]:
    """A bar counting bytes, whose total grows as sizes become known."""
    bar = _tqdm(desc=desc, total=0, unit="B", unit_scale=True, unit_divisor=1024) if enabled else None
    try:
        yield _Bar(bar)
    finally:
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def job_bar(*, desc: str, enabled: bool = True) -> Iterator[_Bar]:
    """A bar for a provider job: percent when the provider reports it, elapsed time otherwise."""
    bar = _tqdm(desc=desc, total=100, unit="%", bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                "{elapsed} {postfix}") if enabled else None
    try:
        yield _Bar(bar)
    finally:
        if bar is not None:
            bar.close()
