"""The study's report on a small study built here: six songs, two providers, true stems for three
of them, a provider error carrying markup, a set missing from the cache, and the empty cases."""

from __future__ import annotations

import base64
import io
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from stemlab.encode import write_mp3
from stemlab.files import atomic_write_json
from stemlab.view.study_report import disagreements, render_study_report, write_study_report

SR = 22050
PROVIDERS = ("cqtai", "apiframe")
SETS = {"cqtai": ("cqtai-12", ("vocals", "backing_vocals", "drums", "bass")),
        "apiframe": ("apiframe", ("vocals", "instrumental"))}
ERROR = "HTTP 500: <script>alert('owned')</script> & more"
# SI-SDR against the true stems: (song, stem) -> (cqtai, apiframe); s2 disagrees most, then s3, then s1
TRUTH = {("s1", "vocals"): (9.0, 8.5), ("s1", "instrumental"): (12.0, 11.0),
         ("s2", "vocals"): (10.0, 2.0), ("s2", "instrumental"): (8.0, 7.5),
         ("s3", "vocals"): (7.0, 3.0), ("s3", "instrumental"): (6.0, 5.0)}
AGREE = {"s1": 14.0, "s2": 3.0, "s3": 6.0, "s4": 1.5}  # agreement SI-SDR (vocals), cqtai vs apiframe


