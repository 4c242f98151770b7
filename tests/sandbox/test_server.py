"""The sandbox over real loopback HTTP, driven with httpx as a client would."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import threading
import time

import httpx
import pytest

from stemlab.sandbox import Sandbox, make_song, mp3_duration, serve, write_song
from stemlab.sandbox.library import default_track_id
from stemlab.taxonomy import TWELVE_STEMS, canonical_name

CQTAI_KEY, APIFRAME_KEY = "sk-test", "afk_test"  # the Sandbox defaults, used by the fixture

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


# ----------------------------------------------------------------------------- fixtures
# (here rather than in a conftest.py: a second conftest module would shadow tests/conftest.py
# for the suite's `from conftest import ...`)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three songs: ``alpha`` (12 stems, its parent job's 2nd track plays ``beta``), ``beta``
    (3 stems, 2-stem label "Accompaniment"), ``gamma`` (source only, no splits)."""
    root = tmp_path_factory.mktemp("sandbox-library")
    make_song(root, "alpha", duration=2.0, title="Alpha", tags="synthpop",
              tracks=[{"id": default_track_id("alpha")}, {"id": "track-beta", "song": "beta"}])
    make_song(root, "beta", duration=1.5, names=("vocals", "drums", "bass"),
              labels={"instrumental": "Accompaniment"}, clip_id="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e")
    write_song(root, "gamma", source=(root / "alpha" / "source.mp3").read_bytes(), stems={})
    return root


@pytest.fixture
def sb(library):
    """A sandbox with the default keys and the inactive Apiframe key "afk_old"."""
    with Sandbox(library, apiframe_inactive_keys=["afk_old"]) as sandbox:
        yield sandbox


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


# ----------------------------------------------------------------------------- helpers


def cqtai_submit(client, sb, clip="alpha", task="gen_stem_all", key=CQTAI_KEY):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(f"{sb.cqtai_url}/api/cqt/generator/suno", headers=headers,
                       json={"task": task, "clipId": clip})


def cqtai_info(client, sb, task_id, key=CQTAI_KEY, path="info/suno"):
    return client.get(f"{sb.cqtai_url}/api/cqt/{path}", params={"id": task_id},
                      headers={"Authorization": f"Bearer {key}"})


def cqtai_run(client, sb, clip="alpha", task="gen_stem_all", polls=10):
    """Submit and poll until the task is no longer running; the last ``data``."""
    task_id = cqtai_submit(client, sb, clip, task).json()["data"]
    for _ in range(polls):
        data = cqtai_info(client, sb, task_id).json()["data"]
        if data["status"] != "running":
            return data
    return data


def af(client, sb, method, path, key=APIFRAME_KEY, **kwargs):
    headers = {"X-API-Key": key} if key else {}
    return client.request(method, f"{sb.apiframe_url}{path}", headers=headers, **kwargs)


def af_submit(client, sb, key=APIFRAME_KEY, **body):
    body = {"parentJobId": sb.library["alpha"].parent_job_id, "action": "stems", **body}
    return af(client, sb, "POST", "/v2/music/suno/action", key=key, json=body)


def af_run(client, sb, polls=10, **body):
    job_id = af_submit(client, sb, **body).json()["jobId"]
    for _ in range(polls):
        job = af(client, sb, "GET", f"/v2/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED"):
            return job
    return job


# ----------------------------------------------------------------------------- CQTAI


