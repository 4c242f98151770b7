"""Cache hygiene: ``stemlab cache ls|du|clean|verify`` and the same methods on :class:`Cache`."""

import json
import os
import subprocess
import sys

import pytest

from conftest import CLIP_ID, SONG
from stemlab.cache import Cache
from stemlab.errors import JobTimeoutError, SubmitUncertainError, UsageError
from stemlab.fetching import fetch


def stemlab(*args, env):
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture
def filled(sandbox, settings):
    """A cache with a complete 12-stem set (decoded), a job still running and an uncertain submit."""
    complete = fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False).decode_all()
    sandbox.polls_to_complete = 10_000
    with pytest.raises(JobTimeoutError):
        fetch("cqtai", clip_id=CLIP_ID, two=True, settings=settings.replace(job_timeout=0.05), progress=False)
    sandbox.faults.add("apiframe.submit", "drop")
    with pytest.raises(SubmitUncertainError):
        fetch("apiframe", parent_job_id=sandbox.song(SONG).parent_job_id, index=1, settings=settings, progress=False)
    return Cache(settings.cache_dir), complete


def test_ls_lists_every_set_with_its_state(filled):
    cache, complete = filled
    states = {entry.key: (entry.state, entry.stems) for entry in cache.ls()}
    assert states[complete.key] == ("complete", 12)
    assert states[f"cqtai-2-{CLIP_ID}"] == ("submitted", 0)
    assert [state for key, (state, _) in states.items() if key.startswith("apiframe")] == ["uncertain"]


def test_du_splits_audio_as_served_from_derived_data(filled):
    cache, complete = filled
    row = next(r for r in cache.du() if r.key == complete.key)
    served = sum(s["size"] for s in complete.manifest["stems"]) + complete.manifest["source"]["size"]
    assert row.audio == served
    decoded = sum(p.stat().st_size for p in complete.derived_dir.iterdir())
    assert row.derived == decoded > 10 * served  # float32 arrays weigh far more than the MP3s
    assert row.total == row.audio + row.derived + row.other


def test_clean_derived_keeps_the_set_and_it_rebuilds(filled):
    cache, complete = filled
    before = complete["drums"].audio.copy()
    removed = cache.clean([complete.key], derived=True)
    assert removed == [complete.derived_dir] and not complete.derived_dir.exists()
    assert cache.state(complete.key) == "complete"
    reopened = cache.find(complete.key)
    from stemlab.stemset import StemSet

    assert (StemSet.open(reopened)["drums"].audio == before).all()


def test_clean_refuses_running_and_uncertain_jobs_unless_forced(filled):
    cache, complete = filled
    running = f"cqtai-2-{CLIP_ID}"
    with pytest.raises(UsageError, match="refusing to remove .*submitted.*--force"):
        cache.clean([running, complete.key])
    assert cache.state(complete.key) == "complete"  # nothing was removed: the refusal came first
    uncertain = next(e.key for e in cache.ls() if e.state == "uncertain")
    with pytest.raises(UsageError, match="uncertain"):
        cache.clean([uncertain])
    assert cache.clean([complete.key]) == [cache.set_dir(complete.key)]
    assert sorted(p.name for p in cache.clean([running, uncertain], force=True)) == sorted([running, uncertain])
    assert cache.ls() == []
    with pytest.raises(UsageError, match="name the sets"):
        cache.clean([])


def test_verify_names_a_damaged_and_a_missing_file(filled):
    cache, complete = filled
    assert cache.verify() == []
    drums = complete["drums"].path
    data = bytearray(drums.read_bytes())
    data[len(data) // 2] ^= 0xFF
    drums.write_bytes(bytes(data))
    complete["bass"].path.unlink()
    problems = {(d.path, d.problem) for d in cache.verify([complete.job_id])}
    assert problems == {("stems/drums.mp3", "sha256 differs from the manifest"), ("stems/bass.mp3", "missing")}


def test_the_cli_follows_the_same_rules(filled, sandbox_env):
    cache, complete = filled
    env = {**os.environ, **sandbox_env, "STEMLAB_CACHE_DIR": str(cache.root)}
    listing = json.loads(stemlab("cache", "ls", "--json", env=env).stdout)
    assert {e["key"]: e["state"] for e in listing}[complete.key] == "complete"
    assert stemlab("ls", env=env).stdout == stemlab("cache", "ls", env=env).stdout  # the alias
    usage = json.loads(stemlab("cache", "du", "--json", env=env).stdout)
    assert next(u for u in usage if u["key"] == complete.key)["derived"] > 0
    assert "MB" in stemlab("cache", "du", env=env).stdout
    refused = stemlab("cache", "clean", f"cqtai-2-{CLIP_ID}", env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert stemlab("cache", "verify", env=env).returncode == 0
    assert stemlab("cache", "clean", "--derived", env=env).returncode == 0
    assert not complete.derived_dir.exists() and cache.state(complete.key) == "complete"
    complete["vocals"].path.write_bytes(b"not the file that was served")
    damaged = stemlab("--cache-dir", str(cache.root), "cache", "verify", complete.key, env=env)
    assert damaged.returncode == 1 and "stems/vocals.mp3" in damaged.stdout
    assert stemlab("cache", "clean", "no-such-set", env=env).returncode == 2
