"""Answers the providers' docs do not promise: accepted-but-unreadable submits, redirects, echoed
keys. Whatever comes back, nothing is paid twice and no key leaves for another host or reaches a
message or a file."""

import json

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG
from stemlab.errors import AuthError, JobFailedError, RedirectError, SubmitUncertainError
from stemlab.fetching import fetch


def cqtai(settings, **kwargs):
    return fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False, **kwargs)


def apiframe(sandbox, settings, **kwargs):
    return fetch("apiframe", parent_job_id=sandbox.song(SONG).parent_job_id, index=1, settings=settings,
                 progress=False, **kwargs)


def _accepted(sandbox):
    return [s for s in sandbox.submits if s["accepted"]]


def _job(settings, key):
    return json.loads((settings.cache_dir / "sets" / key / "job.json").read_text())


@pytest.mark.parametrize("body", ['{"code":200,"data":null}', '{"code":200,"data":12345}', "not json at all",
                                  '{"code":200,"data":{"taskId":7}}', '[1, 2]'])
def test_an_accepted_but_unreadable_cqtai_submit_is_uncertain_and_never_repeated(sandbox, settings, body):
    sandbox.faults.add("cqtai.submit", "accepted", body=body)
    with pytest.raises(SubmitUncertainError, match="check your cqtai console.*--force"):
        cqtai(settings)
    assert len(_accepted(sandbox)) == 1  # the job exists, and was charged
    assert _job(settings, f"cqtai-12-{CLIP_ID}")["state"] == "uncertain"  # remembered, not wiped
    with pytest.raises(SubmitUncertainError):
        cqtai(settings)
    assert len(sandbox.submits) == 1  # and no second submit was sent
    assert len(cqtai(settings, force=True)) == 12


@pytest.mark.parametrize("body", ["{}", '{"jobId": 42}', '{"jobId": "abc', ""])
def test_an_accepted_but_unreadable_apiframe_submit_is_uncertain(sandbox, settings, body):
    sandbox.faults.add("apiframe.submit", "accepted", body=body)
    with pytest.raises(SubmitUncertainError, match="--force"):
        apiframe(sandbox, settings)
    assert len(_accepted(sandbox)) == 1
    with pytest.raises(SubmitUncertainError):
        apiframe(sandbox, settings)
    assert len(sandbox.submits) == 1


def test_only_an_explicit_refusal_forgets_the_submit(sandbox, settings):
    sandbox.faults.add("cqtai.submit", "status", status=402, style="body")
    with pytest.raises(Exception, match="402"):
        cqtai(settings)
    assert not (settings.cache_dir / "sets" / f"cqtai-12-{CLIP_ID}" / "job.json").exists()
    assert len(cqtai(settings)) == 12 and len(_accepted(sandbox)) == 1


def test_api_redirects_are_refused_and_the_key_goes_nowhere(sandbox, settings):
    job_id = None
    sandbox.faults.add("apiframe.poll", "redirect", status=307)
    with pytest.raises(RedirectError, match=r"redirect \(307\) to https://elsewhere.invalid.*key was not sent") as err:
        apiframe(sandbox, settings)
    assert "\n" not in str(err.value) and APIFRAME_KEY not in str(err.value)
    record = _job(settings, next(p.name for p in (settings.cache_dir / "sets").iterdir()))
    job_id = record["job_id"]
    assert record["state"] == "submitted" and job_id  # the paid job is kept: the next fetch resumes it
    assert len(apiframe(sandbox, settings)) == 2 and len(sandbox.submits) == 1


def test_a_redirected_submit_is_uncertain(sandbox, settings):
    sandbox.faults.add("cqtai.submit", "redirect", status=308, to="https://elsewhere.invalid/api")
    with pytest.raises(SubmitUncertainError, match="redirect"):
        cqtai(settings)
    assert _job(settings, f"cqtai-12-{CLIP_ID}")["state"] == "uncertain"


def test_a_key_the_provider_echoes_is_masked_everywhere(sandbox, settings):
    sandbox.faults.add("apiframe.submit", "echo_key")
    with pytest.raises(AuthError) as err:
        apiframe(sandbox, settings)
    assert APIFRAME_KEY not in str(err.value) and "invalid key ********" in str(err.value)
    sandbox.set_outcome(CLIP_ID, "fail", message=f"task failed for key {CQTAI_KEY}")
    with pytest.raises(JobFailedError) as failed:
        cqtai(settings)
    assert CQTAI_KEY not in str(failed.value)
    for path in settings.cache_dir.rglob("*.json"):
        assert CQTAI_KEY not in path.read_text() and APIFRAME_KEY not in path.read_text()


def test_two_tracks_with_the_same_name_are_both_kept(tmp_path, settings):
    """Apiframe answers two tracks called "vocals" (and CQTAI two clips labelled "Vocal"/"Vocals")."""
    from stemlab.sandbox import Sandbox
    from stemlab.sandbox.synth import make_song

    make_song(tmp_path / "library", "dup", duration=1.0, names=("vocals", "bass"),
              labels={"apiframe/instrumental": "vocals", "bass": "Vocal"})
    with Sandbox(tmp_path / "library", cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY) as sb:
        served = sb.settings(cache_dir=settings.cache_dir)
        two = fetch("apiframe", parent_job_id=sb.song("dup").parent_job_id, index=1, settings=served, progress=False)
        twelve = fetch("cqtai", clip_id="dup", settings=served, progress=False)
    assert two.names == ["vocals", "vocals_2"] and two["vocals_2"].path.exists()
    assert twelve.names == ["vocals", "vocals_2"]
    assert two["vocals"].path != two["vocals_2"].path
