"""``fetch_both`` and ``suno_clip_id`` against the sandbox: one song through both providers, CQTAI
splitting the Apiframe parent job's track by its id, and never a second request for either."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

import stemlab
from conftest import APIFRAME_KEY, CQTAI_KEY, SONG
from stemlab.config import Settings
from stemlab.errors import ProtocolError
from stemlab.fetching import build_request, suno_clip_id
from stemlab.taxonomy import TWELVE_STEMS


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _accepted(sandbox, provider):
    return [s for s in sandbox.submits if s["provider"] == provider and s["accepted"]]


def test_fetch_both_splits_the_parent_job_s_track_with_both_providers(sandbox, settings, library):
    song = sandbox.song(SONG)
    track_id = song.tracks[0].id
    cqtai, apiframe = stemlab.fetch_both(song.parent_job_id, index=1, settings=settings, progress=False)
    assert (cqtai.provider, apiframe.provider) == ("cqtai", "apiframe")
    assert sorted(cqtai.names) == sorted(TWELVE_STEMS) and apiframe.names == ["vocals", "instrumental"]
    # CQTAI was asked for the track's id, the Suno clip id Apiframe reports (not the library's clip id)
    [submit] = _accepted(sandbox, "cqtai")
    assert submit["body"] == {"task": "gen_stem_all", "clipId": track_id}
    assert track_id != song.clip_id
    assert cqtai.key == build_request("cqtai", clip_id=track_id).cache_key
    assert apiframe.key == build_request("apiframe", parent_job_id=song.parent_job_id, index=1).cache_key
    assert apiframe.manifest["source"]["track_id"] == track_id
    assert _sha(cqtai.source.path) == _sha(apiframe.source.path) == _sha(library / SONG / "source.mp3")
    assert len(_accepted(sandbox, "apiframe")) == 1 and len(sandbox.submits) == 2


def test_a_second_call_sends_nothing_even_with_the_network_gone(sandbox, settings):
    song = sandbox.song(SONG)
    first = stemlab.fetch_both(song.parent_job_id, index=1, settings=settings, progress=False)
    sandbox.reset_ledger()
    again = stemlab.fetch_both(song.parent_job_id, index=1, settings=settings, progress=False)
    assert sandbox.requests == [] and sandbox.submits == []
    assert [s.folder for s in again] == [s.folder for s in first]
    sandbox.stop()
    offline = stemlab.fetch_both(song.parent_job_id, index=1, settings=settings, progress=False)
    assert [s.folder for s in offline] == [s.folder for s in first]
    assert [s.names for s in offline] == [s.names for s in first]
    assert sandbox.requests == []


def test_the_second_track_of_the_parent_job_is_song_b(sandbox, settings, library):
    song = sandbox.song(SONG)
    second = song.tracks[1]
    assert second.song_id == "song-b"
    cqtai, apiframe = stemlab.fetch_both(song.parent_job_id, index=2, settings=settings, progress=False)
    assert _accepted(sandbox, "cqtai")[0]["body"]["clipId"] == second.id
    assert _accepted(sandbox, "apiframe")[0]["body"]["index"] == 2
    assert apiframe.manifest["source"]["track_id"] == second.id
    song_b = library / "song-b"
    assert _sha(cqtai.source.path) == _sha(apiframe.source.path) == _sha(song_b / "source.mp3")
    assert _sha(cqtai["drums"].path) == _sha(song_b / "stems" / "drums.mp3")


def test_two_stems_and_a_track_id(sandbox, settings):
    song = sandbox.song(SONG)
    track_id = song.tracks[0].id
    cqtai, apiframe = stemlab.fetch_both(song.parent_job_id, track_id=track_id, two=True, settings=settings,
                                         progress=False)
    assert cqtai.names == apiframe.names == ["vocals", "instrumental"]
    assert _accepted(sandbox, "cqtai")[0]["body"] == {"task": "gen_stem_two", "clipId": track_id}
    assert _accepted(sandbox, "apiframe")[0]["body"]["trackId"] == track_id


def test_suno_clip_id_of_a_track_id_is_that_id_without_a_request(sandbox, settings):
    song = sandbox.song(SONG)
    assert suno_clip_id(song.parent_job_id, track_id="any-track-id", settings=settings) == "any-track-id"
    assert sandbox.requests == []


def test_suno_clip_id_of_an_index_asks_the_parent_job_once_then_the_cache(sandbox, settings):
    song = sandbox.song(SONG)
    assert suno_clip_id(song.parent_job_id, index=1, settings=settings) == song.tracks[0].id
    assert [(method, status) for method, _, status in sandbox.requests] == [("GET", 200)]  # no submit
    assert sandbox.requests[0][1].endswith(f"/v2/jobs/{song.parent_job_id}")
    stemlab.fetch("apiframe", parent_job_id=song.parent_job_id, index=2, settings=settings, progress=False)
    sandbox.reset_ledger()
    sandbox.stop()
    assert suno_clip_id(song.parent_job_id, index=2, settings=settings) == song.tracks[1].id  # from the cache


class _WithoutTrackIds(httpx.BaseTransport):
    """The sandbox, except that a parent job's tracks carry no ``id`` (as an older API might answer)."""

    def __init__(self, parent_job_id: str):
        self.parent_job_id = parent_job_id
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith(f"/v2/jobs/{self.parent_job_id}"):
            return response
        response.read()
        body = json.loads(response.content)
        for track in body["result"]["tracks"]:
            track.pop("id")
        response.close()
        return httpx.Response(response.status_code, json=body)

    def close(self) -> None:
        self.inner.close()


def test_a_parent_job_whose_track_has_no_id_says_to_pass_the_clip_id(sandbox, settings):
    song = sandbox.song(SONG)
    with pytest.raises(ProtocolError) as caught:
        stemlab.fetch_both(song.parent_job_id, index=1, settings=settings, progress=False,
                           transport=_WithoutTrackIds(song.parent_job_id))
    message = str(caught.value)
    assert "\n" not in message and "has no id" in message and "clip id" in message and "clip_id=" in message
    assert song.parent_job_id in message
    assert _accepted(sandbox, "cqtai") == []  # CQTAI was never asked to split a guess
    apiframe = stemlab.open_set(build_request("apiframe", parent_job_id=song.parent_job_id, index=1).cache_key,
                                settings=settings)
    assert "track_id" not in apiframe.manifest["source"]  # nothing recorded that was not said


def test_suno_clip_id_with_a_mock_parent_job_without_track_ids(tmp_path):
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("X-API-Key")))
        return httpx.Response(200, json={"id": "p-1", "status": "COMPLETED", "result": {"tracks": [
            {"audioUrl": "https://cdn.apiframe.test/p-1-0.mp3", "duration": 3.0},
            {"id": "  ", "audioUrl": "https://cdn.apiframe.test/p-1-1.mp3"}]}})

    settings = Settings.resolve(environ={}, dotenv=None, apiframe_url="https://api.apiframe.test",
                                apiframe_api_key=APIFRAME_KEY, cache_dir=tmp_path / "cache", retry_delay=0.01)
    for index in (1, 2):
        with pytest.raises(ProtocolError, match=rf"track {index} has no id.*pass its Suno clip id") as caught:
            suno_clip_id("p-1", index=index, settings=settings, transport=httpx.MockTransport(answer))
        assert "\n" not in str(caught.value)
    assert seen == [("GET", "/v2/jobs/p-1", APIFRAME_KEY)] * 2
    assert CQTAI_KEY not in str(caught.value)
