"""The ``stemlab`` command. A contract: other tools script it.

Exit codes: 0 ok; 1 the check found a problem (or some songs of a study failed); 2 usage error (no request sent); 3 provider,
network or decode error. Errors are one line on stderr, ``stemlab: error: ...``, with no
traceback and no key (``STEMLAB_DEBUG=1`` shows the traceback of an unexpected error).
Notices (a repair, a wait for another fetch of the same set, a retry, a source that did not download)
are ``stemlab: ...`` lines on stderr; ``--quiet`` drops them. Nothing printed carries a
provider's escape sequences or control characters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import Settings, redact
from .errors import StemlabError, UsageError
from .progress import above_bars
from .providers import REGISTRY, provider
from .terminal import PrintableStream, printable

__all__ = ["main", "entry"]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, examples: Sequence[str] = (), **kwargs):
        if examples:
            kwargs.update(epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"stemlab: error: {message} (see '{self.prog} --help')\n")


class _AnyCase(dict):
    """A subcommand table that finds ``CQTAI`` as ``cqtai`` (provider names are case-insensitive)."""

    def __contains__(self, name) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def __getitem__(self, name):
        return super().__getitem__(name.lower() if isinstance(name, str) else name)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stemlab", description="Fetch, cache, check and compare music stems.", examples=(
        "stemlab demo                          # the whole pipeline offline, no key",
        "stemlab fetch cqtai CLIP_ID           # a provider's stems, cached",
        "stemlab notebooks                     # copy the four notebooks to ./stemlab-notebooks"))
    parser.add_argument("--version", action="version", version=f"stemlab {__version__}")
    parser.add_argument("--cache-dir", help="cache folder (default: $STEMLAB_CACHE_DIR or the user cache dir)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    # --cache-dir is accepted after the command too (stemlab check SET --cache-dir DIR)
    common = _Parser(add_help=False)
    common.add_argument("--cache-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    fetch = commands.add_parser("fetch", help="fetch a provider's stems of a track (cached)",
                                examples=[line for kind in REGISTRY.values() for line in kind.examples[:1]])
    providers = fetch.add_subparsers(dest="provider", required=True, parser_class=_Parser, metavar="PROVIDER")
    providers.choices = providers._name_parser_map = _AnyCase()  # stemlab fetch CQTAI ...
    for name, kind in REGISTRY.items():
        sub = providers.add_parser(name, help=kind.title, parents=[common], examples=kind.examples)
        kind.add_arguments(sub)
        sub.add_argument("--force", action="store_true", help="submit a new job even if one is cached (costs credits)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.add_argument("--quiet", action="store_true", help="no progress bars, no notices")

    check = commands.add_parser("check", parents=[common], help="do a set's stems recombine to its source?",
                                examples=("stemlab check 05d72140-38f5-4eb4-bdaa-a6e0d1c1167e   # a cached set, by id",
                                          "stemlab check ./my-stems --json    # a folder of <stem>.wav and mixture.wav"))
    check.add_argument("set", metavar="SET", help="job id, clip id / parent job id, or a set folder")
    check.add_argument("--json", action="store_true", help="print one JSON object")

    compare = commands.add_parser("compare", parents=[common], help="compare stem sets, with or without the true stems",
                                  examples=("stemlab compare CLIP_ID PARENT_JOB_ID             # how two providers agree",
                                            "stemlab compare ./a ./b --reference ./truth --csv  # scored against the truth"))
    compare.add_argument("sets", nargs="+", metavar="SET", help="job id, clip id / parent job id, or a folder of "
                                                                  "<stem>.wav/.flac/.mp3 files")
    compare.add_argument("--reference", metavar="SET", help="the true stems (adds SI-SDR, SDR, SIR, SAR)")
    compare.add_argument("--no-bss", action="store_true", help="skip BSSEval (SDR, SIR, SAR): faster")
    output = compare.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--csv", action="store_true", help="print the tidy table as CSV")

    midi = commands.add_parser("midi", parents=[common], help="transcribe a set's stems to notes, as one MIDI file",
                               examples=("stemlab midi CLIP_ID                      # every stem, to ./<set>.mid",
                                         "stemlab midi ./my-stems --stem bass -o bass.mid --json"))
    midi.add_argument("set", metavar="SET", help="job id, clip id / parent job id, or a set folder")
    midi.add_argument("--stem", action="append", metavar="NAME", dest="stems",
                      help="only this stem (repeat for more; default: every stem)")
    midi.add_argument("--method", choices=("monophonic", "polyphonic", "drums"),
                      help="one method for every stem (default: each stem's kind chooses)")
    midi.add_argument("-o", "--output", metavar="FILE.mid", help="where to write (default: ./<set>.mid)")
    midi.add_argument("--json", action="store_true", help="print one JSON object")
    midi.add_argument("--quiet", action="store_true", help="no progress bar")

    from .exports.cli import add_cli as add_export  # light: no numpy, no soundfile, no av
    add_export(commands, common)

    study = commands.add_parser("study", parents=[common], help="many songs through several providers, on Dask",
                                examples=("stemlab study songs.csv --out study --dry-run   # the jobs and their cost",
                                          "stemlab study songs.csv --out study --budget 5000 --max-jobs cqtai=2"))
    study.add_argument("songs", metavar="SONGS.csv", help="a CSV with a header: song, and any of cqtai_clip_id, "
                       "apiframe_parent_job_id, apiframe_index, apiframe_track_id, truth_dir")
    study.add_argument("--out", required=True, metavar="DIR", help="where results.parquet, songs.parquet, "
                       "summary.csv and report.html go (a rerun resumes from it)")
    study.add_argument("--providers", metavar="P,P", help="cqtai (12 stems), cqtai-two, apiframe "
                       "(default: cqtai,apiframe)")
    where = study.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (default: a LocalCluster)")
    where.add_argument("--workers", type=int, default=2, metavar="N", help="LocalCluster worker processes (default 2)")
    study.add_argument("--max-jobs", action="append", metavar="PROVIDER=N",
                       help="jobs in flight per provider account, across all workers (default cqtai=2, apiframe=4)")
    study.add_argument("--budget", type=float, metavar="CREDITS",
                       help="start no job past this many credits (songs that do not fit are left out)")
    study.add_argument("--dry-run", action="store_true", help="print the planned jobs and their cost; send nothing")
    study.add_argument("--keep-decoded", action="store_true",
                       help="keep decoded .npy arrays in the cache (default: only the MP3s, as served)")
    study.add_argument("--json", action="store_true", help="print one JSON object")
    study.add_argument("--quiet", action="store_true", help="no progress bar")

    cache = commands.add_parser("cache", help="see and free the cache: ls, du, clean, verify",
                                examples=("stemlab cache du", "stemlab cache clean --derived   # free rebuildable data"))
    actions = cache.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    listing = actions.add_parser("ls", parents=[common], help="list the cached stem sets",
                                 examples=("stemlab cache ls", "stemlab cache ls --json"))
    usage = actions.add_parser("du", parents=[common], help="disk use per set: audio as served, derived data",
                               examples=("stemlab cache du", "stemlab --cache-dir /tmp/stems cache du --json"))
    clean = actions.add_parser("clean", parents=[common], help="remove sets, or only their rebuildable data",
                               examples=("stemlab cache clean --derived            # every set's rebuildable data",
                                         "stemlab cache clean cqtai-12-05d72140    # one set, by name or id"))
    clean.add_argument("sets", nargs="*", metavar="SET", help="set names, job ids, clip ids or parent job ids")
    clean.add_argument("--derived", action="store_true", help="drop rebuildable data only (all of it without SET)")
    clean.add_argument("--force", action="store_true",
                       help="also remove sets whose job is running or uncertain (may cost credits later)")
    verify = actions.add_parser("verify", parents=[common], help="check every file against its manifest's sha256",
                                examples=("stemlab cache verify", "stemlab cache verify cqtai-12-05d72140 --json"))
    verify.add_argument("sets", nargs="*", metavar="SET", help="sets to check (default: all)")
    for sub in (listing, usage, clean, verify):
        sub.add_argument("--json", action="store_true", help="print JSON")
    ls = commands.add_parser("ls", parents=[common], help="list the cached stem sets (same as 'cache ls')",
                             examples=("stemlab ls", "stemlab ls --json"))
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    from .pack import add_cli as add_pack  # stemlab pack export | import | ls
    add_pack(commands, common)

    sandbox = commands.add_parser("sandbox", parents=[common], help="serve both providers' APIs on 127.0.0.1 (no key, no network)",
                                  examples=("stemlab sandbox                # prints the exports that point stemlab at it",
                                            "stemlab sandbox --port 0       # any free port"))
    sandbox.add_argument("--port", type=int, default=8765,
                         help="the port on 127.0.0.1 to listen on (default: 8765; 0 picks a free one)")
    sandbox.add_argument("--library", help="a sandbox library folder (default: the built-in demo library)")

    demo = commands.add_parser("demo", parents=[common], help="the whole pipeline on the built-in demo, offline, no key",
                               examples=("stemlab demo", "stemlab demo --open    # and open the report in a browser"))
    demo.add_argument("--open", action="store_true", help="open the report in a browser, where one exists")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    notebooks = commands.add_parser("notebooks", help="copy the four example notebooks into a folder",
                                    examples=("stemlab notebooks                  # into ./stemlab-notebooks",
                                              "stemlab notebooks ~/class --force  # overwrite earlier copies"))
    notebooks.add_argument("dir", nargs="?", default="stemlab-notebooks", metavar="DIR",
                           help="where to write them (default: ./stemlab-notebooks; made if missing)")
    notebooks.add_argument("--force", action="store_true", help="overwrite notebooks that are already there")
    return parser


def _progress(args) -> bool:
    """Progress bars go to stderr, for people: not with --quiet, and not when stderr is a pipe."""
    return not args.quiet and sys.stderr.isatty()


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _cmd_fetch(args, settings) -> int:
    from .fetching import fetch

    kind = provider(args.provider)  # typed in any case: CQTAI is cqtai
    s = fetch(kind.name, force=args.force, progress=_progress(args), settings=settings, **kind.arguments(args))
    if args.json:
        _print_json(s.to_dict())
        return 0
    facts = s.to_dict()
    print(f"{facts['provider']} job {facts['job_id']}: {len(facts['stems'])} stems in {facts['set_dir']}")
    rows = ([("source", "", facts["source"]["duration"], facts["source"]["path"])] if facts["source"] else [])
    rows += [(st["name"], st["label"], st["duration"], st["path"]) for st in facts["stems"]]
    for name, label, duration, path in rows:
        print(f"  {name:<16} {label:<18} {duration:8.2f} s  {path}")
    if facts["source_error"]:
        print(f"  source           NOT DOWNLOADED: {facts['source_error']}")
    return 0


def _set_ref(ref: str, settings) -> None:
    """A :class:`UsageError` when ``ref`` is neither an existing folder nor the id of a cached set,
    saying which folder does not exist. (A ``ref`` with a ``/``, or starting with ``.`` or ``~``,
    is a folder: ids never look like that.)"""
    from .cache import Cache

    path = Path(ref).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise UsageError(f"{ref} is a file, not a folder: pass the folder that holds the stems")
    if ref.startswith((".", "~")) or "/" in ref or os.sep in ref:
        raise UsageError(f"the folder {ref} does not exist: pass a folder of <stem>.wav/.flac/.mp3 files, or a job "
                         f"id or clip id from `stemlab ls`")
    cache = Cache(settings.cache_dir)
    try:
        cache.resolve_keys([ref])
    except UsageError:
        raise UsageError(f"no set {ref!r}: there is no folder {ref} here, and no set in {cache.root} has that id; "
                         f"pass a folder of stems, or a job id or clip id from `stemlab ls`") from None


def _cmd_check(args, settings) -> int:
    from .analysis.check import check

    _set_ref(args.set, settings)
    report = check(args.set, settings=settings)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_check(report))
    return 0 if report.ok else 1


def format_check(report) -> str:
    """The check as a plain-text table."""
    lines = [f"{'stem':<16} {'duration':>9} {'rate':>6} {'delta ms':>9} {'level':>7} {'gain dB':>8} {'lag':>7}  verdict"]
    for s in report.stems:
        level = "silent" if s.silent else f"{s.level_dbfs:.1f}"
        gain, lag = ("", "") if s.silent else (f"{s.gain_db:+.2f}" + ("-" if s.polarity < 0 else ""), f"{s.lag_samples}")
        lines.append(f"{s.name:<16} {s.duration:9.3f} {s.native_sr or '':>6} {1000 * s.delta_s:+9.1f} {level:>7} "
                     f"{gain:>8} {lag:>7}  {s.verdict}")
    lines.append(f"source {report.source_duration:.3f} s, lag {report.lag_samples} samples, {report.level_text}, "
                 f"residual {report.residual_db:.1f} dB: {'recombines' if report.ok else 'DOES NOT recombine'}")
    lines += [f"  - {p}" for p in report.problems]
    lines += [f"  (conformed: {step})" for step in report.steps]
    return "\n".join(lines)


def _cmd_compare(args, settings) -> int:
    from .analysis.compare import compare
    from .view.compare_view import formatted

    for ref in (*args.sets, *([args.reference] if args.reference else [])):
        _set_ref(ref, settings)
    result = compare(*args.sets, reference=args.reference, bss=not args.no_bss, settings=settings)
    if args.json:
        sys.stdout.write(result.to_json() + "\n")
    elif args.csv:
        sys.stdout.write(result.to_csv())
    else:
        with _pandas_display():
            for metric in ("si_sdr", "sdr", "sdr_improvement", "agreement_si_sdr", "leakage", "loudness_db"):
                if (result.table.metric == metric).any():
                    print(f"{metric}:\n{formatted(result.pivot(metric)).to_string()}\n")
        lags = ", ".join(f"{name} {a['lag_samples']}" for name, a in result.alignment.items())
        print(f"aligned at {result.sr} Hz over {next(iter(result.alignment.values()))['length_samples']} samples; "
              f"lags: {lags}")
    return 0


def _cmd_midi(args, settings) -> int:
    from .cache import safe_component
    from .fetching import open_set
    from .transcription.stems import method_for

    _set_ref(args.set, settings)
    stemset = open_set(args.set, settings=settings)
    names = list(dict.fromkeys(args.stems or stemset.names))
    unknown = [name for name in names if name not in stemset]
    if unknown:
        raise UsageError(f"no stem {unknown[0]!r} in this set; it has {', '.join(stemset.names)}")
    output = Path(args.output or f"{safe_component(stemset.key or stemset.label)}.mid").expanduser()
    if output.is_dir():
        raise UsageError(f"{output} is a folder: pass a file name, such as {output / 'stems.mid'}")
    if not output.parent.is_dir():
        raise UsageError(f"the folder {output.parent} does not exist: create it, or write the file elsewhere")
    counts = stemset.notes(names, method=args.method, progress=_progress(args)).groupby("stem").size()
    stemset.to_midi(output, names=names, method=args.method)
    stems = [{"name": name, "notes": int(counts.get(name, 0)), "method": method_for(name, args.method)}
             for name in names]
    if args.json:
        _print_json({"midi": str(output), "stems": stems})
        return 0
    for stem in stems:
        print(f"  {stem['name']:<16} {stem['notes']:>6} notes  ({stem['method']})")
    print(f"wrote {output}: {len(names)} tracks, {int(counts.sum())} notes")
    return 0


def _cmd_pack(args, settings) -> int:
    from .pack import run_cli

    return run_cli(args, settings)


def _cmd_export(args, settings) -> int:
    from .exports.cli import run_cli

    _set_ref(args.set, settings)
    return run_cli(args, settings)


def _cmd_study(args, settings) -> int:
    from .studies.run import study
    from .studies.songs import UNDOCUMENTED_COST

    result = study(args.songs, out=args.out, providers=args.providers, scheduler=args.scheduler,
                   workers=args.workers, max_jobs=args.max_jobs, budget=args.budget, dry_run=args.dry_run,
                   corpus=not args.keep_decoded, progress=_progress(args), settings=settings)
    summary = result.to_dict()
    if args.json:
        _print_json(summary)
    elif args.dry_run:
        for planned in result.plan:
            cost = f"{planned.cost:>6.0f} credits" if planned.action == "submit" else ""
            print(f"  {planned.job.song.song:<24} {planned.job.provider:<10} {planned.action:<12} {cost}")
        print(f"{sum(p.action == 'submit' for p in result.plan)} job(s) to submit, {summary['credits'] or 0:.0f} "
              f"credits; nothing was sent")
        if any(p.job.kind.credits is None and p.action == "submit" for p in result.plan):
            print(f"note: CQTAI does not document the price of gen_stem_two; each is counted at "
                  f"{UNDOCUMENTED_COST:.0f} credits, the top of its stated range")
    else:
        print(f"{summary['done']} of {summary['songs']} songs done, {summary['failed']} failed"
              + (f", {summary['over_budget']} over the budget" if summary["over_budget"] else "")
              + f"; {summary['submits']} job(s) submitted ({summary['credits'] or 0:.0f} credits) in "
              f"{summary['seconds']:.0f} s")
        print(f"results: {summary['results']}\nsummary: {summary['summary']}\nreport:  {summary['report']}")
    return 1 if summary["failed"] else 0


def _pandas_display():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 50)


def _cmd_cache(args, settings) -> int:
    from .cache import Cache

    cache = Cache(settings.cache_dir)
    if args.action == "ls":
        entries = cache.ls()
        if args.json:
            _print_json([e.to_dict() for e in entries])
        elif not entries:
            print(f"no stem sets in {cache.root}")
        for e in [] if args.json else entries:
            print(f"{e.key:<52} {e.provider or '':<9} {e.state:<10} {e.stems:>3} stems  job {e.job_id}")
        return 0
    if args.action == "du":
        rows = cache.du()
        if args.json:
            _print_json([r.to_dict() for r in rows])
            return 0
        print(f"{'set':<52} {'audio':>9} {'derived':>9} {'total':>9}")
        for r in rows:
            print(f"{r.key:<52} {_mb(r.audio):>9} {_mb(r.derived):>9} {_mb(r.total):>9}")
        print(f"{'all, in ' + str(cache.root):<52} {_mb(sum(r.audio for r in rows)):>9} "
              f"{_mb(sum(r.derived for r in rows)):>9} {_mb(sum(r.total for r in rows)):>9}")
        return 0
    if args.action == "clean":
        removed = cache.clean(args.sets, derived=args.derived, force=args.force)
        if args.json:
            _print_json([str(path) for path in removed])
        else:
            print(f"removed {len(removed)} folder(s)" + "".join(f"\n  {path}" for path in removed))
        return 0
    damage = cache.verify(args.sets)
    if args.json:
        _print_json([d.to_dict() for d in damage])
    else:
        print("every file matches its manifest" if not damage else
              "\n".join(f"{d.key}: {d.path}: {d.problem}" for d in damage))
    return 1 if damage else 0


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _cmd_ls(args, settings) -> int:
    args.action = "ls"
    return _cmd_cache(args, settings)


def _cmd_sandbox(args, settings) -> int:
    from .config import env_name
    from .demo.library import demo_library
    from .sandbox.server import SANDBOX_KEYS, serve

    root = args.library or demo_library(settings=settings)

    def announce(sb) -> None:
        print(f"stemlab sandbox on {sb.url} (Ctrl-C to stop), serving {root}")
        print("Use it from a shell or a notebook with:")
        settings = sb.settings(poll_interval=0.2)
        for kind in REGISTRY.values():
            for setting in kind.settings_names():
                value = settings.option(setting)
                print(f"  export {env_name(setting)}={value.reveal() if setting == kind.key_setting else value}")
        print(f"  export {env_name('poll_interval')}={settings.poll_interval:g}")
        for song_id, song in sb.library.items():
            tracks = ", ".join(t.id for t in song.tracks)
            print(f"song {song_id}: clip id {song.clip_id} | apiframe parent job {song.parent_job_id} (tracks {tracks})")
        sys.stdout.flush()

    serve(root, port=args.port, on_ready=announce, cqtai_key=SANDBOX_KEYS["cqtai"],
          apiframe_key=SANDBOX_KEYS["apiframe"])
    return 0


def _cmd_demo(args, settings) -> int:
    from .demo.run import run_demo

    return run_demo(settings=settings, open_report=args.open, progress=_progress(args))


def shipped_notebooks() -> list[Path]:
    """The notebooks that come with stemlab: ``stemlab/notebooks/`` in an installed wheel, or the
    checkout's top-level ``notebooks/`` in an editable install."""
    here = Path(__file__).resolve().parent
    for folder in (here / "notebooks", here.parent / "notebooks"):
        found = sorted(folder.glob("*.ipynb"))
        if found:
            return found
    raise StemlabError("this installation of stemlab has no notebooks; reinstall it (pip install --force-reinstall "
                       "stemlab)")