def test_cqtai_stem_all_runs_through_running_to_succeeded(sb, client, library):
    submitted = cqtai_submit(client, sb)
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["code"] == 200 and body["msg"] == "success"
    task_id = body["data"]
    assert len(task_id) == 32 and int(task_id, 16) >= 0

    first, second, third = (cqtai_info(client, sb, task_id).json() for _ in range(3))
    assert first["data"]["status"] == second["data"]["status"] == "running"
    assert first["data"]["result"] is None and first["data"]["completeTime"] is None
    data = third["data"]
    assert third["code"] == 200 and data["status"] == "succeeded" and data["errorMsg"] == ""
    assert data["id"] == task_id and data["taskType"] == "gen_stem_all"
    assert data["param"] == {"task": "gen_stem_all", "clipId": "alpha"}
    assert set(data) == {"id", "taskType", "status", "errorMsg", "param", "result", "createTime",
                         "completeTime"}
    assert len(data["createTime"]) == 19 and data["completeTime"]

    clips = data["result"]
    assert {canonical_name(c["metadata"]["stem_type_group_name"]) for c in clips} == set(TWELVE_STEMS)
    for clip in clips:
        meta = clip["metadata"]
        assert clip["title"] == f" ({meta['stem_type_group_name'].replace('_', ' ')})"
        assert clip["status"] == "complete" and clip["model_name"] == "chirp-ahi"
        assert meta["task"] == "gen_stem" and meta["type"] == "gen" and meta["is_remix"] is True
        assert meta["stem_task"] == "twelve"
        assert meta["stem_from_id"] == meta["edited_clip_id"] == "alpha"
        assert clip["audio_url"] == f"{sb.suno_cdn_url}/{clip['id']}.mp3"
        name = canonical_name(meta["stem_type_group_name"])
        path = library / "alpha" / "stems" / f"{name}.mp3"
        download = client.get(clip["audio_url"])
        assert download.status_code == 200 and download.content == path.read_bytes()
        assert meta["duration"] == pytest.approx(mp3_duration(path), abs=0.01)
    assert sorted(c["batch_index"] for c in clips) == list(range(12))
    assert "Backing_Vocals" in {c["metadata"]["stem_type_group_name"] for c in clips}


def test_cqtai_info_alias_and_source_clip_download(sb, client, library):
    task_id = cqtai_submit(client, sb).json()["data"]
    alias = cqtai_info(client, sb, task_id, path="v2/sunoinfo")
    assert alias.json()["data"]["id"] == task_id
    source = client.get(f"{sb.suno_cdn_url}/alpha.mp3")
    assert source.content == (library / "alpha" / "source.mp3").read_bytes()


def test_cqtai_two_stems_with_label_override(sb, client):
    data = cqtai_run(client, sb, clip="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e", task="gen_stem_two")
    assert data["status"] == "succeeded" and data["taskType"] == "gen_stem_two"
    groups = sorted(c["metadata"]["stem_type_group_name"] for c in data["result"])
    assert groups == ["Accompaniment", "Vocals"]
    assert {c["metadata"]["stem_task"] for c in data["result"]} == {"two"}


def test_cqtai_order_is_shuffled_per_job_and_stable_per_job(sb, client):
    sb.polls_to_complete = 0
    orders = set()
    for _ in range(4):
        task_id = cqtai_submit(client, sb).json()["data"]
        once = [c["title"] for c in cqtai_info(client, sb, task_id).json()["data"]["result"]]
        again = [c["title"] for c in cqtai_info(client, sb, task_id).json()["data"]["result"]]
        assert once == again
        orders.add(tuple(once))
    assert len(orders) > 1


def test_cqtai_title_label_style_and_success_word(library, client):
    with Sandbox(library, polls_to_complete=0, cqtai_label_style="title",
                 cqtai_success_status="success") as sb:
        data = cqtai_run(client, sb)
    assert data["status"] == "success"
    assert all("stem_type_group_name" not in c["metadata"] for c in data["result"])
    assert " (Backing Vocals)" in {c["title"] for c in data["result"]}


@pytest.mark.parametrize("style, http_status", [("body", 200), ("http", 401)])
@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_cqtai_auth_errors_in_both_styles(library, client, style, http_status, key):
    with Sandbox(library, cqtai_error_style=style) as sb:
        answer = cqtai_submit(client, sb, key=key)
        assert answer.status_code == http_status
        assert answer.json() == {"code": 401, "msg": "Unauthorized", "data": None}
        assert cqtai_info(client, sb, "x" * 32, key="nope").json()["code"] == 401
        assert sb.submits == [{"provider": "cqtai", "body": {"task": "gen_stem_all", "clipId": "alpha"},
                               "job_id": None, "accepted": False, "fault": None}]


@pytest.mark.parametrize("body, msg", [
    ({"task": "gen_stem_all", "clipId": "no-such-clip"}, "clip not found"),
    ({"task": "create", "clipId": "alpha"}, "unsupported task: 'create'"),
    ({"task": "gen_stem_all"}, "clipId is required"),
])
def test_cqtai_rejects_bad_submits(sb, client, body, msg):
    answer = client.post(f"{sb.cqtai_url}/api/cqt/generator/suno", json=body,
                         headers={"Authorization": f"Bearer {CQTAI_KEY}"})
    assert answer.status_code == 200 and answer.json() == {"code": 400, "msg": msg, "data": None}