def _set_folder(root: Path, song: str, provider: str) -> Path:
    """A cache set folder of tiny MP3s and its manifest, as the fetch writes them."""
    label, stems = SETS[provider]
    folder = root / "cache" / "sets" / f"{label}-{song}"
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(SR // 5) / SR)).astype(np.float32)[None]
    write_mp3(folder / "source.mp3", tone, SR)
    for name in stems:
        write_mp3(folder / "stems" / f"{name}.mp3", tone, SR)
    atomic_write_json(folder / "manifest.json", {
        "format": 1, "key": folder.name, "provider": provider, "source": {"path": "source.mp3"},
        "stems": [{"name": name, "label": name, "path": f"stems/{name}.mp3"} for name in stems]})
    return folder


def _songs(root: Path, *, truth: bool = True) -> pd.DataFrame:
    rows = []
    for song in ("s1", "s2", "s3", "s4", "s5", "s6"):
        for provider in PROVIDERS:
            state, error = "done", ""
            if (song, provider) == ("s5", "apiframe"):
                state, error = "failed", ERROR
            if (song, provider) == ("s6", "cqtai"):
                state, error = "over budget", "the study's budget of 50 credits is spent"
            if state == "done" and (song, provider) != ("s3", "apiframe"):
                folder = str(_set_folder(root, song, provider))
            elif state == "done":
                folder = str(root / "cache" / "sets" / "apiframe-s3-gone")  # in the table, not on disk
            else:
                folder = ""
            rows.append({"song": song, "provider": provider, "set": SETS[provider][0] if folder else "",
                         "key": Path(folder).name, "folder": folder, "job_id": f"job-{song}-{provider}",
                         "state": state, "error": error, "credits": 10.0 if provider == "cqtai" else 2.0,
                         "submitted": state != "over budget" and song != "s1",  # s1 was fetched by an earlier run
                         "seconds": 3.0,
                         "truth_dir": f"/data/truth/{song}" if truth and song in ("s1", "s2", "s3") else ""})
    return pd.DataFrame(rows)


def _row(song, provider, stem, metric, value, *, silent=False, flags="", label=None):
    return {"song": song, "set": label or provider, "provider": provider, "stem": stem, "metric": metric,
            "value": float(value), "silent": silent, "flags": flags}


def _results(*, truth: bool = True) -> pd.DataFrame:
    rows = []
    if truth:
        for (song, stem), values in TRUTH.items():
            for provider, value in zip(PROVIDERS, values):
                rows.append(_row(song, provider, stem, "si_sdr", value, label=SETS[provider][0]))
                rows.append(_row(song, provider, stem, "si_sdr_improvement", value - 4, label=SETS[provider][0]))
        rows.append(_row("s1", "cqtai", "vocals", "sdr", math.inf, flags="identical"))
        rows.append(_row("s2", "apiframe", "vocals", "sdr", 1.0))
    for song, value in AGREE.items():
        rows.append(_row(song, "cqtai vs apiframe", "vocals", "agreement_si_sdr", value, label="cqtai-12 vs apiframe"))
        rows.append(_row(song, "apiframe vs cqtai", "vocals", "agreement_si_sdr", value + 0.5,
                         label="apiframe vs cqtai-12"))
        rows.append(_row(song, "cqtai vs apiframe", "instrumental", "agreement_si_sdr", math.nan, silent=True))
        for provider in PROVIDERS:
            rows.append(_row(song, provider, "vocals", "loudness_db", -14.0))
            rows.append(_row(song, provider, "vocals", "leakage", 0.05 if provider == "cqtai" else 0.02))
            rows.append(_row(song, provider, "mix", "residual_db", -40.0))
            rows.append(_row(song, provider, "mix", "recombines", 1.0))
    return pd.DataFrame(rows)


SUMMARY_COLUMNS = ["metric", "stem", "a", "b", "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "sd_diff",
                   "confidence", "resamples"]
# (metric, stem, mean_diff, ci_low, ci_high, the verdict the report must give)
SUMMARY = [("si_sdr", "vocals", 4.17, 0.5, 8.0, "cqtai better"),
           ("si_sdr", "instrumental", 0.83, -0.5, 1.0, ""),
           ("si_sdr_improvement", "vocals", 4.17, 0.5, 8.0, "cqtai better"),
           ("sdr", "vocals", -1.2, -3.0, -0.2, "apiframe better"),
           ("leakage", "vocals", 0.03, 0.02, 0.04, "apiframe better"),  # lower is better
           ("loudness_db", "vocals", -1.5, -2.5, -0.5, "differs (no better direction)"),
           ("residual_db", "mix", 0.0, -0.1, 0.1, ""),
           ("recombines", "mix", 0.0, 0.0, 0.0, "")]


def _summary() -> pd.DataFrame:
    return pd.DataFrame([{"metric": m, "stem": s, "a": "cqtai", "b": "apiframe", "n": 3, "mean_a": 1.0, "mean_b": 1.0,
                          "mean_diff": d, "ci_low": lo, "ci_high": hi, "sd_diff": 1.0, "confidence": 0.95,
                          "resamples": 2000} for m, s, d, lo, hi, _ in SUMMARY], columns=SUMMARY_COLUMNS)


def build_study(root: Path, *, truth: bool = True) -> Path:
    """The report of the study above, written to ``root/study/report.html`` (the browser test uses it too)."""
    summary = _summary() if truth else _summary().query("metric not in ['si_sdr', 'si_sdr_improvement', 'sdr']")
    return write_study_report(root / "study", results=_results(truth=truth), songs=_songs(root, truth=truth),
                              summary=summary, title="six <songs>")


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def _facts(page: str) -> dict[str, str]:
    return dict(re.findall(r"data-fact='([\w-]+)'[^>]*><b>([^<]*)</b>", page))


def _section(page: str, heading: str) -> str:
    """The part of the page under an ``<h2>`` heading, up to the next one."""
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


@pytest.fixture
def study(tmp_path):
    path = build_study(tmp_path)
    return path, path.read_text(encoding="utf-8")


def test_written_atomically_small_and_offline(study, tmp_path):
    path, page = study
    assert path == tmp_path / "study" / "report.html"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left
    assert len(page.encode()) < 400_000  # figures only, no embedded audio
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<title>six &lt;songs&gt;</title>" in page and "<h1>six &lt;songs&gt;</h1>" in page


def test_header_counts_songs_by_state_and_credits_spent(study):
    _, page = study
    facts = _facts(page)
    assert facts["songs"] == "6"
    assert (facts["done"], facts["failed"], facts["over-budget"]) == ("4", "1", "1")  # s5 failed, s6 over budget
    assert facts["truth"] == "3" and "planned" not in facts
    assert facts["credits"] == "50"  # s2..s5 both providers (12 each), s6 apiframe (2); s1 was cached
    assert "providers: cqtai, apiframe" in page
    assert "data-fact='agreement-only'" not in page


def test_every_summary_row_is_in_the_table_with_its_verdict(study):
    _, page = study
    tags = _Tags(page)
    rows = tags.all("tr", data_a="cqtai", data_b="apiframe")
    expected = [(metric, stem, said) for metric, stem, _, _, _, said in SUMMARY]
    assert [(r["data-metric"], r["data-stem"], r["data-verdict"]) for r in rows] == expected
    table = _section(page, "Paired differences")
    assert "[+0.50, +8.00]" in table and "+4.17" in table  # interval and mean via score_text
    assert "[+0.020, +0.040]" in table  # leakage with three decimals
    assert "95% confidence, 2,000 resamples" in table


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r"<img src='data:image/png;base64,([^']+)'", page)]


def test_forest_and_strip_plots_are_pngs(study):
    import matplotlib.image

    _, page = study
    tags = _Tags(page)
    assert len(tags.all("div", data_figure="forest")) == 1
    assert [a["data-figure"] for a in tags.all("div") if a.get("data-figure", "").startswith("strip-")] == [
        "strip-si_sdr", "strip-si_sdr_improvement", "strip-sdr"]  # scores against the truth; agreement not needed
    pngs = _pngs(page)
    assert len(pngs) == 4 == len(tags.all("img"))
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert image.shape[0] > 50 and image.shape[1] > 100
    assert "1 identical (+inf) not drawn" in page


