"""The ``stemlab`` command. A contract: other tools script it.

Exit codes: 0 ok; 1 the check found a problem; 2 usage error (no request sent); 3 provider,
network or decode error. Errors are one line on stderr, ``stemlab: error: ...``, with no
traceback and no key (``STEMLAB_DEBUG=1`` shows the traceback of an unexpected error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from . import __version__
from .errors import StemlabError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"stemlab: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stemlab", description="Fetch, cache, check and compare music stems.")
    parser.add_argument("--version", action="version", version=f"stemlab {__version__}")
    parser.add_argument("--cache-dir", help="cache folder (default: $STEMLAB_CACHE_DIR or the user cache dir)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    fetch = commands.add_parser("fetch", help="fetch a provider's stems of a track (cached)")
    providers = fetch.add_subparsers(dest="provider", required=True, parser_class=_Parser, metavar="PROVIDER")
    cqtai = providers.add_parser("cqtai", help="CQTAI gen_stem_all (12 stems) or gen_stem_two (2 stems)")
    cqtai.add_argument("clip_id", metavar="CLIP_ID", help="the Suno clip id to split")
    cqtai.add_argument("--two", action="store_true", help="2 stems (gen_stem_two) instead of 12")
    apiframe = providers.add_parser("apiframe", help="Apiframe Suno 'stems' action (vocals, instrumental)")
    apiframe.add_argument("parent_job_id", metavar="PARENT_JOB_ID", help="the Apiframe Suno job to split")
    which = apiframe.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, choices=(1, 2), help="which of the parent's tracks (1 or 2)")
    which.add_argument("--track-id", help="the id of the parent's track to split")
    apiframe.add_argument("--webhook-url", help="https URL Apiframe will POST job events to")
    apiframe.add_argument("--webhook-event", action="append", choices=("progress", "completed", "failed"),
                          dest="webhook_events", help="an event to send to the webhook (repeatable)")
    for sub in (cqtai, apiframe):
        sub.add_argument("--force", action="store_true", help="submit a new job even if one is cached (costs credits)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")

    check = commands.add_parser("check", help="do a set's stems recombine to its source?")
    check.add_argument("set", metavar="SET", help="job id, clip id / parent job id, or a set folder")
    check.add_argument("--json", action="store_true", help="print one JSON object")

    compare = commands.add_parser("compare", help="compare stem sets, with or without the true stems")
    compare.add_argument("sets", nargs="+", metavar="SET", help="job id, clip id / parent job id, or a folder of "
                                                                  "<stem>.wav/.flac/.mp3 files")
    compare.add_argument("--reference", metavar="SET", help="the true stems (adds SI-SDR, SDR, SIR, SAR)")
    compare.add_argument("--no-bss", action="store_true", help="skip BSSEval (SDR, SIR, SAR): faster")
    output = compare.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--csv", action="store_true", help="print the tidy table as CSV")

    ls = commands.add_parser("ls", help="list the cached stem sets")
    ls.add_argument("--json", action="store_true", help="print a JSON list")

    sandbox = commands.add_parser("sandbox", help="serve both providers' APIs on 127.0.0.1 (no key, no network)")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--library", help="a sandbox library folder (default: the built-in demo library)")

    demo = commands.add_parser("demo", help="the whole pipeline on the built-in demo, offline, no key")
    demo.add_argument("--open", action="store_true", help="open the report in a browser, where one exists")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _progress(args) -> bool:
    """Progress bars go to stderr, for people: not with --quiet, and not when stderr is a pipe."""
    return not args.quiet and sys.stderr.isatty()


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _cmd_fetch(args) -> int:
    from .fetching import fetch

    kwargs = dict(force=args.force, progress=_progress(args), cache_dir=args.cache_dir)
    if args.provider == "cqtai":
        s = fetch("cqtai", clip_id=args.clip_id, two=args.two, **kwargs)
    else:
        s = fetch("apiframe", parent_job_id=args.parent_job_id, index=args.index, track_id=args.track_id,
                  webhook_url=args.webhook_url, webhook_events=args.webhook_events, **kwargs)
    if args.json:
        _print_json(s.to_dict())
        return 0
    facts = s.to_dict()
    print(f"{facts['provider']} job {facts['job_id']}: {len(facts['stems'])} stems in {facts['set_dir']}")
    rows = ([("source", "", facts["source"]["duration"], facts["source"]["path"])] if facts["source"] else [])
    rows += [(st["name"], st["label"], st["duration"], st["path"]) for st in facts["stems"]]
    for name, label, duration, path in rows:
        print(f"  {name:<16} {label:<18} {duration:8.2f} s  {path}")
    return 0


def _cmd_check(args) -> int:
    from .analysis.check import check
    from .fetching import open_set

    report = check(open_set(args.set, cache_dir=args.cache_dir))
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_check(report))
    return 0 if report.ok else 1


def format_check(report) -> str:
    """The check as a plain-text table."""
    lines = [f"{'stem':<16} {'duration':>9} {'delta ms':>9} {'level':>7}  ok"]
    for s in report.stems:
        level = "silent" if s.silent else f"{s.level_dbfs:.1f}"
        lines.append(f"{s.name:<16} {s.duration:9.3f} {1000 * s.delta_s:+9.1f} {level:>7}  {'ok' if s.ok else 'FAIL'}")
    lines.append(f"source {report.source_duration:.3f} s, lag {report.lag_samples} samples, gain {report.gain_db:+.2f} dB, "
                 f"residual {report.residual_db:.1f} dB: {'recombines' if report.ok else 'DOES NOT recombine'}")
    lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)


def _cmd_compare(args) -> int:
    from .analysis.compare import compare

    result = compare(*args.sets, reference=args.reference, bss=not args.no_bss, cache_dir=args.cache_dir)
    if args.json:
        sys.stdout.write(result.to_json() + "\n")
    elif args.csv:
        sys.stdout.write(result.to_csv())
    else:
        with _pandas_display():
            for metric in ("si_sdr", "sdr", "sdr_improvement", "agreement_si_sdr", "leakage", "loudness_db"):
                if (result.table.metric == metric).any():
                    print(f"{metric}:\n{result.pivot(metric).round(2).to_string(na_rep='silent')}\n")
        lags = ", ".join(f"{name} {a['lag_samples']}" for name, a in result.alignment.items())
        print(f"aligned at {result.sr} Hz over {next(iter(result.alignment.values()))['length_samples']} samples; "
              f"lags: {lags}")
    return 0


def _pandas_display():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 50)


def _cmd_ls(args) -> int:
    from .cache import Cache
    from .config import Settings

    cache = Cache(Settings.resolve(cache_dir=args.cache_dir).cache_dir)
    entries = []
    for key in cache.keys():
        manifest = cache.read_manifest(key)
        record = manifest or cache.read_job(key) or {}
        state = "complete" if manifest else (record.get("state") or "unknown")
        entries.append({"key": key, "provider": record.get("provider"), "job_id": record.get("job_id"),
                        "state": state, "stems": len((manifest or {}).get("stems", [])),
                        "set_dir": str(cache.set_dir(key))})
    if args.json:
        _print_json(entries)
    elif not entries:
        print(f"no stem sets in {cache.root}")
    else:
        for e in entries:
            print(f"{e['key']:<52} {e['provider'] or '':<9} {e['state']:<10} {e['stems']:>3} stems  job {e['job_id']}")
    return 0


def _cmd_sandbox(args) -> int:
    from .sandbox.cli import run_sandbox

    return run_sandbox(port=args.port, library=args.library, cache_dir=args.cache_dir)


def _cmd_demo(args) -> int:
    from .demo.run import run_demo

    return run_demo(cache_dir=args.cache_dir, open_report=args.open, progress=_progress(args))


COMMANDS = {"fetch": _cmd_fetch, "check": _cmd_check, "compare": _cmd_compare, "ls": _cmd_ls, "sandbox": _cmd_sandbox,
            "demo": _cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except StemlabError as exc:
        print(f"stemlab: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stemlab: interrupted; run the same command again to resume (a submitted job is not paid twice)",
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if os.environ.get("STEMLAB_DEBUG"):
            raise
        print(f"stemlab: error: unexpected {type(exc).__name__}: {_one_line(exc)} (STEMLAB_DEBUG=1 shows the "
              f"traceback)", file=sys.stderr)
        return 3


def _one_line(exc: BaseException) -> str:
    from .config import Settings, redact

    text = " ".join(str(exc).split()) or type(exc).__name__
    try:
        return redact(text, Settings.resolve().secrets())
    except StemlabError:
        return text


if __name__ == "__main__":
    sys.exit(main())
