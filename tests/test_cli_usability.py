"""The command line as a new user meets it, run as a real process: no network said in one line
within about 10 s (which host, what to try) with each retry shown as it happens; a byte bar whose
percentage never goes back; help with examples; messages that say what is wrong and what to do;
and the notebooks copied out of the installed package."""

import io
import json
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG

HOST = "stemlab-no-such-host.invalid"

# Imported by the child process before stemlab: every name but loopback fails to resolve, as it
# does with no network, and nothing is sent anywhere (not even a DNS query) beyond 127.0.0.1.
NO_NETWORK = '''
import socket
_real = socket.getaddrinfo

def _offline(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real(host, *args, **kwargs)

socket.getaddrinfo = _offline
'''


def stemlab(*args, env=None, timeout=120, cwd=None, drop=()):
    full_env = {name: value for name, value in {**os.environ, **(env or {})}.items() if name not in drop}
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("stemlab: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert CQTAI_KEY not in result.stderr and APIFRAME_KEY not in result.stderr
    return lines[-1]


# -- network failures --------------------------------------------------------------------------------

def test_a_refused_connection_is_said_within_10_s_with_every_retry_shown(sandbox_env, tmp_path):
    port = closed_port()
    env = {**sandbox_env, "STEMLAB_CQTAI_URL": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    result = stemlab("fetch", "cqtai", CLIP_ID, env=env, drop=["STEMLAB_RETRY_DELAY"])  # the delays a user gets
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    error = error_line(result)
    assert f"cannot reach 127.0.0.1:{port} (connection refused)" in error
    assert "internet connection" in error and "STEMLAB_CQTAI_URL" in error and "stemlab sandbox" in error
    assert "nothing was submitted" in error and "ConnectError" not in error and "--force" not in error
    said = int(re.search(r"after 5 tries in (\d+) s", error).group(1))
    assert said <= 10 and took < 20, (said, took)
    notices = result.stderr.strip().splitlines()[:-1]
    assert len(notices) == 4, result.stderr
    for n, notice in enumerate(notices, start=2):
        assert re.fullmatch(rf"stemlab: cannot reach 127\.0\.0\.1:{port} \(connection refused\); retrying the CQTAI "
                            rf"submit in \d+\.\d s \(try {n} of 5\)", notice), notice
    # nothing was sent, so nothing is remembered: a later fetch submits normally
    assert not any((tmp_path / "cache").rglob("job.json"))


def test_quiet_keeps_only_the_error(sandbox_env):
    env = {**sandbox_env, "STEMLAB_CQTAI_URL": f"http://127.0.0.1:{closed_port()}"}
    result = stemlab("fetch", "cqtai", CLIP_ID, "--quiet", env=env)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot reach 127.0.0.1" in error_line(result)


def test_a_name_that_does_not_resolve_is_said_with_its_setting(sandbox_env, tmp_path):
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**sandbox_env, "STEMLAB_APIFRAME_URL": f"https://{HOST}", "PYTHONPATH": os.pathsep.join([str(tmp_path / "offline"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = stemlab("fetch", "apiframe", "a1b2c3d4", "--index", "1", env=env)
    assert result.returncode == 3, result.stderr
    error = error_line(result)
    assert f"cannot reach {HOST} (the name does not resolve)" in error
    assert f"STEMLAB_APIFRAME_URL (now https://{HOST})" in error and "stemlab sandbox" in error
    assert "Errno" not in error
    assert "retrying the Apiframe submit" in result.stderr


def test_a_poll_that_loses_the_network_says_the_job_is_kept(sandbox, settings):
    """The same rule in Python: the host, what to try, and that fetching again costs nothing."""
    from stemlab.errors import NetworkError
    from stemlab.fetching import fetch

    sandbox.polls_to_complete = 50
    sandbox.faults.add("cqtai.poll", "drop", times=100)
    with pytest.raises(NetworkError) as caught:
        fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    message = str(caught.value)
    assert "the CQTAI poll failed" in message and "127.0.0.1" in message
    assert "the job is kept" in message and "no new charge" in message and "STEMLAB_CQTAI_URL" in message


# -- progress ----------------------------------------------------------------------------------------

def _percentages(text: str, desc: str) -> list[int]:
    frames = re.split(r"[\r\n]", text)
    return [int(m.group(1)) for frame in frames if (m := re.search(rf"{re.escape(desc)}:\s*(\d+)%", frame))]


def test_the_byte_bar_never_goes_back(sandbox, settings, monkeypatch):
    """Every frame the bar draws (none skipped) is at or above the one before, up to 100%."""
    from tqdm.std import tqdm

    import stemlab.progress
    from stemlab.fetching import fetch

    screen = io.StringIO()
    monkeypatch.setattr(stemlab.progress, "progress_bar", lambda **kw: tqdm(file=screen, mininterval=0, miniters=1,
                                                                     ncols=120, leave=False, **kw))
    fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=True)
    seen = _percentages(screen.getvalue(), "cqtai stems")
    assert seen and seen == sorted(seen) and seen[-1] == 100, seen


def test_the_byte_bar_never_goes_back_at_a_terminal(sandbox_env):
    """The same through the CLI, its stderr a terminal (where the bars are drawn)."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "stemlab", "fetch", "cqtai", CLIP_ID], stdout=subprocess.PIPE,
                               stderr=slave, env={**os.environ, **sandbox_env})
    os.close(slave)
    screen = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    assert process.returncode == 0, screen.decode(errors="replace")
    assert b"12 stems" in out
    seen = _percentages(screen.decode(errors="replace"), "cqtai stems")
    assert seen and seen == sorted(seen), seen


# -- help --------------------------------------------------------------------------------------------

def test_stemlab_alone_prints_the_help():
    result = stemlab()
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: stemlab") and "fetch" in result.stdout and "examples:" in result.stdout


@pytest.mark.parametrize("command", [
    ("fetch",), ("fetch", "cqtai"), ("fetch", "apiframe"), ("check",), ("compare",), ("cache",), ("cache", "ls"),
    ("cache", "du"), ("cache", "clean"), ("cache", "verify"), ("ls",), ("sandbox",), ("demo",), ("notebooks",),
    ("midi",), ("export",), ("study",), ("pack", "export"), ("pack", "import"), ("pack", "ls"),
])
def test_every_command_help_shows_examples(command):
    result = stemlab(*command, "--help")
    assert result.returncode == 0, result.stderr
    examples = [line for line in result.stdout.split("\nexamples:\n", 1)[1].splitlines() if line.strip()]
    assert 1 <= len(examples) <= 2, result.stdout
    for line in examples:
        assert line.startswith("  stemlab ") and f" {' '.join(command)}" in line, line


def test_port_has_a_help_text():
    result = stemlab("sandbox", "--help")
    assert re.search(r"--port PORT\s+the port on 127\.0\.0\.1", result.stdout), result.stdout


def test_provider_names_take_any_case(sandbox_env, sandbox, settings):
    result = stemlab("fetch", "CQTAI", CLIP_ID, "--two", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["provider"] == "cqtai"
    song = sandbox.song(SONG)
    again = stemlab("fetch", "ApiFrame", song.parent_job_id, "--index", "1", "--quiet")
    assert again.returncode == 0 and "apiframe job" in again.stdout, again.stderr

    import stemlab as api

    assert api.fetch("CqtAI", clip_id=CLIP_ID, two=True, settings=settings, progress=False).provider == "cqtai"


# -- messages ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (("check", "./no-such-folder"), "the folder ./no-such-folder does not exist"),
    (("check", "no-such-folder"), "there is no folder no-such-folder here"),
    (("compare", "./a", "./b"), "the folder ./a does not exist"),
])
def test_a_folder_that_does_not_exist_is_said(sandbox_env, args, words, tmp_path):
    result = stemlab(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and words in error_line(result)
    assert "stemlab ls" in result.stderr  # what to do


def test_no_key_names_the_environment_variable_first(sandbox_env, sandbox):
    result = stemlab("fetch", "cqtai", CLIP_ID, env={"CQTAI_API_KEY": ""})
    assert result.returncode == 2
    error = error_line(result)
    assert 0 <= error.index("CQTAI_API_KEY") < error.index("api_key=") and sandbox.requests == []


# -- the notebooks ----------------------------------------------------------------------------------

def test_notebooks_are_copied_out_and_never_overwritten_unasked(tmp_path):
    target = tmp_path / "nb"
    result = stemlab("notebooks", str(target))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in target.iterdir())
    assert names == ["01_explore_stems.ipynb", "02_compare_providers.ipynb", "03_teach_source_separation.ipynb",
                     "04_from_stems_to_notes.ipynb"]
    for name in names:
        assert str(target / name) in result.stdout
        assert json.loads((target / name).read_text())["cells"]
    (target / names[0]).write_text("my edits")
    refused = stemlab("notebooks", str(target))
    assert refused.returncode == 2 and "--force" in error_line(refused)
    assert (target / names[0]).read_text() == "my edits"
    assert stemlab("notebooks", str(target), "--force").returncode == 0
    assert (target / names[0]).read_text() != "my edits"


def test_notebooks_default_folder(tmp_path):
    result = stemlab("notebooks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "stemlab-notebooks").glob("*.ipynb"))) == 4