def test_cqtai_unknown_task_and_missing_id(sb, client):
    assert cqtai_info(client, sb, "f" * 32).json() == {"code": 404, "msg": "task not found", "data": None}
    assert cqtai_info(client, sb, "").json()["code"] == 400


def test_cqtai_outcomes_fail_stuck_and_runtime_polls(sb, client):
    sb.polls_to_complete = 0
    sb.set_outcome("alpha", "fail", message="UPLOAD_AUDIO_FILE_FAILED3: timeout")
    failed = cqtai_run(client, sb)
    assert failed["status"] == "failed" and failed["errorMsg"] == "UPLOAD_AUDIO_FILE_FAILED3: timeout"
    assert failed["result"] is None

    sb.set_outcome("*", "stuck")
    sb.set_outcome("alpha", "ok")
    assert cqtai_run(client, sb, clip="05d72140-38f5-4eb4-bdaa-a6e0d1c1167e", polls=5)["status"] == "running"
    assert cqtai_run(client, sb, polls=1)["status"] == "succeeded"


def test_cqtai_job_without_the_split_fails(sb, client):
    sb.polls_to_complete = 0
    data = cqtai_run(client, sb, clip="gamma")
    assert data["status"] == "failed" and data["errorMsg"]


# ----------------------------------------------------------------------------- Apiframe


def test_apiframe_parent_job_lists_library_tracks(sb, client, library):
    alpha = sb.library["alpha"]
    job = af(client, sb, "GET", f"/v2/jobs/{alpha.parent_job_id}").json()
    assert job["status"] == "COMPLETED" and job["model"] == "suno" and job["progress"] == 100
    first, second = job["result"]["tracks"]
    assert first["id"] == alpha.tracks[0].id and second["id"] == "track-beta"
    assert first["title"] == "Alpha" and first["tags"] == "synthpop"
    assert first["audioUrl"] == f"{sb.url}/apiframe-cdn/audio/{alpha.parent_job_id}-0.mp3"
    assert client.get(first["audioUrl"]).content == (library / "alpha" / "source.mp3").read_bytes()
    assert client.get(second["audioUrl"]).content == (library / "beta" / "source.mp3").read_bytes()
    assert first["duration"] == pytest.approx(mp3_duration(library / "alpha" / "source.mp3"), abs=0.01)


def test_apiframe_stems_job_goes_queued_processing_completed(sb, client, library):
    submitted = af_submit(client, sb, index=1)
    assert submitted.status_code == 202
    job_id = submitted.json()["jobId"]
    assert submitted.json() == {"jobId": job_id, "status": "QUEUED"}
    assert re.fullmatch(UUID_RE, job_id)

    polls = [af(client, sb, "GET", f"/v2/jobs/{job_id}").json() for _ in range(3)]
    assert [p["status"] for p in polls] == ["QUEUED", "PROCESSING", "COMPLETED"]
    assert [p["progress"] for p in polls] == [0, 50, 100]
    done = polls[-1]
    assert set(done) == {"id", "status", "model", "progress", "result", "error", "creditCost",
                         "webhookStatus", "createdAt", "completedAt"}
    assert done["creditCost"] == 11 and done["error"] is None and done["completedAt"].endswith("Z")
    vocals, instrumental = done["result"]["tracks"]
    assert (vocals["id"], vocals["title"], instrumental["id"], instrumental["title"]) == \
        ("vocals", "Vocals", "instrumental", "Instrumental")
    assert vocals["audioUrl"] == f"{sb.url}/apiframe-cdn/audio/{job_id}-0.mp3"
    assert instrumental["audioUrl"].endswith(f"{job_id}-1.mp3")
    for track, name in ((vocals, "vocals"), (instrumental, "instrumental")):
        path = library / "alpha" / "two" / f"{name}.mp3"
        assert client.get(track["audioUrl"]).content == path.read_bytes()
        assert track["duration"] == pytest.approx(mp3_duration(path), abs=0.01)
        assert track["imageUrl"] is None and track["tags"] is None


