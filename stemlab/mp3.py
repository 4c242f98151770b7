"""MPEG Layer III bitstream facts: frame headers, the Xing/Info frame, and gapless (LAME) tags.

An MP3 encoder delays the audio (LAME: 576 samples) and a decoder adds its own delay (529
samples, the same in libsndfile/mpg123, miniaudio and FFmpeg), so a decoded MP3 starts
**1,105 samples late** and ends with padding. LAME writes the true delay and padding into a tag
in the first frame (a Xing or Info frame with a LAME extension); decoders that read it trim both,
and the audio comes back at its exact length, at lag 0. Without the tag nothing says where the
audio starts: stemlab then trims the standard 1,105 samples (:data:`STANDARD_DELAY`), measured
here to line a tag-less file up with its tagged twin sample for sample.

>>> first_frame(b"not an mp3") is None
True
>>> gapless(b"not an mp3")
Gapless(tag=None, delay=None, padding=None, frames=None, size=None, start=0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["FRAME", "STANDARD_DELAY", "Frame", "Gapless", "id3v2_length", "first_frame", "gapless", "count_frames", "cut_short"]

FRAME = 1152           # samples per MPEG-1 Layer III frame
ENCODER_DELAY = 576    # LAME's encoder delay
DECODER_DELAY = 529    # the decoders' (mpg123, libsndfile, miniaudio, FFmpeg)
STANDARD_DELAY = ENCODER_DELAY + DECODER_DELAY

_BITRATES = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
             2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Frame:
    """The first audio frame of a file: where it starts, its length, and what it holds."""

    start: int           # byte offset (after any ID3v2 tag)
    length: int          # bytes
    tag: str | None      # "Xing", "Info" or "VBRI" when the frame is such a header frame, else None
    tag_offset: int      # where a Xing/Info tag starts in the frame (after the side info)


@dataclass(frozen=True)
class Gapless:
    """What an MP3 says about itself: ``tag`` is ``"lame"`` (a LAME extension with delay and
    padding, which decoders honour), ``"xing"`` (a header frame without one) or None (no header
    frame at all); ``delay`` and ``padding`` in samples, from the LAME extension; ``frames``, the
    number of audio frames the header frame claims (decoders believe it: a file cut short still
    reads as full length, see :func:`count_frames`)."""

    tag: str | None
    delay: int | None
    padding: int | None
    frames: int | None = None
    size: int | None = None  # bytes of the MPEG stream the header frame claims (from its first byte)
    start: int = 0           # where the MPEG stream starts in the file (after any ID3v2 tag)


def id3v2_length(data: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (header, body and optional footer), else 0."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _frame_header(header: bytes) -> tuple[int, int] | None:
    """``(frame length, offset of a Xing/Info tag)`` of an MPEG Layer III frame header, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    kbps = _BITRATES[1 if mpeg1 else 2][bitrate_index]
    rate = _RATES[version][rate_index]
    length = (144 if mpeg1 else 72) * kbps * 1000 // rate + ((header[2] >> 1) & 1)
    mono = header[3] >> 6 == 3
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    return length, 4 + side_info


def first_frame(data: bytes) -> Frame | None:
    """The first frame of MP3 ``data`` (the file's first few kilobytes suffice), or None."""
    start = id3v2_length(data)
    parsed = _frame_header(data[start:start + 4])
    if parsed is None:
        return None
    length, offset = parsed
    body = data[start:start + length]
    for at in (offset, offset + 2):
        if body[at:at + 4] in (b"Xing", b"Info"):
            return Frame(start, length, body[at:at + 4].decode(), at)
    if body[36:40] == b"VBRI":
        return Frame(start, length, "VBRI", 36)
    return Frame(start, length, None, offset)


def gapless(source: bytes | str | os.PathLike) -> Gapless:
    """The gapless facts of an MP3 (its bytes, or a path; only the first frames are read)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(source, "rb") as f:
            head = f.read(10)
            data = head + f.read(id3v2_length(head) + 8192)
    frame = first_frame(data)
    if frame is None or frame.tag not in ("Xing", "Info"):
        return Gapless("xing" if frame is not None and frame.tag else None, None, None)
    body = data[frame.start:frame.start + frame.length]
    at = frame.tag_offset + 4
    flags = int.from_bytes(body[at:at + 4], "big")
    fields = iter(int.from_bytes(body[at + 4 + 4 * k:at + 8 + 4 * k], "big") for k in range(2))
    frames = next(fields) if flags & 1 else None
    size = next(fields) if flags & 2 else None
    at += 4 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    lame = body[at:at + 36]
    if len(lame) < 24 or not lame[:4].isalpha():  # "LAME", "Lavc", "Lavf", "GOGO"... : an encoder string
        return Gapless("xing", None, None, frames, size, frame.start)
    packed = int.from_bytes(lame[21:24], "big")
    return Gapless("lame", packed >> 12, packed & 0xFFF, frames, size, frame.start)


def cut_short(path: str | os.PathLike, tag: Gapless) -> bool:
    """Whether an MP3 holds less than its header frame claims: fewer stream bytes than its byte
    count (one frame of slack), else, when it states none, fewer frames (:func:`count_frames`)."""
    if tag.size is not None:
        return os.path.getsize(path) - tag.start < tag.size - 2 * 1441  # 1441: the largest MPEG-1 frame
    if tag.frames is not None:
        with open(path, "rb") as f:
            return count_frames(f.read()) < tag.frames - 1
    return False


def count_frames(data: bytes) -> int:
    """The audio frames really present in MP3 ``data``: headers walked from the first audio frame
    (after any ID3v2 tag and Xing/Info frame) until the bytes end or lose sync. A header frame's
    own count may claim more: the file was cut short.

    >>> count_frames(b"not an mp3")
    0
    """
    frame = first_frame(data)
    if frame is None:
        return 0
    at, count = frame.start + (frame.length if frame.tag else 0), 0
    while at + 4 <= len(data):
        parsed = _frame_header(data[at:at + 4])
        if parsed is None or at + parsed[0] > len(data):
            break
        at += parsed[0]
        count += 1
    return count
