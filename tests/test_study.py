"""``stemlab study`` end to end: the CLI in a subprocess, on a LocalCluster of 2 workers, against the
sandbox. The sandbox's ledger is the judge of "never twice": it counts every submit it accepted."""

from __future__ import annotations

import collections
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import zlib

import pandas as pd
import pytest
import soundfile as sf

from conftest import APIFRAME_KEY, CQTAI_KEY
from stemlab.cache import Cache
from stemlab.fetching import build_request
from stemlab.sandbox import Sandbox
from stemlab.sandbox.synth import make_song, synth_stems
from stemlab.taxonomy import TWELVE_STEMS

pytestmark = pytest.mark.slow
SONGS = [f"s{i}" for i in range(6)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six 2-second songs, four 12-stem and two with a 4-stem split, and their true stems: the
    synthesised audio before MP3 coding, as WAV files beside (not in) the sandbox's library."""
    root, truth = tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("truth")
    for i, song in enumerate(SONGS):
        names = ("vocals", "drums", "bass", "keyboard") if i >= 4 else TWELVE_STEMS
        make_song(root, song, duration=2.0, names=names)
        (truth / song).mkdir()
        for name, audio in synth_stems(2.0, 44100, names, (), zlib.crc32(song.encode())).items():
            sf.write(truth / song / f"{name}.wav", audio.T, 44100, subtype="FLOAT")
    return root, truth


@pytest.fixture
def study_sandbox(corpus):
    library, truth = corpus
    with Sandbox(library, cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY, polls_to_complete=2) as sb:
        sb.truth = truth
        yield sb


def songs_csv(path: Path, sandbox: Sandbox, songs=SONGS, *, truth=("s0", "s1", "s4")) -> Path:
    """Half the rows give CQTAI's clip id; the others only the Apiframe parent job and index (so
    CQTAI splits the track's id); truth for some, as a path relative to the CSV."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["song", "cqtai_clip_id", "apiframe_parent_job_id", "apiframe_index", "truth_dir"])
        for i, song in enumerate(songs):
            s = sandbox.song(song)
            truth_dir = os.path.relpath(sandbox.truth / song, path.parent) if song in truth else ""
            writer.writerow([song, s.clip_id if i % 2 == 0 else "", s.parent_job_id, 1, truth_dir])
    return path


def env_for(sandbox: Sandbox, cache: Path) -> dict:
    return {**os.environ, "STEMLAB_CQTAI_URL": sandbox.cqtai_url, "STEMLAB_APIFRAME_URL": sandbox.apiframe_url,
            "STEMLAB_SUNO_CDN_URL": sandbox.suno_cdn_url, "CQTAI_API_KEY": CQTAI_KEY,
            "APIFRAME_API_KEY": APIFRAME_KEY, "STEMLAB_CACHE_DIR": str(cache), "STEMLAB_POLL_INTERVAL": "0.02",
            "STEMLAB_RETRY_DELAY": "0.02"}


def run_study(sandbox, tmp_path, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "stemlab", "study", str(tmp_path / "songs.csv"), "--out",
                           str(tmp_path / "out"), "--json", *args], capture_output=True, text=True,
                          env=env_for(sandbox, tmp_path / "cache"), timeout=timeout, cwd=tmp_path)


def accepted(sandbox) -> collections.Counter:
    """Accepted submits per (provider, song), from the sandbox's own ledger."""
    song_of = {}
    for song in sandbox.library.values():
        song_of[song.clip_id] = song_of[song.parent_job_id] = song.song_id
        for track in song.tracks:
            song_of.setdefault(track.id, track.song_id)
    return collections.Counter((s["provider"], song_of[s["body"].get("clipId") or s["body"].get("parentJobId")])
                               for s in sandbox.submits if s["accepted"])


def test_a_study_end_to_end_on_two_workers(study_sandbox, tmp_path):
    sb = study_sandbox
    songs_csv(tmp_path / "songs.csv", sb)
    done = run_study(sb, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert {k: out[k] for k in ("songs", "done", "failed", "submits", "credits")} == \
        {"songs": 6, "done": 6, "failed": 0, "submits": 12, "credits": 6 * (150 + 11)}
    assert set(out) >= {"songs", "done", "failed", "submits", "credits", "results", "summary", "seconds"}
    assert accepted(sb) == {(p, s): 1 for p in ("cqtai", "apiframe") for s in SONGS}
    # CQTAI split the Apiframe track by its id where the row gave no clip id
    clips = {s["body"]["clipId"] for s in sb.submits if s["provider"] == "cqtai"}
    assert sb.song("s1").tracks[0].id in clips and sb.song("s0").clip_id in clips

    results = pd.read_parquet(out["results"])
    assert list(results.columns) == ["song", "set", "provider", "stem", "metric", "value", "silent", "flags"]
    assert set(results.song) == set(SONGS)
    truth = results[results.metric == "si_sdr"]
    assert set(truth.song) == {"s0", "s1", "s4"}  # only the songs with true stems
    # the sandbox's CQTAI split is the truth itself, MP3-coded: high SI-SDR; Apiframe's vocals too
    cqtai_vocals = truth[(truth.provider == "cqtai") & (truth.stem == "vocals")].value
    assert (cqtai_vocals > 15).all(), cqtai_vocals
    agreement = results[results.metric == "agreement_si_sdr"]
    assert set(agreement.provider) == {"cqtai vs apiframe", "apiframe vs cqtai"}
    assert set(agreement.stem) == {"vocals", "instrumental"}
    assert len(agreement) == 6 * 2 * 2
    checks = results[(results.metric == "recombines") & (results.stem == "mix")]
    assert len(checks) == 12 and (checks.value == 1.0).all()

    songs = pd.read_parquet(tmp_path / "out" / "songs.parquet")
    assert len(songs) == 12 and (songs.state == "done").all() and songs.submitted.all()
    assert set(songs.job_id) == {s["job_id"] for s in sb.submits if s["accepted"]}
    summary = pd.read_csv(out["summary"])
    vocals = summary[(summary.metric == "si_sdr") & (summary.stem == "vocals")].iloc[0]
    assert (vocals.a, vocals.b, vocals.n) == ("apiframe", "cqtai", 3) and vocals.ci_low <= vocals.ci_high
    assert Path(out["report"]).is_file() and Path(out["report"]).stat().st_size < 2_000_000

    # corpus mode: the cache holds the MP3s as served, no decoded arrays
    assert not list((tmp_path / "cache").rglob("*.npy"))
    # no key in anything the study wrote or printed
    written = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for key in (CQTAI_KEY, APIFRAME_KEY):
        assert key.encode() not in written and key not in done.stdout + done.stderr

    # a rerun of a finished study sends nothing and recomputes nothing
    records = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "songs").iterdir()}
    sb.reset_ledger()
    again = run_study(sb, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["submits"] == 0 and sb.requests == []
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "songs").iterdir()} == records
    assert pd.read_parquet(out["results"]).equals(results)


