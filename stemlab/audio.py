"""Decode audio files to float32 ``(channels, samples)`` arrays, at full length, and cache them.

Files are decoded by libsndfile (soundfile) in a single read call. MP3s need care (all measured
here, see :mod:`stemlab.mp3`):

* **Length** comes from counting the MP3's frames (a miniaudio scan), never from libsndfile's
  estimate: libsndfile silently truncates a VBR MP3 without a Xing/Info frame (it guesses the
  length from the first frame's bitrate), and pads a tag-less CBR file with zeros. A file that
  libsndfile under-counts is decoded by miniaudio instead, at full length.
* **Start**: with a LAME gapless tag the decoders trim the encoder and decoder delay; without one
  the audio starts 1,105 samples late in every decoder, and stemlab trims those samples
  (:data:`stemlab.mp3.STANDARD_DELAY`). :attr:`AudioInfo.gapless` says which was done.
* An MP3 read in several calls through libsndfile comes back with wrong samples around some
  block boundaries (up to 0.33 off with 65536-frame blocks), so MP3s are read in one call.

>>> import numpy as np, soundfile as sf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> sf.write(path, np.zeros((4410, 2), np.float32), 44100)
>>> audio, sr = decode(path)
>>> audio.shape, audio.dtype, sr
((2, 4410), dtype('float32'), 44100)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from . import mp3
from .errors import DecodeError, UsageError
from .files import atomic_file, read_derived

__all__ = ["AudioInfo", "probe", "decode", "load_audio", "decode_cached", "Scratch", "release_pages", "MP3_FRAME"]

MP3_FRAME = mp3.FRAME
BLOCK = 1 << 16   # frames decoded per block


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: sample rate, channels, frames (its true length, after ``skip``), format.

    ``decoder`` is ``"libsndfile"``, or ``"miniaudio"`` for MP3s libsndfile would truncate.
    ``skip`` samples are dropped from the start of what the decoder returns (an MP3's delay when
    it carries no gapless tag), and ``gapless`` says how an MP3's delay was handled: ``"tag"``
    (the decoder trimmed it, as the file's LAME tag says), ``"standard-delay"`` (stemlab trimmed
    1,105 samples) or ``""`` (not an MP3). ``truncated``: the file's header frame claims more audio
    than the file holds (a download cut short); ``frames`` is then what it really holds.
    """

    sr: int
    channels: int
    frames: int
    format: str
    decoder: str = "libsndfile"
    skip: int = 0
    gapless: str = ""
    truncated: bool = False  # the file ends before the length its own header claims

    @property
    def duration(self) -> float:
        return self.frames / self.sr

    def describe(self) -> dict:
        """The facts a manifest or report records about how the file was decoded."""
        facts = {"sr": self.sr, "channels": self.channels, "frames": self.frames, "format": self.format,
                 "decoder": self.decoder}
        facts = {**facts, "gapless": self.gapless, "skip": self.skip} if self.gapless else facts
        return {**facts, "truncated": True} if self.truncated else facts


_QUIET = threading.Lock()
_QUIET_USERS = [0, -1]  # how many callers want stderr quiet, and the saved descriptor


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C library's stderr while libsndfile reads an MP3: its mpg123 prints "Note:
    Trying to resync..." and Xing warnings, which would break stemlab's one-line errors. Counted,
    so that threads decoding at once share one redirection."""
    with _QUIET:
        if _QUIET_USERS[0] == 0:
            sys.stderr.flush()
            _QUIET_USERS[1] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _QUIET_USERS[0] += 1
    try:
        yield
    finally:
        with _QUIET:
            _QUIET_USERS[0] -= 1
            if _QUIET_USERS[0] == 0:
                os.dup2(_QUIET_USERS[1], 2)
                os.close(_QUIET_USERS[1])


def _is_mp3(path: Path) -> bool:
    if path.suffix.lower() == ".mp3":
        return True
    with open(path, "rb") as f:
        head = f.read(3)
    return head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header (an MP3's frames are scanned, not decoded) without decoding it.

    Raises :class:`DecodeError` for a file no decoder can read.
    """
    path = Path(path)
    try:
        with _quiet_stderr():
            header = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        if not _is_mp3(path):
            raise DecodeError(f"cannot read {path.name}: {exc}; stemlab reads wav, flac, ogg and mp3") from None
        header = None
    if not _is_mp3(path):
        return AudioInfo(int(header.samplerate), int(header.channels), int(header.frames), header.format)
    import miniaudio

    try:
        scan = miniaudio.mp3_get_file_info(str(path))
    except miniaudio.DecodeError as exc:
        raise DecodeError(f"cannot decode {path.name}: not a readable MP3 ({exc})") from None
    if scan.num_frames <= 0 or scan.sample_rate <= 0:
        raise DecodeError(f"cannot decode {path.name}: it holds no MP3 audio frames")
    tag = mp3.gapless(path)
    tagged = tag.tag == "lame"
    skip = 0 if tagged else min(mp3.STANDARD_DELAY, int(scan.num_frames) - 1)
    frames = int(scan.num_frames) - skip
    truncated = mp3.cut_short(path, tag)
    if truncated:  # decoders believe the header frame: count what really decodes
        frames = int(miniaudio.decode_file(str(path), output_format=miniaudio.SampleFormat.SIGNED16,
                                           nchannels=scan.nchannels, sample_rate=scan.sample_rate).num_frames) - skip
    trusted = header is not None and header.frames >= scan.num_frames - 2 * MP3_FRAME
    return AudioInfo(int(scan.sample_rate), int(scan.nchannels), frames, "MP3",
                     "libsndfile" if trusted else "miniaudio", skip, "tag" if tagged else "standard-delay", truncated)


