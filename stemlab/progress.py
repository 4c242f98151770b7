"""Progress bars that work in terminals and notebooks (``tqdm.auto``), and can be switched off.

A byte bar that is told how many files are coming (``files=``) holds still until each one's size
is known, so its percentage never goes backwards as downloads start:

>>> with byte_bar(desc="download", files=2, enabled=False) as bar:
...     bar.sized(100); bar.advance(60); bar.sized(300); bar.advance(340)
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

from .terminal import printable

__all__ = ["progress_bar", "byte_bar", "job_bar", "above_bars"]


class _Bar:
    """A thread-safe facade over a tqdm bar (or over nothing, when disabled)."""

    def __init__(self, bar, *, files: int = 0):
        self._bar = bar
        self._lock = threading.Lock()
        self._waiting = files  # sizes still to come before the bar moves
        self._sizes: list[int | None] = []
        self._held = 0  # bytes that arrived while sizes were still to come

    def grow(self, n: int) -> None:
        """Add ``n`` to the expected total."""
        if self._bar is not None:
            with self._lock:
                self._bar.total = (self._bar.total or 0) + n
                self._bar.refresh()

    def sized(self, total: int | None) -> None:
        """One of the expected files' size (None: unknown; the bar then counts bytes, with no
        percentage). Once every file's size is known, the bar shows the total and moves."""
        if self._bar is None:
            return
        with self._lock:
            if self._waiting <= 0:  # not expected: the total grows
                self._bar.total = (self._bar.total or 0) + (total or 0)
                self._bar.refresh()
                return
            self._sizes.append(total)
            self._waiting -= 1
            if self._waiting == 0:
                if None not in self._sizes:  # reset: a notebook's bar takes its new length too
                    self._bar.reset(total=sum(self._sizes))
                self._bar.update(self._held)
                self._held = 0
                self._bar.refresh()

    def advance(self, n: int) -> None:
        if self._bar is not None:
            with self._lock:
                if self._waiting > 0:
                    self._held += n
                else:
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


def progress_bar(**kwargs):
    """A ``tqdm.auto`` bar (``leave=False`` unless given). In a notebook, where that bar is a
    widget, the finished bar becomes its last line as text, so a saved notebook holds no view of
    a closed widget ("Error displaying widget: model not found" on reopen).

    >>> with progress_bar(desc="demo", total=2, disable=True) as bar:
    ...     bar.update(2)
    """
    from tqdm.auto import tqdm

    options = {"dynamic_ncols": True, "leave": False, **kwargs, "desc": printable(kwargs["desc"])}
    notebook = sys.modules.get("tqdm.notebook")
    if notebook is not None and issubclass(tqdm, notebook.tqdm):
        return _text_when_done(tqdm)(**options)
    return tqdm(**options)


def _text_when_done(base):
    """``base`` (a notebook tqdm class) whose bar, once closed, is replaced by a line of text."""
    class TextWhenDone(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self._handle = None
            if hasattr(self, "container"):  # not disabled
                from IPython.display import display

                self._handle = display(self.container, display_id=True)

        def close(self):
            handle, self._handle = getattr(self, "_handle", None), None
            line = self.format_meter(**{**self.format_dict, "ncols": None}) if handle is not None else ""
            super().close()
            if handle is not None:
                handle.update({"text/plain": line}, raw=True)
                for widget in (*self.container.children, self.container):
                    widget.close()

    return TextWhenDone


@contextlib.contextmanager
def byte_bar(*, desc: str, enabled: bool = True, files: int = 0) -> Iterator[_Bar]:
    """A bar counting bytes. With ``files``, it stays at 0 until that many sizes are known
    (:meth:`_Bar.sized`), then moves towards their sum; without, its total grows (:meth:`_Bar.grow`)."""
    bar = progress_bar(desc=desc, total=0, unit="B", unit_scale=True, unit_divisor=1024) if enabled else None
    try:
        yield _Bar(bar, files=files)
    finally:
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def job_bar(*, desc: str, enabled: bool = True) -> Iterator[_Bar]:
    """A bar for a provider job: percent when the provider reports it, elapsed time otherwise."""
    bar = progress_bar(desc=desc, total=100, unit="%", bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                "{elapsed} {postfix}") if enabled else None
    try:
        yield _Bar(bar)
    finally:
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def above_bars() -> Iterator[None]:
    """Write a line to stderr above the terminal's progress bars: they are cleared, then redrawn
    below it (a no-op when no bar was ever made)."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        yield
        return
    with std.tqdm.external_write_mode(file=sys.stderr):
        yield
