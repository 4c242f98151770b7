"""End to end through the real clients against the sandbox: both providers, cache, StemSet."""

import hashlib
import json

import numpy as np
import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG
from stemlab.config import Settings
from stemlab.errors import UsageError
from stemlab.fetching import fetch, open_set
from stemlab.taxonomy import TWELVE_STEMS


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _accepted(sandbox, provider):
    return [s for s in sandbox.submits if s["provider"] == provider and s["accepted"]]


def test_cqtai_twelve_stems_end_to_end(sandbox, settings, library):
    s = fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    assert sorted(s.names) == sorted(TWELVE_STEMS)
    assert s.provider == "cqtai" and s.job_id == _accepted(sandbox, "cqtai")[0]["job_id"]
    # byte-identical to what was served, and recorded in the manifest with size and sha256
    for record in s.manifest["stems"]:
        served = library / SONG / "stems" / f"{record['name']}.mp3"
        assert _sha(s[record["name"]].path) == _sha(served) == record["sha256"]
        assert record["size"] == served.stat().st_size
        assert record["stated_duration"] == pytest.approx(record["duration"], abs=0.05)
    assert _sha(s.source.path) == _sha(library / SONG / "source.mp3")
    # decoded: float32 (channels, samples) at the source's rate, full length
    drums = s["drums"].audio
    assert drums.dtype == np.float32 and drums.shape == (2, s.source.audio.shape[1]) and s.sr == 44100
    assert abs(s.duration - 4.0) < 0.01
    assert s.manifest["request"] == {"provider": "cqtai", "task": "gen_stem_all", "clip_id": CLIP_ID}
    assert s.manifest["response"]["data"]["status"] == "succeeded"
    assert json.loads((s.folder / "job.json").read_text())["state"] == "done"


def test_a_second_fetch_is_offline_and_needs_no_key(sandbox, settings, library):
    first = fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    requests = len(sandbox.requests)
    sandbox.stop()
    keyless = Settings(cache_dir=settings.cache_dir).replace(cqtai_url=settings.cqtai_url, suno_cdn_url=settings.suno_cdn_url)
    again = fetch("cqtai", clip_id=CLIP_ID, settings=keyless, progress=False)
    assert again.folder == first.folder and again.names == first.names
    assert len(sandbox.requests) == requests
    assert open_set(first.job_id, cache_dir=settings.cache_dir).folder == first.folder
    assert open_set(CLIP_ID, cache_dir=settings.cache_dir).folder == first.folder


def test_cqtai_two_stems_and_title_only_labels(sandbox, settings):
    sandbox.cqtai_label_style = "title"
    s = fetch("cqtai", clip_id=CLIP_ID, two=True, settings=settings, progress=False)
    assert s.names == ["vocals", "instrumental"]
    assert _accepted(sandbox, "cqtai")[0]["body"] == {"task": "gen_stem_two", "clipId": CLIP_ID}
    assert "stem_type_group_name" not in json.dumps(s.manifest["response"])
    assert {st.label for st in s} == {"Vocals", "Instrumental"}


def test_apiframe_by_index_and_by_track_id(sandbox, settings, library):
    song = sandbox.song(SONG)
    by_index = fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False,
                     webhook_url="https://hooks.example/stems", webhook_events=["completed", "failed"])
    assert by_index.names == ["vocals", "instrumental"]
    assert _sha(by_index.source.path) == _sha(library / SONG / "source.mp3")
    body = _accepted(sandbox, "apiframe")[0]["body"]
    assert body == {"parentJobId": song.parent_job_id, "action": "stems", "index": 1,
                    "webhookUrl": "https://hooks.example/stems", "webhookEvents": ["completed", "failed"]}
    by_track = fetch("apiframe", parent_job_id=song.parent_job_id, track_id=song.tracks[0].id, settings=settings,
                     progress=False)
    assert by_track.folder != by_index.folder and by_track.names == ["vocals", "instrumental"]
    assert "trackId" in _accepted(sandbox, "apiframe")[1]["body"]


def test_apiframe_second_track_is_the_other_song(sandbox, settings, library):
    song = sandbox.song(SONG)
    s = fetch("apiframe", parent_job_id=song.parent_job_id, index=2, settings=settings, progress=False)
    assert _sha(s.source.path) == _sha(library / song.tracks[1].song / "source.mp3")


@pytest.mark.parametrize("kwargs, message", [
    (dict(index=1, track_id="x"), "exactly one of index"),
    (dict(), "exactly one of index"),
    (dict(index=3), "index must be 1 or 2"),
    (dict(index=1, webhook_url="http://hooks.example"), "https"),
    (dict(index=1, webhook_url="https://hooks.example", webhook_events=["done"]), "webhook events"),
])
def test_apiframe_bad_requests_are_refused_before_sending(sandbox, settings, kwargs, message):
    with pytest.raises(UsageError, match=message):
        fetch("apiframe", parent_job_id="a1b2c3d4", settings=settings, progress=False, **kwargs)
    assert sandbox.requests == []


def test_usage_errors_send_nothing(sandbox, settings):
    for call in (lambda: fetch("suno", clip_id="x", settings=settings),
                 lambda: fetch("cqtai", clip_id="", settings=settings),
                 lambda: fetch("cqtai", clip_id="a/../b", settings=settings),
                 lambda: fetch("cqtai", clip_id="x", index=1, settings=settings),
                 lambda: fetch("cqtai", clip_id=CLIP_ID, settings=settings, cqtai_url="http://api.example.com")):
        with pytest.raises(UsageError):
            call()
    with pytest.raises(UsageError, match="CQTAI_API_KEY"):
        fetch("cqtai", clip_id=CLIP_ID, settings=Settings(cache_dir=settings.cache_dir).replace(cqtai_url=settings.cqtai_url),
              progress=False)
    assert sandbox.requests == []


def test_keys_come_from_the_environment(sandbox_env, sandbox):
    s = fetch("cqtai", clip_id=CLIP_ID, progress=False)
    assert len(s) == 12 and str(s.folder).startswith(sandbox_env["STEMLAB_CACHE_DIR"])


def test_no_key_in_any_cached_file(sandbox, settings):
    fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    song = sandbox.song(SONG)
    fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False)
    for path in settings.cache_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CQTAI_KEY.encode() not in data and APIFRAME_KEY.encode() not in data, path
