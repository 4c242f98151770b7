"""The command line is a contract: JSON shapes, exit codes and one-line errors, against the sandbox."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG


def stemlab(*args, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def one_json(result):
    assert result.stdout.count("\n") == 1, result.stdout
    return json.loads(result.stdout)


def assert_one_line_error(result, code):
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stemlab: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert CQTAI_KEY not in result.stderr and APIFRAME_KEY not in result.stderr


def test_fetch_cqtai_json_contract(sandbox_env, sandbox):
    out = one_json(stemlab("fetch", "cqtai", CLIP_ID, "--json"))
    assert set(out) == {"provider", "job_id", "set_dir", "source", "source_error", "stems"}
    assert out["source_error"] is None
    assert out["provider"] == "cqtai" and out["job_id"] == sandbox.submits[0]["job_id"]
    assert set(out["source"]) == {"path", "duration"} and abs(out["source"]["duration"] - 4.0) < 0.01
    assert len(out["stems"]) == 12
    for stem in out["stems"]:
        assert set(stem) == {"name", "label", "path", "duration"}
        assert re.fullmatch(r"[a-z_]+", stem["name"]) and os.path.isfile(stem["path"])
    names = [s["name"] for s in out["stems"]]
    assert names[:3] == ["vocals", "backing_vocals", "drums"]  # canonical order, whatever the provider's
    again = one_json(stemlab("fetch", "cqtai", CLIP_ID, "--json"))
    assert again == out and len(sandbox.submits) == 1


def test_fetch_apiframe_and_check_by_every_kind_of_reference(sandbox_env, sandbox):
    song = sandbox.song(SONG)
    out = one_json(stemlab("fetch", "apiframe", song.parent_job_id, "--index", "1", "--json",
                           "--webhook-url", "https://hooks.example/x", "--webhook-event", "completed"))
    assert [s["name"] for s in out["stems"]] == ["vocals", "instrumental"]
    assert sandbox.submits[0]["body"]["webhookEvents"] == ["completed"]
    for ref in (out["job_id"], song.parent_job_id, out["set_dir"]):
        result = stemlab("check", ref, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert set(report) >= {"ok", "source_duration", "lag_samples", "gain", "residual_db", "stems"}
        assert report["ok"] is True and report["lag_samples"] == 0
        assert [set(s) >= {"name", "duration", "delta_s", "ok"} for s in report["stems"]] == [True, True]


def test_check_exit_code_1_names_the_short_stem(tmp_path, sandbox_env):
    import soundfile as sf

    from stemlab.sandbox.synth import synth_stems

    stems = synth_stems(duration=2.0, names=("vocals", "bass"))
    folder = tmp_path / "myset"
    folder.mkdir()
    sf.write(folder / "vocals.wav", stems["vocals"].T, 44100)
    sf.write(folder / "bass.wav", stems["bass"][:, :-8820].T, 44100)
    sf.write(folder / "mixture.wav", (stems["vocals"] + stems["bass"]).T, 44100)
    result = stemlab("check", str(folder))
    assert result.returncode == 1
    assert "bass is 0.200 s shorter than the source" in result.stdout
    report = json.loads(stemlab("check", str(folder), "--json").stdout)
    assert report["ok"] is False and [s["ok"] for s in report["stems"]] == [True, False]


@pytest.mark.parametrize("args, words", [
    (("fetch", "apiframe", "job1"), "one of the arguments --index --track-id is required"),
    (("fetch", "apiframe", "job1", "--index", "1", "--track-id", "t"), "not allowed with argument"),
    (("fetch", "apiframe", "job1", "--index", "3"), "invalid choice"),
    (("fetch", "apiframe", "job1", "--index", "1", "--webhook-url", "http://x.example"), "https"),
    (("fetch", "suno", "x"), "invalid choice"),
    (("check", "no-such-set"), "no set 'no-such-set'"),
    (("fetch",), "required"),
])
def test_usage_errors_exit_2_in_one_line_and_send_nothing(sandbox_env, sandbox, args, words):
    result = stemlab(*args)
    assert_one_line_error(result, 2)
    assert words in result.stderr
    assert sandbox.requests == []


def test_missing_key_is_a_usage_error(sandbox_env, sandbox):
    result = stemlab("fetch", "cqtai", CLIP_ID, env={"CQTAI_API_KEY": ""})
    assert_one_line_error(result, 2)
    assert "CQTAI_API_KEY" in result.stderr and sandbox.requests == []


def test_provider_errors_exit_3_without_the_key(sandbox_env, sandbox):
    wrong = "sk-wrong-but-secret-123456"
    result = stemlab("fetch", "cqtai", CLIP_ID, "--json", env={"CQTAI_API_KEY": wrong})
    assert_one_line_error(result, 3)
    assert "401" in result.stderr and wrong not in result.stderr
    sandbox.set_outcome(CLIP_ID, "fail", message="separation failed")
    result = stemlab("fetch", "cqtai", CLIP_ID)
    assert_one_line_error(result, 3)
    assert "separation failed" in result.stderr


def test_force_submits_again(sandbox_env, sandbox):
    assert stemlab("fetch", "cqtai", CLIP_ID, "--two", "--quiet").returncode == 0
    assert stemlab("fetch", "cqtai", CLIP_ID, "--two", "--force", "--quiet").returncode == 0
    assert len([s for s in sandbox.submits if s["accepted"]]) == 2


def test_ls_lists_sets(sandbox_env, sandbox):
    stemlab("fetch", "cqtai", CLIP_ID, "--quiet")
    listing = json.loads(stemlab("ls", "--json").stdout)
    assert [(e["provider"], e["state"], e["stems"]) for e in listing] == [("cqtai", "complete", 12)]
    assert f"cqtai-12-{CLIP_ID}" in stemlab("ls").stdout


def test_sandbox_command_serves_the_demo_song(tmp_path):
    env = {**os.environ, "STEMLAB_CACHE_DIR": str(tmp_path / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "stemlab", "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        exports, deadline = {}, time.monotonic() + 120
        while "STEMLAB_POLL_INTERVAL" not in exports and time.monotonic() < deadline:
            line = server.stdout.readline()
            match = re.match(r"\s+export (\w+)=(\S+)", line)
            if match:
                exports[match.group(1)] = match.group(2)
        assert exports["STEMLAB_CQTAI_URL"].startswith("http://127.0.0.1:")
        out = one_json(stemlab("fetch", "cqtai", "paper-lanterns", "--two", "--json", env={**exports,
                               "STEMLAB_CACHE_DIR": str(tmp_path / "client-cache")}))
        assert [s["name"] for s in out["stems"]] == ["vocals", "instrumental"]
        assert abs(out["source"]["duration"] - 41.0) < 0.05
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_compare_sets_by_id(sandbox_env, sandbox):
    two = one_json(stemlab("fetch", "cqtai", CLIP_ID, "--two", "--json"))
    song = sandbox.song(SONG)
    assert stemlab("fetch", "apiframe", song.parent_job_id, "--index", "1", "--quiet").returncode == 0
    result = stemlab("compare", two["job_id"], song.parent_job_id, "--json")
    assert result.returncode == 0, result.stderr
    report = one_json(result)
    assert [s["name"] for s in report["sets"]] == ["cqtai-2", "apiframe"]
    agreement = [r for r in report["rows"] if r["metric"] == "agreement_si_sdr"]
    assert {r["stem"] for r in agreement} == {"vocals", "instrumental"}
    assert all(r["identical"] and r["value"] is None for r in agreement)  # the sandbox serves the same files
    text = stemlab("compare", two["job_id"], song.parent_job_id)
    assert "agreement_si_sdr" in text.stdout and "lags: cqtai-2 0, apiframe 0" in text.stdout
    assert "identical" in text.stdout
