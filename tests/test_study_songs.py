"""A study's songs and plan: ``SONGS.csv`` (read_songs, songs_of), the provider and job-limit
options, what each job would cost (plan_study, against a real cache), and which songs a rerun
skips (StudyFolder). Every bad input is one UsageError line that says where it is; nothing else
escapes."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings as hypothesis_settings
from hypothesis import strategies as st

import stemlab
from conftest import CLIP_ID, SONG
from stemlab.cache import Cache
from stemlab.errors import UsageError
from stemlab.fetching import build_request
from stemlab.studies.run import plan_study
from stemlab.studies.songs import (DEFAULT_MAX_JOBS, DEFAULT_PROVIDERS, SONG_COLUMNS, UNDOCUMENTED_COST, Job,
                                   SongSpec, parse_max_jobs, parse_providers, plan_jobs, read_songs, songs_of)
from stemlab.studies.store import StudyFolder, fingerprint
from stemlab.studies.work import Fetched

HEADER = "song,cqtai_clip_id,apiframe_parent_job_id,apiframe_index,apiframe_track_id,truth_dir"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def usage_error(path: Path) -> str:
    """The message of the UsageError reading ``path`` raises, checked to be one line."""
    with pytest.raises(UsageError) as caught:
        read_songs(path)
    message = str(caught.value)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    return message


# ------------------------------------------------------------------------------ SONGS.csv


def test_a_well_formed_file(tmp_path):
    songs = read_songs(write(tmp_path / "songs.csv", f"{HEADER}\n"
                                                     "first,c-1,,,,\n"
                                                     "second,,p-2,2,,\n"
                                                     "third,,p-3,,t-3,\n"))
    assert songs == [SongSpec("first", cqtai_clip_id="c-1"),
                     SongSpec("second", apiframe_parent_job_id="p-2", apiframe_index=2),
                     SongSpec("third", apiframe_parent_job_id="p-3", apiframe_track_id="t-3")]


def test_bom_crlf_spaces_in_the_header_and_cells(tmp_path):
    text = "\ufeff song , cqtai_clip_id ,apiframe_parent_job_id, apiframe_index\r\n" \
           "  a  ,  c-1  ,,\r\n" \
           "b,,p-1, 1.0 \r\n"
    songs = read_songs(write(tmp_path / "songs.csv", text))
    assert songs == [SongSpec("a", cqtai_clip_id="c-1"),
                     SongSpec("b", apiframe_parent_job_id="p-1", apiframe_index=1)]
    assert isinstance(songs[1].apiframe_index, int)


def test_empty_cells_and_short_rows_are_absent_values(tmp_path):
    songs = read_songs(write(tmp_path / "songs.csv", f"{HEADER}\nx,c-1,,,,\ny,c-2\n"))
    assert songs == [SongSpec("x", cqtai_clip_id="c-1"), SongSpec("y", cqtai_clip_id="c-2")]


def test_a_relative_truth_dir_is_relative_to_the_csv_not_the_cwd(tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "study", tmp_path / "cwd"
    (here / "truth" / "a").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(here / "songs.csv", "song,cqtai_clip_id,truth_dir\na,c-1,truth/a\n")
    [spec] = read_songs(path)
    assert Path(spec.truth_dir).is_absolute()
    assert Path(spec.truth_dir).resolve() == (here / "truth" / "a").resolve()
    # a folder that exists only relative to the cwd is not taken
    (elsewhere / "only-here").mkdir()
    message = usage_error(write(here / "songs.csv", "song,cqtai_clip_id,truth_dir\na,c-1,only-here\n"))
    assert "row 2" in message and "truth_dir" in message and "not a folder" in message


def test_an_absolute_truth_dir_is_kept(tmp_path):
    truth = tmp_path / "true stems"
    truth.mkdir()
    [spec] = read_songs(write(tmp_path / "csv" / "songs.csv", f"song,cqtai_clip_id,truth_dir\na,c-1,{truth}\n"))
    assert Path(spec.truth_dir) == truth


@pytest.mark.parametrize("text, words", [
    ("song,clip\nx,1\n", ["unknown column(s) clip"]),
    ("name,cqtai_clip_id\nx,1\n", ["no 'song' column", "name, cqtai_clip_id"]),
    ("", ["no 'song' column", "nothing"]),
    ("song,cqtai_clip_id\n", ["no songs"]),
    (f"{HEADER}\na,c-1,,,,\n,c-2,,,,\n", ["row 3", "no song name"]),
    (f"{HEADER}\na,,,,,\n", ["row 2", "(a)", "names no track"]),
    (f"{HEADER}\na,,p-1,3,,\n", ["row 2", "(a)", "index must be 1 or 2"]),
    (f"{HEADER}\na,,p-1,first,,\n", ["row 2", "apiframe_index", "'first'"]),
    (f"{HEADER}\na,,p-1,,,\n", ["row 2", "exactly one of index"]),
    (f"{HEADER}\na,,p-1,1,t-1,\n", ["row 2", "exactly one of index"]),
    (f"{HEADER}\na,bad clip id,,,,\n", ["row 2", "(a)", "not a Suno clip id"]),
    (f"{HEADER}\na,c-1,,,,no/such/folder\n", ["row 2", "truth_dir", "not a folder"]),
    (f"{HEADER}\na,c-1,,,,\nb,c-2,,,,\na,c-3,,,,\n", ["'a'", "used twice"]),
    (f"{HEADER}\na b,c-1,,,,\na_b,c-2,,,,\n", ["'a_b'", "'a b'"]),  # the same file name
])
def test_a_bad_file_is_one_line_naming_what_is_wrong(tmp_path, text, words):
    message = usage_error(write(tmp_path / "songs.csv", text))
    for word in words:
        assert word in message, (word, message)


def test_a_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path / "songs.csv", "song,cqtai_clip_id\ncafé,c-1\n".encode("latin-1"))
    message = usage_error(path)
    assert "UTF-8" in message and str(path) in message


def test_a_missing_file_and_a_folder(tmp_path):
    assert "no songs file" in usage_error(tmp_path / "nope.csv")
    assert "no songs file" in usage_error(tmp_path)


def test_a_song_name_that_is_no_file_name_names_its_row(tmp_path):
    message = usage_error(write(tmp_path / "songs.csv", "song,cqtai_clip_id\nok,c-1\n???,c-2\n"))
    assert "row 3" in message, message


@pytest.mark.parametrize("index", ["inf", "-inf", "1e400", "NaN"])
def test_an_index_that_is_no_finite_number_is_a_usage_error(tmp_path, index):
    message = usage_error(write(tmp_path / "songs.csv", f"song,apiframe_parent_job_id,apiframe_index\na,p-1,{index}\n"))
    assert "row 2" in message and "apiframe_index" in message


def test_a_fractional_index_is_refused_not_truncated(tmp_path):
    message = usage_error(write(tmp_path / "songs.csv", "song,apiframe_parent_job_id,apiframe_index\na,p-1,1.5\n"))
    assert "row 2" in message and "1.5" in message


def test_a_truth_dir_of_an_unknown_user_s_home_is_a_usage_error(tmp_path):
    message = usage_error(write(tmp_path / "songs.csv", "song,cqtai_clip_id,truth_dir\na,c-1,~no-such-user-x/t\n"))
    assert "row 2" in message and "truth_dir" in message


def test_a_huge_cell_is_a_usage_error(tmp_path):
    message = usage_error(write(tmp_path / "songs.csv", "song,cqtai_clip_id\na," + "x" * 200_000 + "\n"))
    assert "songs.csv" in message


# ------------------------------------------------------------------------------ fuzzing read_songs

FUZZ = hypothesis_settings(max_examples=300, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

csv_text = st.text(alphabet=st.sampled_from(list("song,cqtai_clip_idapfrmex\"\r\n \t1.2-~/\ufeff\x00é")) |
                   st.characters(), max_size=200)
header_text = st.lists(st.sampled_from([*SONG_COLUMNS, " song ", "clip", "", "song"]), min_size=0, max_size=7)
cell = st.sampled_from(["", " ", "1", "2", "1.0", "3", "0", "-1", "inf", "nan", "None", "1e400", "1.5", "x y",
                        "c-1", "p-1", "t-1", "truth", "missing", "~", "~no-such-user-x", "../truth", "\ufeff",
                        "a" * 130, "a/b", "é", '"', ","]) | st.text(max_size=12)


def read_or_usage_error(path: Path):
    try:
        songs = read_songs(path)
    except UsageError as exc:
        assert str(exc)
        return None
    assert songs and all(isinstance(s, SongSpec) and s.song for s in songs)
    assert len({s.slug for s in songs}) == len(songs)
    return songs


@FUZZ
@given(text=csv_text, encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
@example(text="song,apiframe_parent_job_id,apiframe_index\na,p,inf\n", encoding="utf-8")
def test_fuzz_any_text_reads_or_is_a_usage_error(tmp_path, text, encoding):
    path = tmp_path / "text.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    read_or_usage_error(path)


@FUZZ
@given(header=header_text, rows=st.lists(st.lists(cell, max_size=8), max_size=5),
       line_end=st.sampled_from(["\n", "\r\n"]))
@example(header=["song", "truth_dir", "cqtai_clip_id"], rows=[["a", "~no-such-user-x", "c"]], line_end="\n")
def test_fuzz_any_rows_read_or_are_a_usage_error(tmp_path, header, rows, line_end):
    (tmp_path / "truth").mkdir(exist_ok=True)  # a truth_dir that exists, beside the file
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "rows.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    songs = read_or_usage_error(path)
    for spec in songs or []:
        assert spec.apiframe_index in (None, 1, 2) or not spec.apiframe_parent_job_id
        assert spec.truth_dir is None or Path(spec.truth_dir).is_dir()


# ------------------------------------------------------------------------------ songs_of


def test_songs_of_takes_dicts_a_dataframe_specs_and_a_path(tmp_path):
    rows = [{"song": "a", "cqtai_clip_id": "c-1"}, {"song": "b", "apiframe_parent_job_id": "p-1", "apiframe_index": 2}]
    expected = [SongSpec("a", cqtai_clip_id="c-1"), SongSpec("b", apiframe_parent_job_id="p-1", apiframe_index=2)]
    assert songs_of(rows) == expected
    assert songs_of(pd.DataFrame(rows)) == expected  # a DataFrame's NaNs (and 2.0) read as absent (and 2)
    assert songs_of(expected) == expected
    path = write(tmp_path / "songs.csv", "song,cqtai_clip_id\na,c-1\n")
    assert songs_of(path) == songs_of(str(path)) == expected[:1]


@pytest.mark.parametrize("songs, words", [
    ([], ["no songs"]),
    ([{"song": "a", "clip": "c"}], ["song 1", "unknown field(s) clip"]),
    ([{"song": "a", "cqtai_clip_id": "c"}, "b"], ["song 2", "str"]),
    ([{"song": "a"}], ["song 1", "names no track"]),
    ([{"song": "a", "cqtai_clip_id": "c"}, {"song": "a", "cqtai_clip_id": "d"}], ["used twice"]),
    (None, []),
    (42, []),
])
def test_songs_of_bad_songs_are_usage_errors(songs, words):
    with pytest.raises(UsageError) as caught:
        songs_of(songs)
    assert "\n" not in str(caught.value)
    for word in words:
        assert word in str(caught.value)


# ------------------------------------------------------------------------------ providers and limits


def test_parse_providers():
    assert parse_providers(None) == DEFAULT_PROVIDERS == ("cqtai", "apiframe")
    assert parse_providers(" apiframe , cqtai-two ") == ("apiframe", "cqtai-two")
    assert parse_providers("cqtai,cqtai,,apiframe,") == ("cqtai", "apiframe")
    assert parse_providers(["cqtai-two", "cqtai"]) == ("cqtai-two", "cqtai")
    for bad, shown in (("", "(none given)"), (",", "(none given)"), ("cqtai,demucs", "demucs"), ([], "(none given)")):
        with pytest.raises(UsageError, match="choose from cqtai, cqtai-two, apiframe") as caught:
            parse_providers(bad)
        assert shown in str(caught.value)


def test_parse_max_jobs():
    assert parse_max_jobs(None) == DEFAULT_MAX_JOBS == {"cqtai": 2, "apiframe": 4}
    assert parse_max_jobs([]) == DEFAULT_MAX_JOBS
    assert parse_max_jobs(["cqtai=3"]) == {"cqtai": 3, "apiframe": 4}
    assert parse_max_jobs([" apiframe = 1 ", "cqtai-two=5"]) == {"cqtai": 5, "apiframe": 1}  # cqtai-two: cqtai's
    assert parse_max_jobs({"apiframe": 7}) == {"cqtai": 2, "apiframe": 7}
    assert DEFAULT_MAX_JOBS == {"cqtai": 2, "apiframe": 4}  # the defaults are not changed by parsing


@pytest.mark.parametrize("items", [["cqtai=0"], ["cqtai=-1"], ["cqtai=x"], ["cqtai"], ["cqtai="], ["demucs=2"],
                                   ["=2"], ["cqtai=2.5"], {"cqtai": 0}, {"nobody": 1}, {"cqtai": None},
                                   {"cqtai": float("inf")}, {"cqtai": float("nan")}, {"cqtai": 2.5}])
def test_parse_max_jobs_refuses_what_is_no_whole_number_of_jobs(items):
    with pytest.raises(UsageError, match="--max-jobs") as caught:
        parse_max_jobs(items)
    assert "\n" not in str(caught.value)


def test_plan_jobs_uses_each_provider_a_song_can_use():
    clip_only = SongSpec("a", cqtai_clip_id="c-1")
    parent_only = SongSpec("b", apiframe_parent_job_id="p-1", apiframe_index=1)
    both = SongSpec("c", cqtai_clip_id="c-3", apiframe_parent_job_id="p-3", apiframe_track_id="t-3")
    jobs = plan_jobs([clip_only, parent_only, both], ["cqtai", "apiframe", "cqtai-two"])
    assert [(j.song.song, j.provider) for j in jobs] == [
        ("a", "cqtai"), ("a", "cqtai-two"),
        ("b", "cqtai"), ("b", "apiframe"), ("b", "cqtai-two"),
        ("c", "cqtai"), ("c", "apiframe"), ("c", "cqtai-two")]
    keys = {(j.song.song, j.provider): j.cache_key() for j in jobs}
    assert keys[("a", "cqtai-two")] == "cqtai-2-c-1"
    assert keys[("b", "cqtai")] is None  # CQTAI's clip id is the Apiframe track's: still to be looked up
    assert keys[("b", "apiframe")] == build_request("apiframe", parent_job_id="p-1", index=1).cache_key
    assert keys[("c", "cqtai")] == "cqtai-12-c-3"  # an explicit clip id wins over the track id
    assert Job(SongSpec("d", apiframe_parent_job_id="p", apiframe_track_id="t-4"), "cqtai").cache_key() == \
        "cqtai-12-t-4"


# ------------------------------------------------------------------------------ plan_study


def _actions(plan):
    return [(p.job.song.song, p.job.provider, p.action, p.cost) for p in plan]


def test_nothing_cached_is_submitted_at_the_documented_prices(tmp_path):
    songs = [SongSpec("a", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=1)]
    plan = plan_study(plan_jobs(songs, ["cqtai", "apiframe", "cqtai-two"]), Cache(tmp_path / "cache"))
    assert _actions(plan) == [("a", "cqtai", "submit", 150.0), ("a", "apiframe", "submit", 11.0),
                              ("a", "cqtai-two", "submit", UNDOCUMENTED_COST)]
    assert UNDOCUMENTED_COST == 150.0
    assert [p.key for p in plan] == ["cqtai-12-c-1", build_request("apiframe", parent_job_id="p-1", index=1).cache_key,
                                     "cqtai-2-c-1"]
    assert not (tmp_path / "cache").exists()  # planning writes nothing


def test_cached_sets_cost_nothing_and_a_job_record_is_resumed(sandbox, settings):
    a, b = sandbox.song(SONG), sandbox.song("song-b")
    stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    stemlab.fetch("apiframe", parent_job_id=a.parent_job_id, index=1, settings=settings, progress=False)
    cache = Cache(settings.cache_dir)
    resumed = build_request("cqtai", clip_id=b.clip_id).cache_key
    cache.write_job(resumed, {"provider": "cqtai", "key": resumed, "request": {"clip_id": b.clip_id},
                              "base_url": settings.cqtai_url, "state": "submitted",
                              "submitted_at": "2026-01-01T00:00:00+00:00", "job_id": "task-1"})
    songs = [SongSpec("a", cqtai_clip_id=CLIP_ID, apiframe_parent_job_id=a.parent_job_id, apiframe_index=1),
             SongSpec("b", cqtai_clip_id=b.clip_id, apiframe_parent_job_id=b.parent_job_id, apiframe_index=1)]
    sandbox.reset_ledger()
    plan = plan_study(plan_jobs(songs, ["cqtai", "apiframe", "cqtai-two"]), cache)
    assert _actions(plan) == [("a", "cqtai", "cached", 0.0), ("a", "apiframe", "cached", 0.0),
                              ("a", "cqtai-two", "submit", UNDOCUMENTED_COST),
                              ("b", "cqtai", "resume", 0.0), ("b", "apiframe", "submit", 11.0),
                              ("b", "cqtai-two", "submit", UNDOCUMENTED_COST)]
    assert sandbox.requests == []  # planning asks no provider anything


def test_a_song_given_by_its_parent_job_finds_cqtai_s_clip_id_in_the_cached_apiframe_set(sandbox, settings):
    a = sandbox.song(SONG)
    song = SongSpec("a", apiframe_parent_job_id=a.parent_job_id, apiframe_index=1)
    jobs = plan_jobs([song], ["cqtai", "apiframe"])
    cache = Cache(settings.cache_dir)
    assert _actions(plan_study(jobs, cache)) == [("a", "cqtai", "submit", 150.0), ("a", "apiframe", "submit", 11.0)]
    assert plan_study(jobs, cache)[0].key is None
    stemlab.fetch("apiframe", parent_job_id=a.parent_job_id, index=1, settings=settings, progress=False)
    plan = plan_study(jobs, cache)
    assert _actions(plan) == [("a", "cqtai", "submit", 150.0), ("a", "apiframe", "cached", 0.0)]
    assert plan[0].key == build_request("cqtai", clip_id=a.tracks[0].id).cache_key  # known now, without a request
    stemlab.fetch("cqtai", clip_id=a.tracks[0].id, settings=settings, progress=False)
    assert _actions(plan_study(jobs, cache)) == [("a", "cqtai", "cached", 0.0), ("a", "apiframe", "cached", 0.0)]


def _three_songs():
    return [SongSpec(f"s{i}", cqtai_clip_id=f"c-{i}", apiframe_parent_job_id=f"p-{i}", apiframe_index=1)
            for i in range(3)]


def test_a_budget_stops_whole_songs_in_song_order(tmp_path):
    jobs = plan_jobs(_three_songs(), ["cqtai", "apiframe"])
    cache = Cache(tmp_path / "cache")

    def stopped(budget):
        plan = plan_study(jobs, cache, budget=budget)
        by_song = {}
        for p in plan:
            by_song.setdefault(p.job.song.song, set()).add(p.action == "over budget")
        assert all(len(flags) == 1 for flags in by_song.values()), by_song  # both providers of a song, or neither
        return [song for song, flags in by_song.items() if flags == {True}]

    assert stopped(None) == stopped(10_000) == stopped(3 * 161) == []
    assert stopped(330) == stopped(322) == ["s2"]
    assert stopped(321) == stopped(161) == ["s1", "s2"]
    assert stopped(160) == stopped(0) == ["s0", "s1", "s2"]
    over = [p for p in plan_study(jobs, cache, budget=330) if p.action == "over budget"]
    assert [(p.job.provider, p.cost, p.key) for p in over] == [
        ("cqtai", 150.0, "cqtai-12-c-2"), ("apiframe", 11.0, build_request("apiframe", parent_job_id="p-2",
                                                                            index=1).cache_key)]


def test_a_song_that_does_not_fit_does_not_stop_a_later_one_that_does(tmp_path):
    big = SongSpec("big", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=1)  # 161 credits
    small = SongSpec("small", cqtai_clip_id="c-2")  # 150 credits
    cache = Cache(tmp_path)
    plan = plan_study(plan_jobs([big, small], ["cqtai", "apiframe"]), cache, budget=155)
    assert [(p.job.song.song, p.action) for p in plan] == [("big", "over budget"), ("big", "over budget"),
                                                           ("small", "submit")]
    plan = plan_study(plan_jobs([small, big], ["cqtai", "apiframe"]), cache, budget=155)
    assert [(p.job.song.song, p.action) for p in plan] == [("small", "submit"), ("big", "over budget"),
                                                           ("big", "over budget")]


def test_budget_zero_runs_only_what_costs_nothing(sandbox, settings):
    a = sandbox.song(SONG)
    stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    stemlab.fetch("apiframe", parent_job_id=a.parent_job_id, index=1, settings=settings, progress=False)
    cache = Cache(settings.cache_dir)
    resumed = "cqtai-12-c-resume"
    cache.write_job(resumed, {"provider": "cqtai", "key": resumed, "request": {}, "base_url": settings.cqtai_url,
                              "state": "submitted", "submitted_at": "2026-01-01T00:00:00+00:00", "job_id": "t-9"})
    songs = [SongSpec("new", cqtai_clip_id="c-new"),
             SongSpec("cached", cqtai_clip_id=CLIP_ID, apiframe_parent_job_id=a.parent_job_id, apiframe_index=1),
             SongSpec("resumed", cqtai_clip_id="c-resume"),
             SongSpec("half", cqtai_clip_id=CLIP_ID, apiframe_parent_job_id=a.parent_job_id, apiframe_index=2)]
    plan = plan_study(plan_jobs(songs, ["cqtai", "apiframe"]), cache, budget=0)
    assert _actions(plan) == [("new", "cqtai", "over budget", 150.0),
                              ("cached", "cqtai", "cached", 0.0), ("cached", "apiframe", "cached", 0.0),
                              ("resumed", "cqtai", "resume", 0.0),
                              ("half", "cqtai", "over budget", 0.0), ("half", "apiframe", "over budget", 11.0)]


# ------------------------------------------------------------------------------ StudyFolder


def _done(spec: SongSpec, providers) -> list[Fetched]:
    return [Fetched(spec.song, p, set=p, key=f"k-{p}", state="done", credits=1.0) for p in providers]


def test_a_done_record_is_finished_for_the_same_song_and_providers(tmp_path):
    folder = StudyFolder(tmp_path / "out")
    spec = SongSpec("a b/c", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=1)
    assert folder.finished(spec, ["cqtai", "apiframe"]) is None
    record = folder.write(spec, ["cqtai", "apiframe"], _done(spec, ["cqtai", "apiframe"]), None)
    assert record["state"] == "done" and folder.record_path(spec).name == "a_b_c.json"
    assert folder.finished(spec, ["cqtai", "apiframe"]) == record
    assert folder.finished(spec, ["apiframe", "cqtai"]) == record  # the order of providers does not matter
    assert record["fingerprint"] == fingerprint(spec, ["apiframe", "cqtai"])


@pytest.mark.parametrize("change", ["providers", "truth_dir", "clip", "index"])
def test_a_changed_request_runs_the_song_again(tmp_path, change):
    folder = StudyFolder(tmp_path / "out")
    truth = tmp_path / "truth"
    truth.mkdir()
    spec = SongSpec("a", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=1)
    folder.write(spec, ["cqtai", "apiframe"], _done(spec, ["cqtai", "apiframe"]), None)
    providers = ["cqtai", "apiframe"]
    if change == "providers":
        providers = ["cqtai", "apiframe", "cqtai-two"]
    elif change == "truth_dir":
        spec = SongSpec("a", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=1, truth_dir=str(truth))
    elif change == "clip":
        spec = SongSpec("a", cqtai_clip_id="c-2", apiframe_parent_job_id="p-1", apiframe_index=1)
    else:
        spec = SongSpec("a", cqtai_clip_id="c-1", apiframe_parent_job_id="p-1", apiframe_index=2)
    assert folder.record(spec) is not None and folder.finished(spec, providers) is None


def test_a_failed_song_is_not_finished(tmp_path):
    folder = StudyFolder(tmp_path / "out")
    spec = SongSpec("a", cqtai_clip_id="c-1")
    failed = [Fetched("a", "cqtai", state="failed", error="cqtai job t-1 failed: 'moderation'")]
    assert folder.write(spec, ["cqtai"], failed, None)["state"] == "failed"
    assert folder.finished(spec, ["cqtai"]) is None
    assert folder.write(spec, ["cqtai"], _done(spec, ["cqtai"]), None, error="scoring failed: x")["state"] == "failed"
    assert folder.finished(spec, ["cqtai"]) is None
    assert folder.write(spec, ["cqtai"], [], None)["state"] == "failed"  # no job at all is no result
    assert folder.finished(spec, ["cqtai"]) is None


def test_non_finite_numbers_survive_the_record(tmp_path):
    folder = StudyFolder(tmp_path / "out")
    spec = SongSpec("a", cqtai_clip_id="c-1")
    fetched = [Fetched("a", "cqtai-two", state="done", credits=math.nan)]
    folder.write(spec, ["cqtai-two"], fetched, None)
    assert "NaN" not in folder.record_path(spec).read_text()  # strict JSON
    assert folder.finished(spec, ["cqtai-two"])["jobs"][0]["credits"] == "nan"


@pytest.mark.parametrize("damage", ["truncated", "empty", "list", "binary"])
def test_a_damaged_record_reads_as_none_and_the_song_runs_again(tmp_path, damage):
    folder = StudyFolder(tmp_path / "out")
    spec = SongSpec("a", cqtai_clip_id="c-1")
    folder.write(spec, ["cqtai"], _done(spec, ["cqtai"]), None)
    path = folder.record_path(spec)
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "empty": b"", "list": b"[]",
                      "binary": b"\xff\xfe\x00garbage"}[damage])
    assert folder.record(spec) is None
    assert folder.finished(spec, ["cqtai"]) is None
