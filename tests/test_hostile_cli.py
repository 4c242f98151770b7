"""What a user sees at the terminal when answers are hostile: no escape sequence acts on it, no
decoder noise breaks the one-line rule, a wait or a missing source is said, Ctrl-C stops at once,
and odd ids neither change a request's path nor share a folder."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG
from stemlab.cache import Cache
from stemlab.fetching import fetch

KEY = f"cqtai-12-{CLIP_ID}"
ESCAPES = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x1b]8;;https://evil.example\x07"


def cli(*args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)


def start_cli(*args, env):
    return subprocess.Popen([sys.executable, "-m", "stemlab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_escape_sequences_from_a_provider_never_reach_the_terminal(tmp_path, sandbox_env):
    from stemlab.sandbox import Sandbox
    from stemlab.sandbox.synth import make_song

    make_song(tmp_path / "library", "esc", duration=1.0, names=("vocals", "bass"),
              labels={"vocals": f"Vocals{ESCAPES}", "bass": "Bass\x9b31m\r\x08"})
    with Sandbox(tmp_path / "library", cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY) as sb:
        env = {**sandbox_env, "STEMLAB_CQTAI_URL": sb.cqtai_url, "STEMLAB_SUNO_CDN_URL": sb.suno_cdn_url}
        fetched = cli("fetch", "cqtai", "esc", env=env)
        listed = cli("cache", "ls", env=env)
        sb.faults.add("cqtai.submit", "status", status=400, message=f"bad clip{ESCAPES} id\x1b[A")
        refused = cli("fetch", "cqtai", "esc", "--two", env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert "Vocals" in fetched.stdout and "Bass" in fetched.stdout
    for result in (fetched, listed, refused):
        for text in (result.stdout, result.stderr):
            assert not any(c in text for c in "\x1b\x07\x08\r\x9b"), repr(text)
    assert refused.returncode == 3 and "bad clip id" in refused.stderr
    with_json = cli("fetch", "cqtai", "esc", "--json", env=env)
    assert json.loads(with_json.stdout)["stems"][-1]["label"].startswith("Vocals")  # still valid JSON


def test_decoder_warnings_never_reach_stderr(tmp_path, sandbox_env):
    from stemlab.encode import mp3_bytes
    from stemlab.sandbox.synth import synth_stems

    stems = synth_stems(duration=2.0, sr=22050, names=("vocals", "bass"), seed=3)
    folder = tmp_path / "set"
    folder.mkdir()
    for name, audio in stems.items():
        data = mp3_bytes(audio, 22050)
        (folder / f"{name}.mp3").write_bytes(data[: len(data) // 3] + b"\xff\xfb\x00junk" * 50 if name == "bass"
                                             else data)
    (folder / "mixture.mp3").write_bytes(mp3_bytes(sum(stems.values()), 22050))
    checked = cli("check", str(folder), env=sandbox_env)
    assert checked.returncode == 1, checked.stderr
    assert checked.stderr == "" and "bass is truncated" in checked.stdout


def test_a_second_fetch_says_it_is_waiting_for_the_first(sandbox, sandbox_env, settings):
    lock = Cache(settings.cache_dir).lock(KEY)
    lock.acquire()
    try:
        second = start_cli("fetch", "cqtai", CLIP_ID, env=sandbox_env)
        line = []
        reader = threading.Thread(target=lambda: line.append(second.stderr.readline()), daemon=True)
        reader.start()
        reader.join(60)
        assert line and line[0] == f"stemlab: waiting for another stemlab fetch of this set ({KEY}) to finish\n"
        assert second.poll() is None and sandbox.submits == []  # still waiting, nothing sent
    finally:
        lock.release()
    assert second.wait(120) == 0 and len(sandbox.submits) == 1
    quiet = cli("fetch", "cqtai", CLIP_ID, "--quiet", env=sandbox_env)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_source_that_fails_after_paid_stems_is_said_everywhere(sandbox, sandbox_env, settings, caplog):
    sandbox.faults.add("download", "status", status=404, times=None, path_contains=f"suno-cdn/{CLIP_ID}")
    with caplog.at_level("WARNING", logger="stemlab"):
        stems = fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    assert stems.source is None and "404" in stems.source_error
    assert any("source track" in r.message and "not downloaded" in r.message for r in caplog.records)
    assert "not downloaded" in stems._repr_html_()
    shown = cli("fetch", "cqtai", CLIP_ID, env=sandbox_env)
    assert "source           NOT DOWNLOADED" in shown.stdout and "404" in shown.stdout
    assert json.loads(cli("fetch", "cqtai", CLIP_ID, "--json", env=sandbox_env).stdout)["source_error"]
    checked = cli("check", CLIP_ID, env=sandbox_env)
    assert checked.returncode == 2 and "source track was not downloaded" in checked.stderr and "404" in checked.stderr
    assert len(sandbox.submits) == 1


def test_ctrl_c_against_a_stalled_cdn_stops_within_a_second(sandbox, sandbox_env, settings):
    sandbox.faults.add("download", "delay", seconds=60, times=None)  # no byte, not even headers
    running = start_cli("fetch", "cqtai", CLIP_ID, env={**sandbox_env, "STEMLAB_HTTP_TIMEOUT": "60"})
    set_dir = settings.cache_dir / "sets" / KEY
    until(lambda: list(set_dir.rglob("*.part")))
    time.sleep(0.5)  # every download is now waiting for an answer that does not come
    sent = time.monotonic()
    running.send_signal(signal.SIGINT)
    code = running.wait(30)
    took = time.monotonic() - sent
    print(f"Ctrl-C to exit against a stalled CDN: {took:.2f} s")
    assert code == 130 and took < 1.5, (code, took)
    assert "interrupted" in running.stderr.read()
    assert json.loads((set_dir / "job.json").read_text())["state"] == "submitted"
    assert not list(set_dir.rglob("*.part"))
    sandbox.faults.clear()
    assert len(fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)) == 12
    assert len(sandbox.submits) == 1


@pytest.mark.parametrize("provider, body", [("apiframe", '{"jobId": "../../../capture"}'),
                                            ("cqtai", '{"code": 200, "data": "../../../capture?x=1#"}')])
def test_a_hostile_job_id_never_changes_the_request_path(sandbox, settings, provider, body):
    from stemlab.errors import StemlabError

    sandbox.faults.add(f"{provider}.submit", "accepted", body=body)
    arguments = ({"parent_job_id": sandbox.song(SONG).parent_job_id, "index": 1} if provider == "apiframe"
                 else {"clip_id": CLIP_ID})
    with pytest.raises(StemlabError):
        fetch(provider, settings=settings.replace(job_timeout=1), progress=False, **arguments)
    polls = [path for method, path, _ in sandbox.requests if method == "GET"]
    assert polls and all("capture" not in path.split("?")[0].rsplit("/", 1)[0] for path in polls)
    assert not any(path.startswith("/capture") or "/../" in path for path in polls), polls
    if provider == "apiframe":
        assert any(path.endswith("/v2/jobs/..%2F..%2F..%2Fcapture") for path in polls), polls
    else:
        assert any("id=..%2F..%2F..%2Fcapture%3Fx%3D1%23" in path for path in polls), polls


def test_clip_ids_that_differ_only_in_punctuation_never_share_a_folder(tmp_path, settings):
    from stemlab.sandbox import Sandbox
    from stemlab.sandbox.synth import make_song

    for song, duration in (("clip+one", 1.0), ("clip:one", 1.5)):
        make_song(tmp_path / "library", song, duration=duration, names=("vocals", "bass"))
    with Sandbox(tmp_path / "library", cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY) as sb:
        served = sb.settings(cache_dir=settings.cache_dir)
        plus = fetch("cqtai", clip_id="clip+one", settings=served, progress=False)
        colon = fetch("cqtai", clip_id="clip:one", settings=served, progress=False)
        assert len(sb.submits) == 2
    assert plus.folder != colon.folder
    assert (plus["vocals"].duration, colon["vocals"].duration) == pytest.approx((1.0, 1.5), abs=0.01)


def test_a_ctrl_c_while_stemlab_exits_prints_no_traceback(tmp_path):
    """A Ctrl-C that lands after the work is done, while Python runs its exit handlers (the soak
    once hit logging's), must not print a traceback. The handler here runs last of all."""
    code = ("import atexit, os, runpy, signal, sys\n"
            "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
            "sys.argv = ['stemlab', '--cache-dir', sys.argv[1], 'ls']\n"
            "runpy.run_module('stemlab', run_name='__main__', alter_sys=True)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