def _cmd_notebooks(args, settings) -> int:
    import shutil

    target = Path(args.dir).expanduser()
    notebooks = shipped_notebooks()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{args.dir} is a file, not a folder: pass a folder for the notebooks")
    there = [target / nb.name for nb in notebooks if (target / nb.name).exists()]
    if there and not args.force:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise UsageError(f"{there[0]} is already there{more}; pass --force to overwrite, or choose another folder")
    target.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copyfile(nb, target / nb.name)
        print(target / nb.name)
    print(f"open them with: jupyter lab {target}")
    return 0


COMMANDS = {"fetch": _cmd_fetch, "check": _cmd_check, "compare": _cmd_compare, "midi": _cmd_midi, "export": _cmd_export,
            "study": _cmd_study,
            "cache": _cmd_cache, "pack": _cmd_pack,
            "ls": _cmd_ls, "sandbox": _cmd_sandbox, "demo": _cmd_demo, "notebooks": _cmd_notebooks}


class _Notices(logging.StreamHandler):
    """Notices on stderr, written above any progress bar (which is redrawn below them)."""

    def emit(self, record: logging.LogRecord) -> None:
        with above_bars():
            super().emit(record)


def main(argv: Sequence[str] | None = None) -> int:
    stdout, sys.stdout = sys.stdout, PrintableStream(sys.stdout)  # labels and ids come from providers
    notices = _Notices(PrintableStream(sys.stderr))  # "waiting for another fetch...", "retrying ..."
    notices.setFormatter(logging.Formatter("stemlab: %(message)s"))
    log = logging.getLogger("stemlab")
    log.addHandler(notices)
    propagate, level, log.propagate = log.propagate, log.level, False
    try:
        return _run(argv)
    finally:
        sys.stdout = stdout
        log.removeHandler(notices)
        log.propagate, log.level = propagate, level


