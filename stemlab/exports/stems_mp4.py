"""Native Instruments STEMS files (``.stem.mp4``), written with PyAV.

A STEMS file is an MP4 (brand ``M4A``) with five stereo 44.1 kHz audio streams: the master
(the mix) first, then drums, bass, other and vocals. Players that know nothing of stems play
the first stream: it is the only enabled track. The stems' names and colours are a JSON
object in a ``stem`` box in ``moov/udta`` (the format NI's tools, stempeg, Mixxx and Traktor
read)::

    {"mastering_dsp": {"compressor": {...}, "limiter": {...}}, "version": 1,
     "stems": [{"name": "Drums", "color": "#009E73"}, ...]}

PyAV (FFmpeg's mov muxer) writes ``mdat`` before ``moov``. So the ``stem`` box is added by
rewriting only ``moov``, the file's last box: ``udta`` gets one more child, and the sizes of
``udta`` and ``moov`` grow by its size. Every chunk offset points into ``mdat``, which does not
move, so none changes (:func:`add_stem_box` refuses a file laid out otherwise).

>>> box = _box(b"stem", b"{}")
>>> box, list(_children(box, 0, len(box)))
(b'\\x00\\x00\\x00\\nstem{}', [(b'stem', 0, 8, 10)])
>>> [s["name"] for s in stem_metadata()["stems"]]
['Drums', 'Bass', 'Other', 'Vocals']
"""

from __future__ import annotations

import json
import os
import secrets
import struct
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import StemlabError, UsageError

__all__ = ["STEM_COLORS", "stem_metadata", "write_stems_mp4", "add_stem_box", "read_stem_box", "require_av"]

#: the colours NI's tools and Mixxx give the four stems, in stream order
STEM_COLORS = {"drums": "#009E73", "bass": "#D55E00", "other": "#CC79A7", "vocals": "#56B4E9"}
SR = 44100
BLOCK = 1 << 15  # samples encoded per stream in turn, so the streams' chunks interleave


def require_av():
    """PyAV, or a :class:`UsageError` that says how to install it."""
    try:
        import av
    except ImportError:
        raise UsageError("writing a .stem.mp4 file needs PyAV, which is not installed: pip install "
                         "'stemlab[stems]'") from None
    return av


def stem_metadata(names: Sequence[str] = ("drums", "bass", "other", "vocals")) -> dict:
    """The NI stem JSON for four stems: mastering effects off, version 1, names and colours."""
    return {
        "mastering_dsp": {
            "compressor": {"enabled": False, "input_gain": 0.5, "output_gain": 0.5, "threshold": 0.0, "ratio": 3.0,
                           "attack": 0.003, "release": 0.3, "hp_cutoff": 300, "dry_wet": 50},
            "limiter": {"enabled": False, "threshold": 0.0, "ceiling": -0.35, "release": 0.05},
        },
        "version": 1,
        "stems": [{"name": name.capitalize(), "color": STEM_COLORS.get(name, "#FFFFFF")} for name in names],
    }


# ------------------------------------------------------------------------------------ MP4 boxes


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, offset, header size, size)`` of each box in ``data[start:end]``."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[offset + 8:offset + 16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise StemlabError(f"damaged MP4: a {kind!r} box at byte {offset} claims {size} bytes")
        yield kind, offset, header, size
        offset += size


def _top_level(f) -> list[tuple[bytes, int, int, int]]:
    """The file's top-level boxes, read header by header (``mdat`` is skipped, not read)."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    boxes, offset = [], 0
    while offset + 8 <= end:
        f.seek(offset)
        head = f.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise StemlabError(f"damaged MP4: a {kind!r} box at byte {offset} claims {size} bytes")
        boxes.append((kind, offset, header, size))
        offset += size
    return boxes


def _resized(data: bytes, header: int, size: int) -> bytes:
    """A box's bytes with its size field set to ``size`` (keeping a 64-bit size field)."""
    if header == 16:
        return data[:8] + struct.pack(">Q", size) + data[16:]
    if size >= 1 << 32:
        raise StemlabError("an MP4 box grew past 4 GiB")
    return struct.pack(">I", size) + data[4:]


