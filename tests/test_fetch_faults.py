"""Faults: each recovers, or stops with a one-line error; nothing partial is cached, nothing is paid twice."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, SONG
from stemlab.errors import (AuthError, ConflictError, ContentPolicyError, CreditsError, DownloadError,
                            JobFailedError, JobTimeoutError, ProviderServerError, RateLimitError,
                            SubmitUncertainError)
from stemlab.fetching import fetch


def _accepted(sandbox):
    return [s for s in sandbox.submits if s["accepted"]]


def _cached_files(settings):
    return sorted(p.relative_to(settings.cache_dir).as_posix() for p in settings.cache_dir.rglob("*") if p.is_file()
                  and "locks" not in p.parts)


def _no_partial_files(settings):
    leftovers = [p for p in _cached_files(settings) if p.endswith((".part", ".tmp"))]
    assert leftovers == [], leftovers


def cqtai(settings, **kwargs):
    return fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False, **kwargs)


def test_submit_5xx_and_429_answers_are_retried_and_charged_once(sandbox, settings):
    sandbox.faults.add("cqtai.submit", "status", status=500, style="http")
    sandbox.faults.add("cqtai.submit", "status", status=429, retry_after=0)
    s = cqtai(settings)
    assert len(s) == 12
    assert [x["accepted"] for x in sandbox.submits] == [False, False, True]


@pytest.mark.parametrize("style", ["body", "http"])
@pytest.mark.parametrize("status, error, words", [
    (401, AuthError, "CQTAI_API_KEY"), (402, CreditsError, "recharge"), (451, ContentPolicyError, "moderation"),
])
def test_cqtai_errors_in_either_form_stop_with_a_clear_message(sandbox, settings, style, status, error, words):
    sandbox.faults.add("cqtai.submit", "status", status=status, style=style)
    with pytest.raises(error, match=words) as info:
        cqtai(settings)
    assert str(status) in str(info.value)
    assert _cached_files(settings) == []  # refused: nothing to remember, nothing charged
    cqtai(settings)  # and the next call submits normally
    assert len(_accepted(sandbox)) == 1


def test_task_limit_is_retried_then_reported(sandbox, settings):
    sandbox.faults.add("cqtai.submit", "status", status=429, times=None)
    with pytest.raises(RateLimitError, match="task limit"):
        cqtai(settings)
    assert _accepted(sandbox) == []


def test_wrong_keys_are_auth_errors_for_both_providers(sandbox, settings):
    wrong = settings.replace(cqtai_api_key="sk-wrong", apiframe_api_key="afk_wrong")
    with pytest.raises(AuthError, match="CQTAI_API_KEY") as info:
        cqtai(wrong)
    assert "sk-wrong" not in str(info.value)
    with pytest.raises(AuthError, match="APIFRAME_API_KEY") as info:
        fetch("apiframe", parent_job_id=sandbox.song(SONG).parent_job_id, index=1, settings=wrong, progress=False)
    assert "Invalid API key" in str(info.value) and "afk_wrong" not in str(info.value)
    assert _cached_files(settings) == []


def test_poll_5xx_and_malformed_json_recover(sandbox, settings):
    sandbox.faults.add("cqtai.poll", "status", status=503, style="http")
    sandbox.faults.add("cqtai.poll", "malformed", variant="html")
    sandbox.faults.add("cqtai.poll", "status", status=500, style="body")
    assert len(cqtai(settings)) == 12
    assert len(_accepted(sandbox)) == 1


def test_a_failed_job_quotes_the_provider_and_is_not_resubmitted(sandbox, settings):
    sandbox.set_outcome(CLIP_ID, "fail", message="stem model crashed on this clip")
    with pytest.raises(JobFailedError, match="stem model crashed on this clip"):
        cqtai(settings)
    with pytest.raises(JobFailedError, match="force=True"):
        cqtai(settings)
    assert len(_accepted(sandbox)) == 1
    sandbox.set_outcome(CLIP_ID, "ok")
    assert len(cqtai(settings, force=True)) == 12
    assert len(_accepted(sandbox)) == 2


def test_apiframe_failed_job_and_conflict(sandbox, settings):
    song = sandbox.song(SONG)
    sandbox.set_outcome(song.parent_job_id, "fail", message="Provider returned an error: content policy violation")
    with pytest.raises(JobFailedError, match="content policy violation"):
        fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False)
    stems_job = _accepted(sandbox)[0]["job_id"]
    with pytest.raises(ConflictError, match="cannot be the parent"):
        fetch("apiframe", parent_job_id=stems_job, index=1, settings=settings, progress=False)


def test_a_stuck_job_times_out_then_resumes_without_a_new_submit(sandbox, settings):
    sandbox.set_outcome(CLIP_ID, "stuck")
    with pytest.raises(JobTimeoutError, match="fetch again later to resume"):
        cqtai(settings.replace(job_timeout=0.3))
    sandbox.set_outcome(CLIP_ID, "ok")
    assert len(cqtai(settings)) == 12
    assert len(_accepted(sandbox)) == 1


def test_a_submit_without_an_answer_is_never_repeated(sandbox, settings):
    sandbox.faults.add("cqtai.submit", "hang_after_accept", seconds=3)
    with pytest.raises(SubmitUncertainError, match="may have been charged"):
        cqtai(settings.replace(http_timeout=0.5))
    assert len(_accepted(sandbox)) == 1  # the provider did create (and charge) a job
    with pytest.raises(SubmitUncertainError, match="force=True"):
        cqtai(settings)
    assert len(sandbox.submits) == 1  # and stemlab did not send a second submit
    assert len(cqtai(settings, force=True)) == 12


def test_ctrl_c_while_polling_resumes_the_same_job(sandbox, settings):
    """A real SIGINT arrives while a poll is in flight (the sandbox holds that answer back)."""
    sandbox.polls_to_complete = 4
    held = sandbox.faults.add("cqtai.poll", "delay", seconds=5)

    def interrupt_when_the_poll_is_held():
        deadline = time.monotonic() + 20
        while held.remaining and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the client is now waiting for the held answer
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_the_poll_is_held, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cqtai(settings)
    assert time.monotonic() - started < 4  # interrupted, not answered
    record = json.loads((settings.cache_dir / "sets" / f"cqtai-12-{CLIP_ID}" / "job.json").read_text())
    assert record["state"] == "submitted" and record["job_id"] == _accepted(sandbox)[0]["job_id"]
    assert len(cqtai(settings)) == 12
    assert len(sandbox.submits) == 1


def test_a_dropped_download_resumes_with_range(sandbox, settings):
    sandbox.faults.add("download", "drop", after_bytes=5000, path_contains="suno-cdn", times=3)
    s = cqtai(settings)
    assert len(s) == 12
    assert sum(1 for method, path, status in sandbox.requests if status == 206) >= 3
    _no_partial_files(settings)


def test_a_missing_stem_file_leaves_nothing_partial_and_resumes_free(sandbox, settings):
    sandbox.faults.add("download", "status", status=404, path_contains="suno-cdn", times=1)
    with pytest.raises(DownloadError, match="404"):
        cqtai(settings)
    _no_partial_files(settings)
    assert not any(p.endswith("manifest.json") for p in _cached_files(settings))
    assert len(cqtai(settings)) == 12
    assert len(sandbox.submits) == 1


def test_download_5xx_is_retried(sandbox, settings):
    sandbox.faults.add("download", "status", status=502, times=4)
    assert len(cqtai(settings)) == 12


def test_provider_5xx_on_every_poll_ends_in_a_clear_error(sandbox, settings):
    sandbox.faults.add("cqtai.poll", "status", status=500, style="http", times=None)
    with pytest.raises(ProviderServerError, match="retry later|later"):
        cqtai(settings)
    assert len(_accepted(sandbox)) == 1
    sandbox.faults.clear()
    assert len(cqtai(settings)) == 12 and len(sandbox.submits) == 1


def test_two_fetches_at_once_share_one_job(sandbox, settings):
    sandbox.polls_to_complete = 3
    results, errors = [], []

    def run():
        try:
            results.append(cqtai(settings))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2 and results[0].folder == results[1].folder
    assert len(sandbox.submits) == 1


def test_apiframe_poll_429_waits_as_told(sandbox, settings):
    song = sandbox.song(SONG)
    sandbox.faults.add("apiframe.poll", "status", status=429, retry_after=1)
    started = time.monotonic()
    s = fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False)
    assert len(s) == 2 and time.monotonic() - started >= 1.0  # the retry delay is 0.01 s: 1 s came from the header


def test_webhook_signatures_verify(sandbox, settings):
    from stemlab.providers.apiframe import verify_webhook_signature

    song = sandbox.song(SONG)
    fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False,
          webhook_url="https://hooks.example/x", webhook_events=["progress", "completed"])
    job_id = _accepted(sandbox)[0]["job_id"]
    deliveries = sandbox.webhooks(job_id)
    assert {json.loads(body)["event"] for _, body in deliveries} >= {"completed"}
    for headers, body in deliveries:
        signature = headers["X-Webhook-Signature"]
        assert verify_webhook_signature(body, signature, APIFRAME_KEY)
        assert verify_webhook_signature(body, base64.b64encode(bytes.fromhex(signature)).decode(), APIFRAME_KEY)
        assert not verify_webhook_signature(body + b" ", signature, APIFRAME_KEY)
        assert not verify_webhook_signature(body, signature, "afk_someone_else")


def test_two_processes_fetching_one_set_pay_once(sandbox, sandbox_env):
    sandbox.polls_to_complete = 8
    command = [sys.executable, "-m", "stemlab", "fetch", "cqtai", CLIP_ID, "--json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert json.loads(outputs[0][0])["set_dir"] == json.loads(outputs[1][0])["set_dir"]
    assert len(sandbox.submits) == 1