def test_apiframe_track_id_selects_the_second_take(sb, client, library):
    job = af_run(client, sb, trackId="track-beta")
    vocals_url = job["result"]["tracks"][0]["audioUrl"]
    assert client.get(vocals_url).content == (library / "beta" / "two" / "vocals.mp3").read_bytes()


def test_apiframe_stems_files_are_not_served_before_completion(sb, client):
    job_id = af_submit(client, sb, index=1).json()["jobId"]
    assert client.get(f"{sb.url}/apiframe-cdn/audio/{job_id}-0.mp3").status_code == 404


@pytest.mark.parametrize("key, status, error", [
    (None, 401, "API key is required"), ("afk_wrong", 401, "Invalid API key"),
    ("afk_old", 403, "API key is inactive")])
def test_apiframe_auth_errors(sb, client, key, status, error):
    for answer in (af_submit(client, sb, key=key, index=1),
                   af(client, sb, "GET", f"/v2/jobs/{sb.library['alpha'].parent_job_id}", key=key)):
        assert answer.status_code == status and answer.json() == {"error": error}


@pytest.mark.parametrize("body", [
    {"action": "extend", "index": 1}, {}, {"index": 1, "trackId": "track-beta"}, {"index": 3},
    {"index": "1"}, {"index": True}, {"trackId": "nope"},
    {"index": 1, "webhookUrl": "http://example.com/hook"},
    {"index": 1, "webhookUrl": "https://example.com/hook", "webhookEvents": ["done"]},
])
def test_apiframe_validation_errors_are_400(sb, client, body):
    answer = af_submit(client, sb, **body)
    assert answer.status_code == 400 and isinstance(answer.json()["error"], str)
    assert sb.submits[-1]["accepted"] is False


def test_apiframe_index_beyond_a_single_track_parent(sb, client):
    answer = af_submit(client, sb, parentJobId=sb.library["beta"].parent_job_id, index=2)
    assert answer.status_code == 400


