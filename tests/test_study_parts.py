"""The parts a study is built of, one by one: sets decoded into memory only (keep_decoded=False),
per-set stem levels, the progress counts, the sandbox's task limit, and the settings sent to
workers (which never carry a key)."""

from __future__ import annotations

import pickle

import httpx
import numpy as np
import pytest
import soundfile as sf

import stemlab
from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY
from stemlab.analysis.compare import levels
from stemlab.sandbox.synth import synth_stems
from stemlab.stemset import StemSet
from stemlab.studies.engine import STAGES, Stages
from stemlab.studies.work import WorkerSettings

# ------------------------------------------------------------------------------ keep_decoded=False


def test_a_set_decoded_into_memory_only_writes_nothing(sandbox, settings, tmp_path):
    fetched = stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    before = {p for p in tmp_path.rglob("*")}
    light = StemSet.open(fetched.folder, keep_decoded=False)
    assert light.keep_decoded is False
    arrays = {t.name: t.audio for t in light.tracks()}
    for name, audio in arrays.items():
        assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] > 0
        assert not audio.flags.writeable, name
        with pytest.raises(ValueError):
            audio[0, 0] = 1.0
    assert light["drums"].audio is arrays["drums"]  # decoded once, then kept in memory
    levels(light)  # an analysis of it writes nothing either
    half = light.with_options(sr=22050)
    assert half.keep_decoded is False and half.sr == 22050
    assert abs(half["bass"].audio.shape[1] - arrays["bass"].shape[1] / 2) <= 2
    assert not half["bass"].audio.flags.writeable
    assert list(tmp_path.rglob("*.npy")) == []
    assert {p for p in tmp_path.rglob("*")} == before  # no file, no folder

    kept = StemSet.open(fetched.folder)  # the default keeps decoded arrays in derived/
    assert kept.keep_decoded is True and kept.with_options(sr=22050).keep_decoded is True
    for track in kept.tracks():
        assert np.array_equal(track.audio, arrays[track.name]), track.name
    assert list((fetched.folder / "derived").rglob("*.npy"))
    assert np.array_equal(kept.with_options(sr=22050)["bass"].audio, half["bass"].audio)


# ------------------------------------------------------------------------------ levels

SR = 22050
NAMES = ("vocals", "drums", "bass", "guitar")


@pytest.fixture(scope="module")
def four_stem_folders(tmp_path_factory):
    """Two folders of 4 WAV stems (float32), b a louder, noisier copy of a with silent guitar; a has a mixture."""
    root = tmp_path_factory.mktemp("levels")
    stems = synth_stems(duration=3.0, sr=SR, names=NAMES, seed=7)
    noise = np.random.default_rng(1).normal(0, 0.01, stems["vocals"].shape).astype(np.float32)
    edits = {"a": lambda n, x: x,
             "b": lambda n, x: np.zeros_like(x) if n == "guitar" else (1.5 * x + noise if n == "vocals" else 0.7 * x)}
    folders = {}
    for name, edit in edits.items():
        folder = root / name
        folder.mkdir()
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", edit(stem, audio).astype(np.float32).T, SR, subtype="FLOAT")
        folders[name] = folder
    sf.write(folders["a"] / "mixture.wav", sum(stems.values()).astype(np.float32).T, SR, subtype="FLOAT")
    return folders


def _rows(rows):
    return {(r["stem"], r["metric"]): (r["value"], r["silent"]) for r in rows}


def test_levels_agree_with_compare_for_single_stem_groups(four_stem_folders):
    a, b = (StemSet.open(four_stem_folders[k]) for k in ("a", "b"))
    comparison = stemlab.compare(a, b, bss=False)
    assert comparison.alignment[b.label]["lag_samples"] == 0
    table = comparison.table
    for stemset in (a, b):
        ours = _rows(levels(stemset))
        assert set(ours) == {(n, m) for n in NAMES for m in ("loudness_db", "leakage")}
        theirs = table[(table.set == stemset.label) & table.metric.isin(["loudness_db", "leakage"])]
        assert len(theirs) == len(ours)
        for row in theirs.itertuples():
            value, silent = ours[(row.stem, row.metric)]
            assert value == pytest.approx(row.value, abs=1e-9, rel=0), (stemset.label, row.stem, row.metric)
            assert silent == row.silent, (stemset.label, row.stem, row.metric)
    b_rows = _rows(levels(b))
    assert b_rows[("guitar", "loudness_db")] == (-200.0, True)  # all zeros: the floor, and silent
    assert b_rows[("guitar", "leakage")] == (0.0, True)
    assert not any(silent for (stem, _), (_, silent) in b_rows.items() if stem != "guitar")