def test_the_songs_built_to_disagree_come_first(study):
    _, page = study
    items = _Tags(_section(page, "Where the providers disagree most")).all("li")
    assert [(a["data-song"], a["data-stem"]) for a in items] == [("s2", "vocals"), ("s3", "vocals"),
                                                                ("s1", "instrumental")]
    assert "cqtai 10.00 dB, apiframe 2.00 dB (a − b +8.00)" in page
    found = disagreements(_results())
    assert [(d.song, d.rank_key) for d in found] == [("s2", 8.0), ("s3", 4.0), ("s1", 1.0)]


def test_audio_links_resolve_to_the_cached_files(study, tmp_path):
    path, page = study
    part = _section(page, "Where the providers disagree most")
    audio = _Tags(part).all("audio")
    assert audio and all(a["preload"] == "none" for a in audio)
    for a in audio:
        assert not a["src"].startswith(("/", "file:")), a["src"]  # relative
        assert (path.parent / unquote(a["src"])).resolve().is_file(), a["src"]
    s2 = part.split("data-song='s2'", 1)[1].split("</li>", 1)[0]
    cqtai, apiframe = s2.split("data-provider='apiframe'")
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", cqtai) == ["source", "vocals", "backing_vocals"]
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", apiframe) == ["source", "vocals"]
    s1 = part.split("data-song='s1'", 1)[1].split("</li>", 1)[0]  # instrumental: the 12-stem set's other stems
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", s1) == ["source", "drums", "bass", "source", "instrumental"]
    s3 = part.split("data-song='s3'", 1)[1].split("</li>", 1)[0]
    assert "not in the cache" in s3.split("data-provider='apiframe'")[1]  # its folder is gone
    assert "not in the cache" not in s3.split("data-provider='apiframe'")[0]


def test_provider_errors_are_escaped(study):
    _, page = study
    failed = _section(page, "Failed songs")
    assert "<script>" not in page and "alert(&#x27;owned&#x27;)" in failed
    assert "HTTP 500: &lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; &amp; more" in failed
    assert [a["data-song"] for a in _Tags(failed).all("tr") if "data-song" in a] == ["s5", "s6"]
    assert "over budget" in failed


def test_agreement_only_study(tmp_path):
    page = build_study(tmp_path, truth=False).read_text(encoding="utf-8")
    assert "data-fact='agreement-only'" in page and _facts(page)["truth"] == "0"
    items = _Tags(_section(page, "Where the providers disagree most")).all("li")
    assert [a["data-song"] for a in items] == ["s4", "s2", "s3", "s1"]  # lowest agreement first
    assert "agreement SI-SDR: cqtai against apiframe 1.50 dB, apiframe against cqtai 2.00 dB" in page
    figures = [a["data-figure"] for a in _Tags(page).all("div") if "data-figure" in a]
    assert figures == ["forest", "forest", "strip-agreement_si_sdr"]  # residual (dB) and leakage apart
    assert "no scores against true stems: residual and leakage" in page
    assert all(png[:4] == b"\x89PNG" for png in _pngs(page))


@pytest.mark.parametrize("empty", ["summary", "everything"])
def test_empty_tables(tmp_path, empty):
    songs = _songs(tmp_path) if empty == "summary" else pd.DataFrame()
    results = _results() if empty == "summary" else pd.DataFrame()
    summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    path = write_study_report(tmp_path / "out", results=results, songs=songs, summary=summary)
    page = path.read_text(encoding="utf-8")
    assert page.count("no paired numbers yet") == 2  # the table and the forest plot
    assert "data-figure='forest'" not in page
    if empty == "everything":
        assert _facts(page)["songs"] == "0" and "data-empty='strips'" in page and "data-empty='disagree'" in page
        assert "data-fact='agreement-only'" not in page


def test_render_matches_the_written_page(tmp_path):
    page = render_study_report(tmp_path / "study", results=_results(), songs=_songs(tmp_path), summary=_summary())
    path = write_study_report(tmp_path / "study", results=_results(), songs=_songs(tmp_path), summary=_summary())
    assert path.read_text(encoding="utf-8") == page


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_nullable_columns_give_the_same_page(tmp_path, backend):
    """Frames read back from parquet may hold pandas' NA (nullable or Arrow-backed dtypes) where
    the study wrote NaN or None: the page is the same."""
    results, songs, summary = _results(), _songs(tmp_path), _summary()
    plain = render_study_report(tmp_path / "study", results=results, songs=songs, summary=summary)
    results.to_parquet(tmp_path / "results.parquet")
    results = pd.read_parquet(tmp_path / "results.parquet", dtype_backend=backend)
    songs, summary = songs.convert_dtypes(dtype_backend=backend), summary.convert_dtypes(dtype_backend=backend)
    assert results["value"].isna().any()  # the silent agreement rows: NA, not NaN
    assert render_study_report(tmp_path / "study", results=results, songs=songs, summary=summary) == plain