def test_apiframe_unknown_parent_is_404_and_stems_of_stems_is_409(sb, client):
    unknown = af_submit(client, sb, parentJobId="a1b2c3d4-e5f6-7890-abcd-ef1234567890", index=1)
    assert unknown.status_code == 404 and unknown.json()["error"]
    stems_id = af_submit(client, sb, index=1).json()["jobId"]
    conflict = af_submit(client, sb, parentJobId=stems_id, index=1)
    assert conflict.status_code == 409 and conflict.json()["error"]
    assert af(client, sb, "GET", "/v2/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_apiframe_failed_job(sb, client):
    sb.set_outcome(sb.library["alpha"].parent_job_id, "fail")
    job = af_run(client, sb, index=1)
    assert job["status"] == "FAILED" and job["error"].startswith("Provider returned an error")
    assert job["creditCost"] == 0 and job["progress"] == 0 and job["result"] is None


def test_apiframe_webhooks_are_recorded_and_signed(sb, client):
    job = af_run(client, sb, index=1, webhookUrl="https://example.com/hook",
                 webhookEvents=["progress", "completed"])
    assert job["webhookStatus"] == "sent"
    deliveries = sb.webhooks(job["id"])
    assert [h["X-Webhook-Event"] for h, _ in deliveries] == ["progress", "completed"]
    secret = hashlib.sha256(APIFRAME_KEY.encode()).digest()
    for headers, body in deliveries:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Webhook-Signature"], expected)
    progress, completed = (json.loads(body) for _, body in deliveries)
    assert progress == {"event": "progress", "jobId": job["id"], "status": "PROCESSING", "progress": 50,
                        "model": "suno"}
    assert completed["result"] == job["result"] and completed["creditCost"] == 11
    assert completed["status"] == "COMPLETED" and completed["completedAt"] == job["completedAt"]


def test_apiframe_failed_webhook_with_default_events(sb, client):
    sb.polls_to_complete = 0
    sb.set_outcome("*", "fail", message="Provider returned an error: content policy violation")
    job = af_run(client, sb, index=1, webhookUrl="https://example.com/hook")
    (headers, body), = sb.webhooks(job["id"])
    assert headers["X-Webhook-Event"] == "failed"
    assert json.loads(body) == {"event": "failed", "jobId": job["id"], "status": "FAILED",
                                "error": "Provider returned an error: content policy violation",
                                "model": "suno"}


# ----------------------------------------------------------------------------- downloads


def test_download_headers_ranges_and_404(sb, client, library):
    url = f"{sb.suno_cdn_url}/alpha.mp3"
    whole = (library / "alpha" / "source.mp3").read_bytes()
    full = client.get(url)
    assert full.headers["content-type"] == "audio/mpeg"
    assert full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == len(whole)

    tail = client.get(url, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == whole[1000:]
    assert tail.headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    middle = client.get(url, headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == whole[10:20]
    assert client.get(url, headers={"Range": "bytes=-5"}).content == whole[-5:]
    beyond = client.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole)}"
    head = client.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(whole)

    assert client.get(f"{sb.suno_cdn_url}/nope.mp3").status_code == 404
    assert client.get(f"{sb.url}/apiframe-cdn/audio/nope-0.mp3").status_code == 404


def test_keep_alive_serves_several_requests_on_one_connection(sb):
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    conn.request("GET", "/suno-cdn/alpha.mp3")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("GET", "/suno-cdn/nope.mp3")
    second = conn.getresponse()
    second.read()
    assert (first.status, second.status) == (200, 404) and conn.sock is sock
    conn.close()


def test_unknown_paths_and_methods(sb, client):
    assert client.get(f"{sb.url}/elsewhere").status_code == 404
    wrong = client.get(f"{sb.cqtai_url}/api/cqt/generator/suno")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"


def test_throttle_slows_downloads(sb, client, library):
    size = (library / "alpha" / "source.mp3").stat().st_size
    sb.throttle_bytes_per_s = size / 2.0  # about 2 s for the file
    started = time.monotonic()
    assert len(client.get(f"{sb.suno_cdn_url}/alpha.mp3").content) == size
    assert time.monotonic() - started >= 1.5


# ----------------------------------------------------------------------------- faults


def test_status_fault_follows_cqtai_style_and_per_fault_style(sb, client):
    sb.faults.add("cqtai.submit", "status", status=429, retry_after=3)
    limited = cqtai_submit(client, sb)
    assert limited.status_code == 200 and limited.headers["retry-after"] == "3"
    assert limited.json() == {"code": 429, "msg": "Task limit reached", "data": None}
    sb.faults.add("cqtai.submit", "status", status=402, style="http")
    broke = cqtai_submit(client, sb)
    assert broke.status_code == 402 and broke.json()["msg"] == "insufficient credits"
    assert [s["fault"] for s in sb.submits] == ["status", "status"]
    assert not any(s["accepted"] for s in sb.submits)
    assert cqtai_submit(client, sb).json()["code"] == 200  # times=1 each: both used up


def test_status_fault_on_apiframe_and_download_with_times(sb, client):
    fault = sb.faults.add("apiframe.parent", "status", status=503, times=2)
    url = f"/v2/jobs/{sb.library['alpha'].parent_job_id}"
    assert [af(client, sb, "GET", url).status_code for _ in range(3)] == [503, 503, 200]
    assert fault.hits == 2 and fault.remaining == 0
    sb.faults.add("download", "status", status=500, path_contains="beta")
    assert client.get(f"{sb.suno_cdn_url}/alpha.mp3").status_code == 200
    assert client.get(f"{sb.suno_cdn_url}/05d72140-38f5-4eb4-bdaa-a6e0d1c1167e.mp3").status_code == 200
    sb.faults.add("download", "status", status=500, path_contains="05d72140")
    assert client.get(f"{sb.suno_cdn_url}/05d72140-38f5-4eb4-bdaa-a6e0d1c1167e.mp3").status_code == 500
    assert len(sb.faults.pending()) == 1  # the "beta" one never matched


def test_a_fault_every_nth_request_hits_one_in_n(sb, client):
    fault = sb.faults.add("apiframe.parent", "status", status=503, every=3, times=2)
    url = f"/v2/jobs/{sb.library['alpha'].parent_job_id}"
    assert [af(client, sb, "GET", url).status_code for _ in range(9)] == [200, 200, 503] * 2 + [200] * 3
    assert (fault.hits, fault.seen, fault.remaining) == (2, 6, 0)
    with pytest.raises(ValueError, match="every must be"):
        sb.faults.add("download", "drop", every=0)


def test_malformed_faults(sb, client):
    sb.faults.add("cqtai.poll", "malformed")
    task_id = cqtai_submit(client, sb).json()["data"]
    html = cqtai_info(client, sb, task_id)
    assert html.status_code == 200 and html.text == "<html>oops</html>"
    with pytest.raises(ValueError):
        html.json()
    sb.faults.add("apiframe.submit", "malformed", variant="truncated")
    cut = af_submit(client, sb, index=1)
    assert cut.status_code == 202 and cut.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        cut.json()
    assert sb.submits[-1]["accepted"] is True  # the job exists: the provider charged


def test_drop_mid_download_then_resume_with_range(sb, client, library):
    whole = (library / "alpha" / "source.mp3").read_bytes()
    sb.faults.add("download", "drop", after_bytes=5000)
    url = f"{sb.suno_cdn_url}/alpha.mp3"
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", url) as response:
            assert int(response.headers["content-length"]) == len(whole)
            for piece in response.iter_raw():
                received += piece
    assert bytes(received) == whole[:5000]
    rest = client.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206 and bytes(received) + rest.content == whole


def test_drop_on_an_api_route_answers_nothing(sb, client):
    job_id = af_submit(client, sb, index=1).json()["jobId"]
    for _ in range(20):  # the log is written before the connection is cut (CI once saw it after)
        sb.faults.add("apiframe.poll", "drop")
        with pytest.raises(httpx.RemoteProtocolError):
            af(client, sb, "GET", f"/v2/jobs/{job_id}")
        assert sb.requests[-1] == ("GET", f"/apiframe/v2/jobs/{job_id}", None)
    assert af(client, sb, "GET", f"/v2/jobs/{job_id}").json()["status"] == "QUEUED"  # not polled


def test_hang_after_accept_records_the_job_and_stop_is_prompt(library):
    sb = Sandbox(library).start()
    sb.faults.add("cqtai.submit", "hang_after_accept", seconds=30)
    with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        cqtai_submit(client, sb)
    (record,) = sb.submits
    assert record["accepted"] is True and len(record["job_id"]) == 32
    assert record["fault"] == "hang_after_accept"
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2


def test_hang_then_drop_closes_without_answer(sb, client):
    sb.faults.add("apiframe.submit", "hang_after_accept", seconds=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        af_submit(client, sb, index=1)
    assert sb.submits[-1]["accepted"] is True


def test_delay_fault(sb, client):
    sb.faults.add("cqtai.submit", "delay", seconds=0.4)
    started = time.monotonic()
    assert cqtai_submit(client, sb).json()["code"] == 200
    assert time.monotonic() - started >= 0.4


def test_fault_api_rejects_mistakes(sb):
    with pytest.raises(ValueError):
        sb.faults.add("cqtai.sumbit", "status")
    with pytest.raises(ValueError):
        sb.faults.add("download", "hang_after_accept")
    with pytest.raises(TypeError):
        sb.faults.add("download", "drop", seconds=1)
    with pytest.raises(ValueError):
        sb.polls_to_complete = -1


# ----------------------------------------------------------------------------- ledger


def test_ledger_never_holds_keys_and_resets(sb, client):
    cqtai_submit(client, sb)
    af_submit(client, sb, index=1)
    af_submit(client, sb, key="afk_wrong", index=1)
    assert [(s["provider"], s["accepted"]) for s in sb.submits] == \
        [("cqtai", True), ("apiframe", True), ("apiframe", False)]
    assert [r[0] for r in sb.requests] == ["POST"] * 3
    assert [r[2] for r in sb.requests] == [200, 202, 401]
    text = repr((sb.submits, sb.requests, vars(sb), vars(sb.cqtai), vars(sb.apiframe),
                 vars(sb.cqtai.keys), vars(sb.apiframe.keys)))
    for key in (CQTAI_KEY, APIFRAME_KEY):
        assert key not in text
    sb.reset_ledger()
    assert sb.submits == [] and sb.requests == []


def test_serve_blocks_until_stopped(library):
    stop, urls = threading.Event(), []
    thread = threading.Thread(target=serve, args=(library,), daemon=True,
                              kwargs={"port": 0, "stop": stop, "on_ready": lambda sb: urls.append(sb.url)})
    thread.start()
    deadline = time.monotonic() + 5
    while not urls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert httpx.get(f"{urls[0]}/suno-cdn/alpha.mp3").status_code == 200
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