def test_levels_loudness_and_leakage_by_hand(four_stem_folders):
    stemset = StemSet.open(four_stem_folders["b"])
    audio = {n: sf.read(four_stem_folders["b"] / f"{n}.wav", dtype="float32", always_2d=True)[0].T.astype(np.float64)
             for n in NAMES}
    rows = _rows(levels(stemset))
    for name, x in audio.items():
        rms = np.sqrt(np.mean(x ** 2))
        expected = 20 * np.log10(rms) if rms > 0 else -200.0
        assert rows[(name, "loudness_db")][0] == pytest.approx(expected, abs=1e-6), name
        others = [np.sum(x * y) ** 2 / (np.sum(x * x) * np.sum(y * y)) for other, y in audio.items()
                  if other != name and np.sum(y * y) > 0 and np.sum(x * x) > 0]
        assert rows[(name, "leakage")][0] == pytest.approx(max(others, default=0.0), abs=1e-6), name


# ------------------------------------------------------------------------------ Stages


def test_stages_count_jobs_now_and_songs_so_far():
    stages = Stages(3, enabled=False)
    assert stages.counts == dict.fromkeys(STAGES, 0)

    def after(*events):
        for song, provider, stage in events:
            stages.event(song, provider, stage)
        return {k: v for k, v in stages.counts.items() if v}

    assert after(("s1", "cqtai", "waiting"), ("s1", "cqtai", "submitted"), ("s1", "cqtai", "polling")) == \
        {"submitted": 1, "polling": 1}
    assert after(("s1", "apiframe", "submitted"), ("s1", "apiframe", "polling"),
                 ("s2", "cqtai", "polling")) == {"submitted": 2, "polling": 3}  # s2's job was resumed: no submit
    assert after(("s1", "cqtai", "downloading")) == {"submitted": 2, "polling": 2, "downloading": 1}
    assert after(("s1", "cqtai", "fetched"), ("s1", "apiframe", "downloading")) == \
        {"submitted": 2, "polling": 1, "downloading": 1}
    assert after(("s1", "apiframe", "fetched"), ("s1", "", "scoring")) == {"submitted": 2, "polling": 1, "scoring": 1}
    stages.song("s1", "done")
    assert {k: v for k, v in stages.counts.items() if v} == {"submitted": 2, "polling": 1, "done": 1}
    # a throttled job leaves polling; a failed job is no failed song until its song is finished
    assert after(("s2", "cqtai", "throttled"), ("s2", "cqtai", "waiting")) == {"submitted": 2, "done": 1}
    assert after(("s2", "cqtai", "polling"), ("s2", "cqtai", "failed")) == {"submitted": 2, "done": 1}
    stages.song("s2", "failed")
    assert after(("s3", "cqtai", "submitted"), ("s3", "cqtai", "polling"), ("s3", "cqtai", "polling")) == \
        {"submitted": 3, "polling": 1, "done": 1, "failed": 1}  # a repeated stage counts once
    assert after(("s3", "cqtai", "fetched"), ("s3", "", "scoring")) == \
        {"submitted": 3, "scoring": 1, "done": 1, "failed": 1}
    stages.song("s3", "done")
    assert stages.counts == {"submitted": 3, "polling": 0, "downloading": 0, "scoring": 0, "done": 2, "failed": 1}
    stages.close()


# ------------------------------------------------------------------------------ the sandbox's task limit


def _submit(sandbox, clip_id):
    return httpx.post(f"{sandbox.cqtai_url}/api/cqt/generator/suno", headers={"Authorization": f"Bearer {CQTAI_KEY}"},
                      json={"task": "gen_stem_all", "clipId": clip_id}, timeout=10)


def _poll(sandbox, task_id):
    return httpx.get(f"{sandbox.cqtai_url}/api/cqt/info/suno", params={"id": task_id},
                     headers={"Authorization": f"Bearer {CQTAI_KEY}"}, timeout=10).json()["data"]["status"]


