"""The provider study at corpus scale: ``stemlab.study`` on a LocalCluster of 1 and 2 workers,
against a plain ``concurrent.futures`` process pool (2 processes) doing the same work with the
same functions (:func:`stemlab.studies.work.fetch_job`, :func:`~stemlab.studies.work.score_task`).

The sandbox runs in its own process and serves ``--songs`` songs (default 24) of ``--seconds`` s
(default 20), 12 stems each, through both providers; every ``--truth-every``-th song (default 4)
has true stems (WAV, before MP3 coding), so it is also scored with SI-SDR and BSSEval v4. Each
run starts from an empty cache, so every song is submitted, polled, downloaded, decoded and
scored.

A last run, on 2 workers, fails one request in 4 to 8 on every route (5xx and 429 answers,
dropped downloads) and counts what the retries absorbed.

Figures: songs per hour overall and per stage (one worker slot), CPU-seconds per song for decode
and scoring (and per second of audio), decode throughput, peak RSS per worker, MB stored per song
(corpus mode: the MP3s as served, no ``.npy``), and Dask's overhead against the pool (wall-time
ratio, same machine, same run). Written to ``benchmarks/out/study.json`` for ``docs/scale.md``.

Run: ``python benchmarks/bench_study.py [--songs 24] [--seconds 20] [--truth-every 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, sandbox_process  # noqa: E402

from stemlab.config import Settings  # noqa: E402
from stemlab.sandbox import Sandbox  # noqa: E402
from stemlab.sandbox.library import read_library  # noqa: E402
from stemlab.sandbox.synth import make_song, synth_stems  # noqa: E402
from stemlab.studies.run import study  # noqa: E402
from stemlab.studies.songs import plan_jobs, songs_of  # noqa: E402
from stemlab.studies.work import WorkerSettings, fetch_job, score_task  # noqa: E402

KEYS = {"CQTAI_API_KEY": "sk-bench", "APIFRAME_API_KEY": "afk_bench"}
PROVIDERS = ("cqtai", "apiframe")


def corpus(songs: int, seconds: float, truth_every: int) -> tuple[Path, Path]:
    """``(library, truth)``: the sandbox's songs and the true stems of every ``truth_every``-th,
    synthesised and encoded once into ``benchmarks/out``."""
    root = OUT / f"study-{songs}x{seconds:g}s"
    library, truth = root / "library", root / "truth"
    have = read_library(library) if library.is_dir() else {}
    for i in range(songs):
        song = f"song-{i:03d}"
        if song not in have:
            if i == len(have):
                print(f"(one-time setup: {songs} songs x 12 stems x {seconds:g} s into {root})", flush=True)
            make_song(library, song, duration=seconds)
        if truth_every and i % truth_every == 0 and not (truth / song).is_dir():
            (truth / song).mkdir(parents=True)
            for name, audio in synth_stems(seconds, 44100, seed=zlib.crc32(song.encode())).items():
                sf.write(truth / song / f"{name}.wav", audio.T, 44100, subtype="FLOAT")
    return library, truth


def songs_table(library: Path, truth: Path, songs: int) -> list[dict]:
    """Half the songs by CQTAI clip id, half by Apiframe parent job only (CQTAI gets the track id)."""
    rows = []
    for i, song in enumerate(sorted(read_library(library).values(), key=lambda s: s.song_id)[:songs]):
        rows.append({"song": song.song_id, "cqtai_clip_id": song.clip_id if i % 2 == 0 else None,
                     "apiframe_parent_job_id": song.parent_job_id, "apiframe_index": 1,
                     "truth_dir": str(truth / song.song_id) if (truth / song.song_id).is_dir() else None})
    return rows


def settings_for(url: str, cache: Path) -> Settings:
    return Settings.resolve(environ={}, dotenv=None, cqtai_url=f"{url}/cqtai", apiframe_url=f"{url}/apiframe",
                            suno_cdn_url=f"{url}/suno-cdn", cqtai_api_key=KEYS["CQTAI_API_KEY"],
                            apiframe_api_key=KEYS["APIFRAME_API_KEY"], cache_dir=cache, poll_interval=0.05,
                            retry_delay=0.05)


def run_dask(rows, settings: Settings, workers: int, out: Path) -> dict:
    started = time.perf_counter()
    result = study(rows, out=out, workers=workers, settings=settings, progress=False)
    wall = time.perf_counter() - started
    assert result.to_dict()["failed"] == 0, result.songs[result.songs.state != "done"]
    records = [json.loads(p.read_text()) for p in sorted((out / "songs").glob("*.json"))]
    for record in records:
        record["truth"] = bool(record["fingerprint"]["song"]["truth_dir"])
    return {"wall_s": wall, "records": records}


def _pool_song(spec, jobs, worker_settings):
    """One song in a pool process: its fetches one after the other, then its scores."""
    fetched = [fetch_job(job, worker_settings) for job in jobs]
    fetched, scored, error = score_task(spec, fetched, worker_settings, corpus=True, bss=True)
    assert not error and scored is not None, error or [f.error for f in fetched]
    return {"jobs": [f.row() for f in fetched], "timings": scored.timings(), "rows": scored.rows,
            "truth": bool(spec.truth_dir)}


def run_pool(rows, settings: Settings, processes: int) -> dict:
    """The baseline: the same work in a plain ``concurrent.futures`` process pool."""
    specs = songs_of(rows)
    by_song = {spec.song: plan_jobs([spec], PROVIDERS) for spec in specs}
    worker_settings = WorkerSettings.of(settings)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes) as pool:
        records = list(pool.map(_pool_song, specs, [by_song[s.song] for s in specs], [worker_settings] * len(specs)))
    return {"wall_s": time.perf_counter() - started, "records": records}


FAULTS = [("cqtai.submit", "status", {"status": 503}, 4), ("apiframe.submit", "status", {"status": 429}, 4),
          ("cqtai.poll", "status", {"status": 503}, 5), ("apiframe.poll", "status", {"status": 502}, 5),
          ("download", "drop", {}, 8)]


def run_with_faults(library: Path, rows, folder: Path) -> dict:
    """The study on 2 workers against a sandbox that fails one request in 4 to 8 on every route
    (5xx, 429, dropped downloads): how many failures the retries absorb."""
    with Sandbox(library, cqtai_key=KEYS["CQTAI_API_KEY"], apiframe_key=KEYS["APIFRAME_API_KEY"],
                 polls_to_complete=2) as sb:
        faults = [sb.faults.add(route, kind, every=every, times=None, **params) for route, kind, params, every in FAULTS]
        run = run_dask(rows, settings_for(sb.url, folder / "cache"), 2, folder / "out")
        answered = sb.requests
    failed = sum(f.hits for f in faults)
    return {"requests": len(answered), "failed_requests": failed, "songs": len(rows),
            "failed_by_route": {f"{f.route} {f.kind}": f.hits for f in faults},
            "songs_done": sum(r["state"] == "done" for r in run["records"]),
            "submits_accepted": sum(s["accepted"] for s in sb.submits), "wall_s": round(run["wall_s"], 2)}


def du_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def figures(name: str, run: dict, cache: Path, songs: int) -> dict:
    records = run["records"]
    timings = [r["timings"] for r in records]
    fetch_s = [sum(j["seconds"] for j in r["jobs"]) for r in records]
    per_worker: dict[str, float] = {}
    for t in timings:
        per_worker[t["worker"]] = max(per_worker.get(t["worker"], 0.0), t["peak_rss_mb"])
    audio_s = sum(t["audio_s"] for t in timings)
    decode_cpu = sum(t["decode_cpu_s"] for t in timings)
    score_cpu = sum(t["score_cpu_s"] for t in timings)
    median_score = statistics.median(t["score_s"] for t in timings)
    split = {kind: [r["timings"]["score_cpu_s"] for r in records if r["truth"] == with_truth]
             for kind, with_truth in (("with_truth", True), ("without_truth", False))}
    return {
        "engine": name, "songs": songs, "wall_s": round(run["wall_s"], 2),
        "songs_per_hour": round(3600 * songs / run["wall_s"], 1),
        "fetch_songs_per_hour_per_slot": round(3600 / statistics.median(fetch_s), 1),
        "score_songs_per_hour_per_slot": round(3600 / median_score, 1),
        "decode_cpu_s_per_song": round(decode_cpu / songs, 3),
        "score_cpu_s_per_song": round(score_cpu / songs, 3),
        "score_cpu_s_per_audio_s": round(score_cpu / audio_s, 4),
        **{f"score_cpu_s_per_song_{kind}": round(statistics.median(v), 3) if v else None for kind, v in split.items()},
        "decode_x_real_time": round(audio_s / decode_cpu, 1) if decode_cpu else None,
        "peak_rss_mb_per_worker": {w: round(v) for w, v in sorted(per_worker.items())},
        "mb_stored_per_song": round(du_mb(cache) / songs, 2),
        "npy_files": len(list(cache.rglob("*.npy"))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--truth-every", type=int, default=4)
    parser.add_argument("--fault-songs", type=int, default=8)
    args = parser.parse_args()
    library, truth = corpus(args.songs, args.seconds, args.truth_every)
    rows = songs_table(library, truth, args.songs)
    os.environ.update(KEYS)  # the pool's processes and the LocalCluster's workers read keys from here
    work = Path(tempfile.mkdtemp(prefix="stemlab-bench-study-"))
    results = []
    try:
        with sandbox_process(library, polls_to_complete=2) as url:
            for name, run in (("dask, 1 worker", lambda s, d: run_dask(rows, s, 1, d / "out")),
                              ("dask, 2 workers", lambda s, d: run_dask(rows, s, 2, d / "out")),
                              ("process pool, 2", lambda s, d: run_pool(rows, s, 2))):
                folder = work / name.replace(" ", "").replace(",", "-")
                settings = settings_for(url, folder / "cache")
                print(f"running: {name} ...", flush=True)
                results.append(figures(name, run(settings, folder), folder / "cache", args.songs))
        print(f"running: dask, 2 workers, faults on {args.fault_songs} songs ...", flush=True)
        faults = run_with_faults(library, rows[:args.fault_songs], work / "faults")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:
        print(f"{r['engine']:<17} {r['wall_s']:8.1f} s  {r['songs_per_hour']:8.0f} songs/h   fetch "
              f"{r['fetch_songs_per_hour_per_slot']:7.0f}/h/slot   score {r['score_songs_per_hour_per_slot']:6.0f}/h/slot   "
              f"decode {r['decode_cpu_s_per_song']:.2f} CPU-s/song ({r['decode_x_real_time']}x real time)   "
              f"score {r['score_cpu_s_per_song']:.2f} CPU-s/song   peak RSS {list(r['peak_rss_mb_per_worker'].values())} MB"
              f"   {r['mb_stored_per_song']:.1f} MB/song stored, {r['npy_files']} .npy")
    dask2, pool = results[1], results[2]
    overhead = dask2["wall_s"] / pool["wall_s"]
    scaling = results[0]["wall_s"] / dask2["wall_s"]
    print(f"Dask overhead: 2 workers {dask2['wall_s']:.1f} s against the process pool's {pool['wall_s']:.1f} s: "
          f"ratio {overhead:.2f} (1.00 = none)")
    print(f"scaling 1 -> 2 workers: {scaling:.2f}x on a {os.cpu_count()}-core machine")
    print(f"faults: {faults['failed_requests']} of {faults['requests']} requests failed "
          f"({100 * faults['failed_requests'] / faults['requests']:.0f}%: 5xx, 429, dropped downloads); "
          f"{faults['songs_done']} of {faults['songs']} songs done, {faults['submits_accepted']} accepted submits "
          f"for {2 * faults['songs']} jobs")
    OUT.mkdir(exist_ok=True)
    summary = {"songs": args.songs, "seconds": args.seconds, "truth_every": args.truth_every, "runs": results,
               "dask_overhead_ratio": round(overhead, 3), "scaling_1_to_2": round(scaling, 3), "faults": faults,
               "cores": os.cpu_count()}
    (OUT / "study.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
