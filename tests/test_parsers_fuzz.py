"""Every provider parser, fuzzed with hypothesis: whatever JSON (or non-JSON) comes back, only
stemlab's own errors escape, and finished stems have unique names made of ``[a-z0-9_]``."""

import json
import re

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stemlab.config import Settings
from stemlab.errors import StemlabError
from stemlab.http import RetryPolicy
from stemlab.providers.apiframe import Apiframe, ApiframeRequest
from stemlab.providers.base import JobStatus
from stemlab.providers.cqtai import Cqtai, CqtaiRequest

EXAMPLES = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = re.compile(r"[a-z0-9_]+")
NO_WAIT = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, jitter=0.0)
SETTINGS = Settings(cache_dir="/nonexistent").replace(cqtai_url="https://api.cqtai.test", apiframe_url="https://api.apiframe.test",
                                                      suno_cdn_url="https://cdn.suno.test", cqtai_api_key="sk-fuzz",
                                                      apiframe_api_key="afk_fuzz")

anything = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 400), max_value=10 ** 400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
# the answers a parser must survive are mostly well-formed, with one field wrong: weight them so
url = st.sampled_from(["https://cdn.suno.test/a.mp3"] * 6 + ["http://cdn.evil.test/b.mp3", "", "audiopipe.suno.ai/x",
                                                             "https://cdn.suno.test/\x1b[31m.mp3"]) | anything
label = st.sampled_from(["Vocals", "vocals", "Vocal", " (Drums)", "Backing_Vocals", "\x1b]0;pwned\x07", "", "../x"]) | anything
status_word = st.sampled_from(["succeeded"] * 4 + ["success", "failed", "error", "running", "", "SUCCEEDED"]) | anything

def mostly(good, bad=anything):
    """Usually ``good``, sometimes ``bad``: answers are mostly well formed with one field wrong."""
    return st.one_of(good, good, good, bad)


duration = mostly(st.floats(min_value=0, max_value=600), anything)
cqtai_clip = mostly(st.fixed_dictionaries({"audio_url": url, "title": label, "duration": duration,
                                           "metadata": mostly(st.fixed_dictionaries(
                                               {"stem_type_group_name": label, "duration": duration}))}))
cqtai_poll = mostly(st.fixed_dictionaries({
    "code": mostly(st.just(200)), "msg": mostly(st.just("success")),
    "data": mostly(st.fixed_dictionaries({"status": status_word, "errorMsg": mostly(st.just("")),
                                          "result": mostly(st.lists(cqtai_clip, min_size=1, max_size=6))}))}))
apiframe_track = mostly(st.fixed_dictionaries({"id": label, "title": label, "audioUrl": url, "duration": duration}))
apiframe_poll = mostly(st.fixed_dictionaries({
    "status": mostly(st.just("COMPLETED"), st.sampled_from(["FAILED", "PROCESSING", "completed"]) | anything),
    "progress": mostly(st.integers(0, 100)), "error": anything,
    "result": mostly(st.fixed_dictionaries({"tracks": mostly(st.lists(apiframe_track, min_size=1, max_size=4))}),
                     st.lists(apiframe_track, max_size=3) | anything)}))


@st.composite
def answers(draw, body_strategy):
    """An HTTP answer: a status, a Retry-After header, and a body (JSON of the strategy, any JSON, or bytes)."""
    status = draw(st.sampled_from([200] * 10 + [201, 202, 204, 400, 401, 402, 404, 408, 409, 429, 451, 500, 503]))
    kind = draw(st.sampled_from(["shaped"] * 6 + ["json", "bytes"]))
    if kind == "shaped":
        content = json.dumps(draw(body_strategy), allow_nan=True).encode()
    elif kind == "json":
        content = json.dumps(draw(anything), allow_nan=True).encode()
    else:
        content = draw(st.binary(max_size=64))
    retry = draw(st.sampled_from(["", "nan", "inf", "-5", "1e999", "2", "Wed, 21 Oct 2015 07:28:00 GMT"]))
    return status, content, retry


def _client(answer) -> httpx.Client:
    status, content, retry = answer
    headers = {"Content-Type": "application/json", **({"Retry-After": retry} if retry else {})}
    return httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=content,
                                                                                      headers=headers)))


def _only_stemlab_errors(call):
    try:
        return call()
    except StemlabError:
        return None


def _check_stems(status):
    if isinstance(status, JobStatus) and status.state == "done":
        names = [stem.name for stem in status.stems]
        assert len(set(names)) == len(names), names
        assert all(NAME.fullmatch(name) for name in names), names
        assert all(isinstance(stem.url, str) for stem in status.stems)


@EXAMPLES
@given(answers(st.fixed_dictionaries({}, optional={"code": anything, "data": anything, "msg": anything})))
@example(answer=(200, b'{"code": Infinity}', ""))  # found by CI: int(inf) raised OverflowError
@example(answer=(200, b'{"code": 1e400}', ""))
def test_cqtai_submit(answer):
    job = _only_stemlab_errors(lambda: Cqtai(_client(answer), SETTINGS, policy=NO_WAIT).submit(CqtaiRequest("abc")))
    assert job is None or (isinstance(job, str) and job)


@EXAMPLES
@given(answers(cqtai_poll))
def test_cqtai_poll_and_finished_stems(answer):
    _check_stems(_only_stemlab_errors(lambda: Cqtai(_client(answer), SETTINGS, policy=NO_WAIT).poll("task-1")))


@EXAMPLES
@given(answers(st.fixed_dictionaries({}, optional={"jobId": anything, "error": anything})))
def test_apiframe_submit(answer):
    job = _only_stemlab_errors(lambda: Apiframe(_client(answer), SETTINGS, policy=NO_WAIT).submit(
        ApiframeRequest("parent-1", index=1)))
    assert job is None or (isinstance(job, str) and job)


@EXAMPLES
@given(answers(apiframe_poll))
def test_apiframe_poll_and_finished_tracks(answer):
    _check_stems(_only_stemlab_errors(lambda: Apiframe(_client(answer), SETTINGS, policy=NO_WAIT).poll("job-1")))


@EXAMPLES
@given(answers(apiframe_poll), st.sampled_from([{"index": 1}, {"index": 2}, {"track_id": "t-1"}]))
def test_apiframe_source(answer, which):
    source = _only_stemlab_errors(lambda: Apiframe(_client(answer), SETTINGS, policy=NO_WAIT).source(
        ApiframeRequest("parent-1", **which)))
    assert source is None or isinstance(source.url, str)


@pytest.mark.parametrize("provider", ["cqtai", "apiframe"])
def test_json_nested_fifty_thousand_deep_is_a_protocol_error(provider):
    deep = ("[" * 50_000 + "]" * 50_000).encode()
    client = _client((200, deep, ""))
    call = (lambda: Cqtai(client, SETTINGS, policy=NO_WAIT).poll("t")) if provider == "cqtai" else (
        lambda: Apiframe(client, SETTINGS, policy=NO_WAIT).poll("j"))
    with pytest.raises(StemlabError, match="not JSON"):
        call()
