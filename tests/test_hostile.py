"""Answers the providers' docs do not promise: accepted-but-unreadable submits, redirects, echoed
keys. Whatever comes back, nothing is paid twice and no key leaves for another host or reaches a
message or a file."""

import json
import time

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG
from stemlab.errors import AuthError, DownloadError, JobFailedError, RedirectError, SubmitUncertainError
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


def test_a_truncated_mp3_is_flagged_not_zero_filled(tmp_path):
    """A tagged MP3 cut at 30%: its Xing frame still claims the full length, and every decoder
    believes it (libsndfile and miniaudio alike report 2.000 s)."""
    import numpy as np
    import soundfile as sf

    import stemlab
    from stemlab.audio import decode, probe
    from stemlab.encode import mp3_bytes
    from stemlab.sandbox.synth import synth_stems

    stems = synth_stems(duration=2.0, sr=22050, names=("vocals", "bass"), seed=2)
    folder = tmp_path / "set"
    folder.mkdir()
    for name, audio in stems.items():
        data = mp3_bytes(audio, 22050)
        (folder / f"{name}.mp3").write_bytes(data[: int(len(data) * 0.3)] if name == "bass" else data)
    sf.write(folder / "mixture.wav", sum(stems.values()).T, 22050, subtype="FLOAT")
    cut = folder / "bass.mp3"
    assert sf.info(str(cut)).frames == 2 * 22050  # what the header claims
    facts = probe(cut)
    audio, _ = decode(cut)
    assert facts.truncated and facts.frames == audio.shape[1] < 0.5 * 2 * 22050
    assert np.count_nonzero(audio[:, -100:]) > 0  # its real end, not a run of zeros
    report = stemlab.check(folder, cache_dir=tmp_path / "cache")
    assert not report.ok and "bass" in report.culprits
    assert any(p.startswith("bass is truncated") for p in report.problems)
    assert "truncated" in report.to_dict()["stems"][1]["verdict"]


def test_a_trickling_cdn_ends_in_a_clear_error_and_the_job_is_kept(sandbox, settings):
    sandbox.faults.add("download", "trickle", bytes_per_second=2, path_contains="suno-cdn")
    slow = settings.replace(http_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="slower than 16 KB/s.*no new charge"):
        cqtai(slow)
    assert time.monotonic() - started < 15
    assert _job(settings, f"cqtai-12-{CLIP_ID}")["state"] == "submitted"
    assert len(cqtai(settings)) == 12 and len(sandbox.submits) == 1


def test_long_waits_are_capped_and_said():
    from stemlab.errors import RateLimitError
    from stemlab.http import MAX_WAIT, RetryPolicy, retrying

    calls, waits, notes = [], [], []

    def busy():
        calls.append(1)
        if len(calls) < 3:
            raise RateLimitError("busy", retry_after=3600.0)
        return "ok"

    assert retrying(busy, policy=RetryPolicy(attempts=3), sent_is_safe=True, sleep=waits.append,
                    on_wait=lambda seconds, why: notes.append(why)) == "ok"
    assert waits == [MAX_WAIT, MAX_WAIT] == [60.0, 60.0]
    assert notes == ["asked to wait 60 s"] * 2


@pytest.mark.parametrize("key", ["sk-abc\r\ndef", "sk-\u200bpasted", "sk-caf\u00e9"])
def test_a_malformed_key_fails_before_anything_is_sent_or_recorded(sandbox, settings, key):
    from stemlab.errors import ConfigError

    with pytest.raises(ConfigError, match="CQTAI_API_KEY holds .* paste the key again") as err:
        cqtai(settings, api_key=key)
    assert key not in str(err.value)
    assert sandbox.requests == [] and not (settings.cache_dir / "sets").exists()
