"""``stemlab export``: the command's parser and what it runs (called by :mod:`stemlab.cli`).

Kept apart from :mod:`stemlab.exports` because it opens sets by id (:func:`stemlab.fetching.open_set`,
a layer above the exports themselves).

>>> default_output("cqtai-12-05d72140", "musdb"), default_output("my stems", "stems-mp4")
('cqtai-12-05d72140-musdb', 'my_stems.stem.mp4')
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import FORMATS, write

__all__ = ["add_cli", "run_cli", "default_output"]

_SUFFIXES = {"folder": "-stems", "musdb": "-musdb", "stems-mp4": ".stem.mp4", "zip": "-stems.zip", "midi": ".mid"}


def default_output(name: str, format: str) -> str:
    """Where an export of the set ``name`` goes when no ``-o`` is given (in the current folder)."""
    from ..cache import safe_component

    return safe_component(name) + _SUFFIXES[format]


def add_cli(subparsers, common):
    """Add ``export`` to ``stemlab``'s subcommands (``subparsers`` of the top parser; ``common``
    the parent parser that carries ``--cache-dir``). Returns the new parser."""
    parser = subparsers.add_parser(
        "export", parents=[common], help="write a set for other tools: folder, MUSDB18, NI .stem.mp4, zip, MIDI",
        examples=("stemlab export ./my-stems -o ./for-daw                 # <stem>.wav + mixture.wav, aligned",
                  "stemlab export CLIP_ID --format stems-mp4 -o song.stem.mp4 --json"))
    parser.add_argument("set", metavar="SET", help="job id, clip id / parent job id, or a set folder")
    parser.add_argument("--format", choices=tuple(FORMATS), default="folder",
                        help="folder (default), musdb, stems-mp4, zip or midi")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="the folder or file to write (default: ./<set>-stems, ./<set>-musdb, ./<set>.stem.mp4, "
                             "./<set>-stems.zip or ./<set>.mid)")
    parser.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=24,
                        help="WAV/FLAC/ALAC sample size: 16, 24 (default) or 32 (float, WAV only)")
    parser.add_argument("--flac", action="store_true", help="FLAC files instead of WAV (folder, musdb, zip)")
    parser.add_argument("--codec", choices=("aac", "alac"), default="aac",
                        help="stems-mp4 audio: aac (default, 256 kbit/s) or alac (lossless)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder or file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no notices")
    return parser


def run_cli(args, settings) -> int:
    """Run ``stemlab export`` with parsed ``args``; prints what was written. Returns the exit code."""
    from ..fetching import open_set

    folder = Path(args.set).expanduser()
    stemset = open_set(folder.resolve() if folder.is_dir() else args.set, settings=settings)  # "." has no name
    output = Path(args.output or default_output(stemset.key or stemset.label, args.format)).expanduser()
    result = write(stemset, output, format=args.format, bit_depth=args.bit_depth,
                   file_format="flac" if args.flac else "wav", codec=args.codec, force=args.force)
    facts = result.to_dict()
    if args.json:
        sys.stdout.write(json.dumps(facts, ensure_ascii=False) + "\n")
        return 0
    if facts["sr"]:
        print(f"wrote {output} ({args.format}: {facts['sr']:,} Hz, {facts['channels']} channel(s), "
              f"{facts['length'] / facts['sr']:.3f} s)")
    else:
        print(f"wrote {output} ({args.format}: {len(result.record.get('stems', []))} tracks)")
    for file in facts["files"]:
        print(f"  {file['path']:<40} {file['bytes'] / 1e6:8.2f} MB  sha256 {file['sha256'][:16]}")
    for note in facts["notes"]:
        if note not in result.noticed:  # those were said on stderr already (unless --quiet)
            print(f"  - {note}")
    return 0
