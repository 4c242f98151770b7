"""Files that are whole or absent get the mode a plain open() gives, under any umask."""

import os
import stat

import pytest

from stemlab.files import atomic_write_bytes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    """mkstemp alone gives 0600: a report written that way could not be served or shared."""
    old = os.umask(umask)
    try:
        path = atomic_write_bytes(tmp_path / "report.html", b"<!doctype html>")
        plain = tmp_path / "plain.html"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
