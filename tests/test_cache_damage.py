"""A damaged cache costs nothing to mend. Whatever is broken (the manifest, a stem file, the job
record), stemlab's own advice never ends in a second charge, one damaged set never hides the
others, and a read-only cache still serves every complete set."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CLIP_ID
from stemlab.cache import Cache
from stemlab.errors import CacheError
from stemlab.fetching import fetch, open_set

KEY = f"cqtai-12-{CLIP_ID}"
UNSAFE_ADVICE = ("delete that folder", "delete the folder", "delete {folder}", "and fetch again")


def cqtai(settings, **kwargs):
    return fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False, **kwargs)


def downloads(sandbox):
    return [path for method, path, status in sandbox.requests if "-cdn/" in path and method == "GET"]


def assert_free_advice(message):
    assert "no charge" in message and not any(phrase in message for phrase in UNSAFE_ADVICE), message


@pytest.fixture
def fetched(sandbox, settings):
    stems = cqtai(settings)
    sandbox.reset_ledger()
    return stems.folder


def test_a_damaged_manifest_is_repaired_from_the_job_record_at_no_charge(sandbox, settings, fetched):
    (fetched / "manifest.json").write_text('{"format": 1, "stems": [')
    with pytest.raises(CacheError) as opened:
        open_set(KEY, settings=settings)
    assert_free_advice(str(opened.value))
    assert Cache(settings.cache_dir).state(KEY) == "damaged"
    repaired = cqtai(settings)  # following the advice
    assert len(repaired) == 12 and repaired.source is not None
    assert sandbox.submits == [] and len(downloads(sandbox)) >= 13  # nothing to verify against: all again
    assert repaired.manifest["repaired_at"] and Cache(settings.cache_dir).verify() == []


def test_a_missing_stem_is_downloaded_again_alone_and_the_rest_verified(sandbox, settings, fetched):
    (fetched / "stems" / "bass.mp3").unlink()
    (fetched / "stems" / "drums.mp3").write_bytes(b"not the drums")
    with pytest.raises(CacheError) as opened:
        open_set(KEY, settings=settings)
    assert_free_advice(str(opened.value))
    repaired = cqtai(settings)
    assert sandbox.submits == []
    urls = {entry["name"]: entry["url"] for entry in repaired.manifest["stems"]}
    fetched_again = {path for path in downloads(sandbox)}
    assert {name for name, url in urls.items() if any(url.endswith(p) for p in fetched_again)} == {"bass", "drums"}
    assert Cache(settings.cache_dir).verify() == [] and len(repaired) == 12


def test_deleting_only_the_manifest_resumes_at_no_charge(sandbox, settings, fetched):
    (fetched / "manifest.json").unlink()
    assert len(cqtai(settings)) == 12 and sandbox.submits == []


def test_the_job_record_is_rebuilt_from_a_readable_manifest(sandbox, settings, fetched):
    (fetched / "job.json").unlink()
    (fetched / "stems" / "keyboard.mp3").unlink()
    assert len(cqtai(settings)) == 12 and sandbox.submits == []
    assert json.loads((fetched / "job.json").read_text())["state"] == "done"


def test_with_no_readable_record_left_nothing_is_submitted(sandbox, settings, fetched):
    (fetched / "manifest.json").write_text("garbage")
    (fetched / "job.json").write_text("{")
    with pytest.raises(CacheError, match="cannot tell which job.*will not submit a new one on its own"):
        cqtai(settings)
    assert sandbox.submits == [] and (fetched / "job.json").exists()


def test_a_damaged_job_record_alone_is_never_taken_for_no_job(sandbox, settings):
    """A half-finished set whose job.json no longer reads: the job may be running and paid."""
    set_dir = settings.cache_dir / "sets" / KEY
    set_dir.mkdir(parents=True)
    (set_dir / "job.json").write_text('{"provider": "cqtai", "job_id": "t-')
    with pytest.raises(CacheError, match="cannot tell whether a job was submitted.*will not submit one"):
        cqtai(settings)
    assert sandbox.submits == []


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_one_damaged_set_does_not_hide_the_others(sandbox, sandbox_env, settings, fetched):
    two = fetch("cqtai", clip_id=CLIP_ID, two=True, settings=settings, progress=False)
    (fetched / "manifest.json").write_text("[1, 2")
    listed = _cli("cache", "ls", "--json", env=sandbox_env)
    assert listed.returncode == 0, listed.stderr
    states = {entry["key"]: entry["state"] for entry in json.loads(listed.stdout)}
    assert states == {KEY: "damaged", two.key: "complete"}
    assert _cli("ls", env=sandbox_env).returncode == 0
    checked = _cli("check", two.key, "--json", env=sandbox_env)
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stderr
    verified = _cli("cache", "verify", "--json", env=sandbox_env)
    assert [d["key"] for d in json.loads(verified.stdout)] == [KEY]
    refused = _cli("cache", "clean", KEY, env=sandbox_env)
    assert refused.returncode == 2 and "damaged" in refused.stderr and (fetched / "job.json").exists()
    damaged = _cli("check", KEY, env=sandbox_env)
    assert damaged.returncode == 3 and "no charge" in damaged.stderr, damaged.stderr


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_a_read_only_cache_serves_a_complete_set(sandbox, sandbox_env, settings, fetched, tmp_path):
    """The cache made read-only, and the reader unable to write it (as root: without the
    capabilities that override file permissions). No provider is reachable."""
    cache = settings.cache_dir
    shutil.rmtree(fetched / "derived", ignore_errors=True)
    before = _tree(cache)
    (tmp_path / "tmp").mkdir()
    env = {**sandbox_env, "STEMLAB_CQTAI_URL": "http://127.0.0.1:9/", "TMPDIR": str(tmp_path / "tmp")}
    code = ("import stemlab\n"
            f"s = stemlab.fetch('cqtai', clip_id={CLIP_ID!r}, progress=False)\n"
            "print(len(s), s['vocals'].audio.shape[0], stemlab.check(s).ok)\n")
    prefix = (["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] if os.geteuid() == 0 else [])
    for path in [cache, *cache.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**os.environ, **env})
    finally:
        for path in [cache, *cache.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "2", "True"]
    assert _tree(cache) == before  # nothing written, not even a lock
    assert list((tmp_path / "tmp").rglob("*.npy"))  # decoded into the reader's scratch instead