@pytest.mark.parametrize("style", ["body", "http"])
def test_a_submit_past_the_task_limit_is_429_until_the_running_job_finishes(sandbox, style):
    sandbox.task_limit = 1
    sandbox.cqtai_error_style = style
    second_clip = sandbox.song("song-b").clip_id
    first = _submit(sandbox, CLIP_ID)
    assert first.status_code == 200 and first.json()["code"] == 200
    task_id = first.json()["data"]

    refused = _submit(sandbox, second_clip)
    assert refused.status_code == (200 if style == "body" else 429)
    assert refused.json() == {"code": 429, "msg": "Task limit reached", "data": None}
    assert [(s["body"]["clipId"], s["accepted"], s["job_id"]) for s in sandbox.submits] == \
        [(CLIP_ID, True, task_id), (second_clip, False, None)]

    statuses = [_poll(sandbox, task_id) for _ in range(sandbox.polls_to_complete)]
    assert statuses == ["running"] * sandbox.polls_to_complete
    assert _submit(sandbox, second_clip).json()["code"] == 429  # still running: still refused
    assert _poll(sandbox, task_id) == "succeeded"
    again = _submit(sandbox, second_clip)
    assert again.json()["code"] == 200
    assert [s["accepted"] for s in sandbox.submits] == [True, False, False, True]
    assert sandbox.peak_running == {"cqtai": 1, "apiframe": 0}


def test_the_task_limit_is_per_provider_and_a_failed_job_frees_its_place(sandbox):
    sandbox.task_limit = 1
    sandbox.polls_to_complete = 0
    song = sandbox.song("song-a")
    sandbox.set_outcome(CLIP_ID, "fail", message="content moderation")
    task_id = _submit(sandbox, CLIP_ID).json()["data"]
    apiframe = httpx.post(f"{sandbox.apiframe_url}/v2/music/suno/action", headers={"X-API-Key": APIFRAME_KEY},
                          json={"parentJobId": song.parent_job_id, "action": "stems", "index": 1}, timeout=10)
    assert apiframe.status_code == 202  # Apiframe's count is its own
    assert _poll(sandbox, task_id) == "failed"
    assert _submit(sandbox, sandbox.song("song-b").clip_id).json()["code"] == 200
    assert sandbox.peak_running == {"cqtai": 1, "apiframe": 1}


def test_the_task_limit_is_checked():
    from stemlab.sandbox.jobs import Options

    with pytest.raises(ValueError, match="task_limit"):
        Options(task_limit=0)
    with pytest.raises(ValueError, match="task_limit"):
        Options(task_limit=1.5)
    assert Options(task_limit=None).task_limit is None


# ------------------------------------------------------------------------------ WorkerSettings


def test_worker_settings_pickle_without_keys_and_take_the_worker_s_own(settings, monkeypatch):
    worker = WorkerSettings.of(settings)
    data = pickle.dumps(worker)
    for key in (CQTAI_KEY, APIFRAME_KEY):
        assert key.encode() not in data
        assert key not in repr(worker)
    back = pickle.loads(data)
    assert back == worker

    monkeypatch.delenv("CQTAI_API_KEY", raising=False)
    resolved = back.settings()
    assert resolved.options.get("cqtai_api_key") is None and resolved.options.get("apiframe_api_key") is None
    assert (resolved.cqtai_url, resolved.apiframe_url, resolved.suno_cdn_url) == \
        (settings.cqtai_url, settings.apiframe_url, settings.suno_cdn_url)
    assert (resolved.cache_dir, resolved.poll_interval, resolved.job_timeout, resolved.retry_delay) == \
        (settings.cache_dir, settings.poll_interval, settings.job_timeout, settings.retry_delay)

    monkeypatch.setenv("CQTAI_API_KEY", "sk-worker-own-key-0123456789")
    monkeypatch.setenv("APIFRAME_API_KEY", "afk_worker_own_key_0123456789")
    on_worker = back.settings()
    assert on_worker.key("cqtai_api_key").reveal() == "sk-worker-own-key-0123456789"
    assert on_worker.key("apiframe_api_key").reveal() == "afk_worker_own_key_0123456789"
    assert on_worker.cqtai_url == settings.cqtai_url  # the study's URLs, not the environment's defaults