def test_sigkill_mid_study_then_rerun_submits_each_song_once(study_sandbox, tmp_path):
    sb = study_sandbox
    songs_csv(tmp_path / "songs.csv", sb, truth=())
    sb.set_outcome("s5", "stuck")  # s5's jobs keep running until the study has been killed
    cache = Cache(tmp_path / "cache")
    s5 = sb.song("s5")
    keys = [build_request("cqtai", clip_id=s5.tracks[0].id).cache_key,
            build_request("apiframe", parent_job_id=s5.parent_job_id, index=1).cache_key]
    process = subprocess.Popen([sys.executable, "-m", "stemlab", "study", str(tmp_path / "songs.csv"), "--out",
                                str(tmp_path / "out"), "--json"], env=env_for(sb, tmp_path / "cache"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            records = list((tmp_path / "out" / "songs").glob("*.json")) if (tmp_path / "out").exists() else []
            polling = all((cache.read_job(k) or {}).get("state") == "submitted" for k in keys)
            if len(records) == 5 and polling:
                break
            assert process.poll() is None, process.communicate()[1].decode()[-3000:]
            time.sleep(0.05)
        else:
            pytest.fail("the study did not reach 5 songs done with s5 polling in time")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its Dask workers, with no chance to clean up
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    before = accepted(sb)
    assert before == {(p, s): 1 for p in ("cqtai", "apiframe") for s in SONGS}
    kept = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "songs").iterdir()}

    sb.set_outcome("s5", "ok")
    again = run_study(sb, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    out = json.loads(again.stdout)
    assert (out["done"], out["failed"], out["submits"]) == (6, 0, 0)
    assert accepted(sb) == before  # exactly one accepted submit per song and provider
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # the 5 songs done were not redone


def test_jobs_in_flight_stay_under_the_limit_across_workers(study_sandbox, tmp_path):
    sb = study_sandbox
    sb.task_limit = 2  # CQTAI (and here Apiframe) answer 429 "Task limit reached" past 2 running jobs
    sb.polls_to_complete = 6
    songs_csv(tmp_path / "songs.csv", sb, truth=())
    done = run_study(sb, tmp_path, "--max-jobs", "cqtai=2", "--max-jobs", "apiframe=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(s["accepted"] for s in sb.submits), "a submit went past the limit and was refused"
    assert sb.peak_running == {"cqtai": 2, "apiframe": 2}  # the limit was reached, never passed


def test_a_429_past_the_provider_s_own_limit_backs_off_and_is_no_failure(study_sandbox, tmp_path):
    sb = study_sandbox
    sb.task_limit = 1
    songs_csv(tmp_path / "songs.csv", sb, songs=SONGS[:4], truth=())
    done = run_study(sb, tmp_path, "--max-jobs", "cqtai=3", "--max-jobs", "apiframe=3")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert (out["done"], out["failed"], out["submits"]) == (4, 0, 8)
    refused = [s for s in sb.submits if not s["accepted"]]
    assert refused, "the provider's limit was never hit, so backoff was not exercised"
    assert accepted(sb) == {(p, s): 1 for p in ("cqtai", "apiframe") for s in SONGS[:4]}
    assert sb.peak_running == {"cqtai": 1, "apiframe": 1}


def test_dry_run_sends_nothing_and_budget_stops_whole_songs(study_sandbox, tmp_path):
    sb = study_sandbox
    songs_csv(tmp_path / "songs.csv", sb, songs=SONGS[:3], truth=())
    dry = subprocess.run([sys.executable, "-m", "stemlab", "study", str(tmp_path / "songs.csv"), "--out",
                          str(tmp_path / "out"), "--dry-run", "--providers", "cqtai,apiframe,cqtai-two"],
                         capture_output=True, text=True, env=env_for(sb, tmp_path / "cache"), timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert sb.requests == [] and not (tmp_path / "cache" / "sets").exists()
    assert "9 job(s) to submit, 933 credits; nothing was sent" in dry.stdout  # 3 x (150 + 11 + 150 counted)
    assert "does not document the price of gen_stem_two" in dry.stdout

    done = run_study(sb, tmp_path, "--budget", "330")  # two songs of 161 credits fit, the third does not
    out = json.loads(done.stdout)
    assert (out["done"], out["over_budget"], out["submits"], out["credits"]) == (2, 1, 4, 322)
    assert accepted(sb) == {(p, s): 1 for p in ("cqtai", "apiframe") for s in SONGS[:2]}
    songs = pd.read_parquet(tmp_path / "out" / "songs.parquet")
    assert set(songs[songs.state == "over budget"].song) == {"s2"}


def test_a_bad_songs_file_is_one_line_and_sends_nothing(study_sandbox, tmp_path):
    (tmp_path / "songs.csv").write_text("song,clip\nx,1\n")
    done = run_study(study_sandbox, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("stemlab: error: ") and done.stderr.count("\n") == 1
    assert "unknown column(s) clip" in done.stderr and study_sandbox.requests == []


def test_the_python_api_on_a_scheduler_the_user_started(study_sandbox, tmp_path, monkeypatch):
    """``stemlab.study(..., scheduler=ADDRESS)``: the user's own cluster (threads here), whose
    workers read the keys from their environment; then ``client=`` on a finished study."""
    import distributed

    import stemlab

    sb = study_sandbox
    for name, value in env_for(sb, tmp_path / "cache").items():
        monkeypatch.setenv(name, value)
    rows = [{"song": s, "apiframe_parent_job_id": sb.song(s).parent_job_id, "apiframe_index": 1} for s in SONGS[:2]]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                                  protocol="tcp://", host="127.0.0.1") as cluster:
        result = stemlab.study(rows, out=tmp_path / "out", scheduler=cluster.scheduler_address, progress=False)
        assert result.to_dict()["done"] == 2 and result.submits == 4
        assert set(result.summary.metric) >= {"residual_db", "loudness_db", "leakage"}
        with distributed.Client(cluster) as client:
            again = stemlab.study(rows, out=tmp_path / "out", client=client, progress=False)
    assert again.submits == 0 and again.results.equals(result.results)
    assert accepted(sb) == {(p, s): 1 for p in ("cqtai", "apiframe") for s in SONGS[:2]}
