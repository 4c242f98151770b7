"""Shared fixtures: an isolated cache and environment, a guard that keeps tests on 127.0.0.1,
and the sandbox (a real loopback server speaking both providers' documented APIs)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stemlab.config import Settings
from stemlab.http import is_loopback
from stemlab.sandbox import Sandbox
from stemlab.sandbox.library import default_track_id
from stemlab.sandbox.synth import make_song

CQTAI_KEY = "sk-test-cqtai-0123456789abcdef"
APIFRAME_KEY = "afk_test_apiframe_0123456789abcdef"
CLIP_ID = "7c1c2f0e-5b7a-4d2e-9a44-0c9d1c2b3a10"
SONG = "song-a"

_real_connect = socket.socket.connect


def _loopback_only_connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(host):
        raise OSError(f"tests must not reach beyond 127.0.0.1 (tried {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No real keys, no real cache, no .env from the developer's folder, no network beyond loopback."""
    for name in ("CQTAI_API_KEY", "APIFRAME_API_KEY", "STEMLAB_CQTAI_URL", "STEMLAB_APIFRAME_URL",
                 "STEMLAB_SUNO_CDN_URL", "STEMLAB_POLL_INTERVAL", "STEMLAB_JOB_TIMEOUT", "STEMLAB_RETRY_DELAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEMLAB_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only_connect)


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """Two short synthesised songs: a 12-stem split with silent stems, and a second song."""
    root = tmp_path_factory.mktemp("library")
    make_song(root, "song-b", duration=3.0)
    make_song(root, SONG, duration=4.0, clip_id=CLIP_ID, silent=("brass", "woodwinds", "fx"),
              tracks=[{"id": default_track_id(SONG)}, {"id": default_track_id(SONG, 2), "song": "song-b"}])
    return root


@pytest.fixture
def sandbox(library):
    with Sandbox(library, cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY, polls_to_complete=2) as sb:
        yield sb


@pytest.fixture
def settings(sandbox, tmp_path):
    """Settings pointing every URL at the sandbox, with fast polls and retries."""
    return Settings.resolve(environ={}, dotenv=None, cqtai_url=sandbox.cqtai_url,
                            apiframe_url=sandbox.apiframe_url, suno_cdn_url=sandbox.suno_cdn_url,
                            cqtai_api_key=CQTAI_KEY, apiframe_api_key=APIFRAME_KEY, cache_dir=tmp_path / "cache",
                            poll_interval=0.01, job_timeout=20, retry_delay=0.01)


@pytest.fixture
def sandbox_env(sandbox, tmp_path, monkeypatch):
    """The environment a user (or the CLI in a subprocess) would set to use the sandbox."""
    env = {"STEMLAB_CQTAI_URL": sandbox.cqtai_url, "STEMLAB_APIFRAME_URL": sandbox.apiframe_url,
           "STEMLAB_SUNO_CDN_URL": sandbox.suno_cdn_url, "CQTAI_API_KEY": CQTAI_KEY,
           "APIFRAME_API_KEY": APIFRAME_KEY, "STEMLAB_CACHE_DIR": str(tmp_path / "cache"),
           "STEMLAB_POLL_INTERVAL": "0.01", "STEMLAB_RETRY_DELAY": "0.01"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """``stemlab --cache-dir DIR demo`` run once per test session, in a fresh process whose HOME is
    an empty folder: ``(printed text, report path, cache folder, home folder)``."""
    import os
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    cache, home = root / "cache", root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEMLAB_", "XDG_"))}
    env.update(HOME=str(home), MPLCONFIGDIR=str(root / "matplotlib"))  # matplotlib's own font cache
    done = subprocess.run([sys.executable, "-m", "stemlab", "--cache-dir", str(cache), "demo", "--quiet"], env=env,
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    return text, Path(text.split("report: ")[1].split("  (")[0]), cache, home


@pytest.fixture(scope="session")
def small_comparison(tmp_path_factory):
    """Sets a, b (whose vocals carry drums) and the truth they are compared with, 6 s at 22.05 kHz."""
    import soundfile as sf

    import stemlab
    from stemlab.sandbox.synth import synth_stems

    SR = 22050
    root = tmp_path_factory.mktemp("sets")
    stems = synth_stems(duration=6.0, sr=SR, names=("vocals", "drums", "bass"), seed=4)
    sets = {}
    for name, edit in (("truth", lambda n, a: a), ("a", lambda n, a: a * 0.9),
                       ("b", lambda n, a: a + 0.3 * stems["drums"] if n == "vocals" else a)):
        folder = root / name
        folder.mkdir()
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", edit(stem, audio).T, SR, subtype="FLOAT")
        sf.write(folder / "mixture.wav", sum(stems.values()).T, SR, subtype="FLOAT")
        sets[name] = stemlab.StemSet.open(folder)
    return stemlab.compare(sets["a"], sets["b"], reference=sets["truth"], bss=False)


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory):
    """The demo song's true stems, written once per test session into a cache of its own."""
    import stemlab

    return stemlab.demo_song(cache_dir=tmp_path_factory.mktemp("transcription-demo"))