def _read_into(path: Path, info: AudioInfo, frames: np.ndarray) -> None:
    """Fill ``frames`` (``(info.frames, channels)``, C-contiguous float32) with the whole file,
    ``info.skip`` samples dropped from its start."""
    if info.skip:  # decode the whole stream into a buffer, keep what follows the delay
        whole = np.empty((info.frames + info.skip, info.channels), dtype=np.float32)
        _read_into(path, replace(info, frames=info.frames + info.skip, skip=0), whole)
        frames[:] = whole[info.skip:]
        return
    if info.decoder == "miniaudio":
        import miniaudio

        done = 0
        for chunk in miniaudio.stream_file(str(path), output_format=miniaudio.SampleFormat.FLOAT32,
                                           nchannels=info.channels, sample_rate=info.sr, frames_to_read=BLOCK):
            block = np.frombuffer(chunk, dtype=np.float32).reshape(-1, info.channels)[: info.frames - done]
            frames[done: done + len(block)] = block
            done += len(block)
    else:
        with _quiet_stderr(), sf.SoundFile(str(path)) as snd:  # one read call: see the module docstring
            done = len(snd.read(frames=info.frames, out=frames))
    frames[done:] = 0.0  # a stream shorter than its header promised


def _decode_native(path: Path, info: AudioInfo) -> np.ndarray:
    out = np.empty((info.channels, info.frames), dtype=np.float32, order="F")
    _read_into(path, info, out.T)
    return out


def _convert(audio: np.ndarray, native_sr: int, *, sr: int | None, mono: bool) -> np.ndarray:
    if mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True, dtype=np.float32)
    if sr is not None and sr != native_sr:
        import librosa

        audio = librosa.resample(np.ascontiguousarray(audio), orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    return np.asarray(audio, dtype=np.float32)


def decode(path: str | os.PathLike, *, sr: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode a file to a float32 ``(channels, samples)`` array at ``sr`` (native by default).

    Parameters
    ----------
    path : path-like
        wav, flac, ogg or mp3.
    sr : int, optional
        Resample to this rate (soxr high quality). Default: the file's own rate.
    mono : bool
        Average the channels into one.

    Returns
    -------
    audio : np.ndarray
        float32, shape ``(channels, samples)``.
    sr : int
        The rate of ``audio``.
    """
    if sr is not None and (not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise UsageError(f"sr must be a positive integer number of Hz, not {sr!r}")
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no audio file at {path}")
    info = probe(path)
    return _convert(_decode_native(path, info), info.sr, sr=sr, mono=mono), int(sr or info.sr)


load_audio = decode


def _write_npy(path: Path, info: AudioInfo, f: BinaryIO, scratch: np.ndarray | None) -> None:
    """Decode into an open ``.npy`` file: Fortran order, so its bytes are the decoder's frames.

    ``scratch``, a float32 buffer reused across files, spares a fresh allocation (and its page
    faults) per file.
    """
    size = info.frames * info.channels
    frames = (scratch[:size] if scratch is not None and scratch.size >= size
              else np.empty(size, dtype=np.float32)).reshape(info.frames, info.channels)
    _read_into(path, info, frames)
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": True,
                                             "shape": (info.channels, info.frames)})
    f.write(memoryview(frames))


def decode_cached(path: str | os.PathLike, cache_file: str | os.PathLike, *, sr: int | None = None,
                  mono: bool = False, scratch: "Scratch | None" = None) -> np.ndarray:
    """Like :func:`decode`, but keep the result in ``cache_file`` (.npy) and return it memory-mapped.

    The first call decodes and writes the .npy file; later calls only map it. The file appears
    under its final name only once complete. Pass a :class:`Scratch` when decoding many files.
    """
    cache_file = Path(cache_file)
    cached = read_derived(cache_file, _mapped)
    if cached is not None:
        return cached
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no audio file at {path}")
    info = probe(path)
    with atomic_file(cache_file, durable=False) as f:
        if (sr is None or sr == info.sr) and not (mono and info.channels > 1):
            _write_npy(path, info, f, scratch.get(info.frames * info.channels) if scratch else None)
        else:
            np.save(f, _convert(_decode_native(path, info), info.sr, sr=sr, mono=mono))
    return _mapped(cache_file)


def _mapped(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


class Scratch:
    """One reusable float32 decode buffer per thread (for decoding many files in a thread pool).

    >>> scratch = Scratch()
    >>> scratch.get(10).size >= 10
    True
    """

    def __init__(self):
        import threading

        self._local = threading.local()

    def get(self, size: int) -> np.ndarray:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer.size < size:
            buffer = self._local.buffer = np.empty(size, dtype=np.float32)
        return buffer


def release_pages(array: np.ndarray) -> None:
    """Let the OS take back the memory pages of a memory-mapped array (e.g. a decoded stem).

    The file stays in the page cache, so the next access costs a page-table fault, not a read;
    but the pages stop counting in this process's memory. A no-op for ordinary arrays.
    """
    import mmap

    base = array
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            base._mmap.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # closed, or the platform refuses: memory is only a concern
            pass