def entry() -> int:
    """The ``stemlab`` command (and ``python -m stemlab``): :func:`main`, then an exit that a
    late Ctrl-C cannot turn into a traceback (the work is done; Python's exit handlers are all
    that is left to run)."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # `stemlab` alone: what it can do, not an error
        _parser().print_help()
        return 0
    args = _parser().parse_args(argv)
    if getattr(args, "quiet", False):
        logging.getLogger("stemlab").setLevel(logging.ERROR)
    secrets: list[str] = []
    try:
        settings = Settings.of(cache_dir=args.cache_dir)  # the one resolution of this run
        secrets = settings.secrets()
        return COMMANDS[args.command](args, settings)
    except StemlabError as exc:
        print(f"stemlab: error: {_one_line(exc, secrets)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `stemlab ls | head`: the reader has what it wanted
        with contextlib.suppress(OSError, AttributeError, ValueError):  # no second error at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 0
    except KeyboardInterrupt:
        print("stemlab: interrupted; run the same command again to resume (a submitted job is not paid twice)",
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if os.environ.get("STEMLAB_DEBUG"):
            raise
        print(f"stemlab: error: unexpected {type(exc).__name__}: {_one_line(exc, secrets)} (STEMLAB_DEBUG=1 shows "
              f"the traceback)", file=sys.stderr)
        return 3


def _one_line(exc: BaseException, secrets: list[str]) -> str:
    return redact(" ".join(printable(exc).split()) or type(exc).__name__, secrets)


if __name__ == "__main__":
    sys.exit(main())