def add_stem_box(path: str | os.PathLike, metadata: dict) -> None:
    """Add (or replace) the ``moov/udta/stem`` box of an MP4 whose ``moov`` is its last box,
    after ``mdat``: only ``moov`` is rewritten, so no chunk offset changes."""
    payload = json.dumps(metadata, separators=(",", ":")).encode("utf-8")
    with open(path, "r+b") as f:
        boxes = _top_level(f)
        kinds = [kind for kind, *_ in boxes]
        if b"moov" not in kinds or b"mdat" not in kinds:
            raise StemlabError(f"{path} is not an MP4 with audio (no moov or no mdat box)")
        if kinds[-1] != b"moov" or kinds.index(b"mdat") > kinds.index(b"moov"):
            raise StemlabError(f"{path} has its moov box before its media data: adding the stem box would move "
                               f"every chunk")
        _, moov_at, moov_header, moov_size = boxes[-1]
        f.seek(moov_at)
        moov = f.read(moov_size)
        body = bytearray(moov[moov_header:])
        stem = _box(b"stem", payload)
        udta = next(((o, h, s) for k, o, h, s in _children(moov, moov_header, len(moov)) if k == b"udta"), None)
        if udta is None:
            body += _box(b"udta", stem)
        else:
            at, header, size = udta
            old = moov[at:at + size]
            kept = b"".join(old[o:o + s] for k, o, h, s in _children(old, header, size) if k != b"stem")
            new = _resized(old[:header] + kept + stem, header, header + len(kept) + len(stem))
            body[at - moov_header:at - moov_header + size] = new
        new_moov = _resized(moov[:moov_header] + bytes(body), moov_header, moov_header + len(body))
        f.seek(moov_at)
        f.write(new_moov)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def read_stem_box(path: str | os.PathLike) -> dict | None:
    """The JSON of a file's ``moov/udta/stem`` box, or None when it has none.

    A box padded with NUL bytes (some tools write one) is read too.
    """
    with open(path, "rb") as f:
        for kind, offset, header, size in _top_level(f):
            if kind != b"moov":
                continue
            f.seek(offset)
            moov = f.read(size)
            for k, o, h, s in _children(moov, header, size):
                if k != b"udta":
                    continue
                for k2, o2, h2, s2 in _children(moov, o + h, o + s):
                    if k2 == b"stem":
                        return json.loads(moov[o2 + h2:o2 + s2].rstrip(b"\0").decode("utf-8"))
    return None


# ------------------------------------------------------------------------------------- encoding


def _frames(audio: np.ndarray, start: int, fmt: str, bit_depth: int) -> np.ndarray:
    block = np.asarray(audio[:, start:start + BLOCK], dtype=np.float32)
    if fmt == "fltp":
        return np.ascontiguousarray(block)
    clipped = np.clip(block, -1.0, 1.0)
    if bit_depth == 16:
        return np.ascontiguousarray(np.clip(np.round(clipped * 32768.0), -32768, 32767).astype(np.int16))
    codes = np.clip(np.round(clipped.astype(np.float64) * 8388608.0), -8388608, 8388607).astype(np.int32)
    return np.ascontiguousarray(codes << 8)  # 24-bit samples in the top bits of s32p


def write_stems_mp4(path: str | os.PathLike, tracks: Sequence[tuple[str, np.ndarray]], *, codec: str = "aac",
                    bitrate: int = 256, bit_depth: int = 24, metadata: dict | None = None) -> Path:
    """Write ``tracks`` (``(title, (2, samples) float audio at 44.1 kHz)``, the master first)
    as one MP4 stream each, AAC (``bitrate`` kbit/s) or ALAC (16 or 24-bit), add the NI
    ``stem`` box, and move the file into place atomically. Returns the path."""
    av = require_av()
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with av.open(str(tmp), "w", format="ipod") as container:  # the M4A brand, as NI's files carry
            streams = []
            for title, _ in tracks:
                stream = container.add_stream(codec, rate=SR, layout="stereo")
                if codec == "aac":
                    stream.bit_rate = int(bitrate) * 1000
                else:
                    stream.format = "s16p" if bit_depth == 16 else "s32p"
                stream.metadata["title"] = title
                stream.metadata["handler_name"] = title
                streams.append(stream)
            length = max((audio.shape[1] for _, audio in tracks), default=0)
            for start in range(0, length, BLOCK):
                for stream, (_, audio) in zip(streams, tracks):
                    fmt = stream.codec_context.format.name
                    frame = av.AudioFrame.from_ndarray(_frames(audio, start, fmt, bit_depth), format=fmt,
                                                       layout="stereo")
                    frame.sample_rate, frame.pts = SR, start
                    container.mux(stream.encode(frame))
            for stream in streams:
                container.mux(stream.encode(None))
        add_stem_box(tmp, metadata or stem_metadata())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
