"""Decode audio files to float32 ``(channels, samples)`` arrays, at full length, and cache them.

MP3s are decoded by libsndfile (through soundfile). libsndfile silently truncates a VBR MP3
that has no Xing/Info frame (it guesses the length from the first frame's bitrate), so every MP3's
length is checked against a frame scan (miniaudio) and such files are decoded by miniaudio
instead, at full length.

>>> import numpy as np, soundfile as sf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> sf.write(path, np.zeros((4410, 2), np.float32), 44100)
>>> audio, sr = decode(path)
>>> audio.shape, audio.dtype, sr
((2, 4410), dtype('float32'), 44100)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import DecodeError, UsageError

__all__ = ["AudioInfo", "probe", "decode", "load_audio", "decode_cached", "MP3_FRAME"]

MP3_FRAME = 1152  # samples per MPEG-1 Layer III frame


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: sample rate, channels, frames, and whether libsndfile under-counts it."""

    sr: int
    channels: int
    frames: int
    format: str
    truncated_by_libsndfile: bool = False

    @property
    def duration(self) -> float:
        return self.frames / self.sr


def _is_mp3(path: Path, info: sf._SoundFileInfo | None) -> bool:
    return (info is not None and info.format == "MP3") or path.suffix.lower() == ".mp3"


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header (and, for MP3, scan its frames) without decoding it.

    Raises :class:`DecodeError` for a file no decoder can read.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        if path.suffix.lower() != ".mp3":
            raise DecodeError(f"cannot read {path.name}: {exc}; stemlab reads wav, flac, ogg and mp3") from None
        info = None
    if not _is_mp3(path, info):
        return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), info.format)
    import miniaudio

    try:
        scan = miniaudio.mp3_get_file_info(str(path))
    except miniaudio.DecodeError as exc:
        if info is None:
            raise DecodeError(f"cannot decode {path.name}: not a readable MP3 ({exc})") from None
        return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), "MP3")
    sf_frames = int(info.frames) if info is not None else 0
    truncated = sf_frames < scan.num_frames - 2 * MP3_FRAME
    frames = scan.num_frames if truncated else sf_frames
    return AudioInfo(int(scan.sample_rate), int(scan.nchannels), frames, "MP3", truncated_by_libsndfile=truncated)


def _decode_native(path: Path, info: AudioInfo, out: np.ndarray | None = None) -> np.ndarray:
    """Decode at the native rate into ``out`` (shape ``(channels, frames)``, Fortran order) or a new array."""
    if out is None:
        out = np.empty((info.channels, info.frames), dtype=np.float32, order="F")
    if info.truncated_by_libsndfile:
        import miniaudio

        decoded = miniaudio.decode_file(str(path), output_format=miniaudio.SampleFormat.FLOAT32)
        samples = np.frombuffer(decoded.samples, dtype=np.float32).reshape(-1, decoded.nchannels)
        n = min(len(samples), info.frames)
        out.T[:n] = samples[:n]
        out.T[n:] = 0.0
        return out
    with sf.SoundFile(str(path)) as f:
        n = f.read(out=out.T, dtype="float32")
        n = len(n) if hasattr(n, "__len__") else int(n)
    if n < info.frames:  # the header promised more than the stream held
        out.T[n:] = 0.0
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
    audio = _decode_native(path, info)
    return _convert(audio, info.sr, sr=sr, mono=mono), int(sr or info.sr)


load_audio = decode


def decode_cached(path: str | os.PathLike, cache_file: str | os.PathLike, *, sr: int | None = None,
                  mono: bool = False) -> np.ndarray:
    """Like :func:`decode`, but keep the result in ``cache_file`` (.npy) and return it memory-mapped.

    The first call decodes straight into the .npy file (no extra copy); later calls only map it.
    The file appears under its final name only once complete.
    """
    cache_file = Path(cache_file)
    try:
        return np.load(cache_file, mmap_mode="r")
    except FileNotFoundError:
        pass
    except (ValueError, OSError):
        cache_file.unlink(missing_ok=True)  # a damaged derived file: rebuild it
    path = Path(path)
    info = probe(path)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=f".{cache_file.stem}.", suffix=".npy")
    os.close(fd)
    try:
        if (sr is None or sr == info.sr) and not (mono and info.channels > 1):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                            shape=(info.channels, info.frames), fortran_order=True)
            _decode_native(path, info, out=out)
            del out  # unmapped; the kernel writes the pages back (derived data needs no fsync)
        else:
            np.save(tmp, _convert(_decode_native(path, info), info.sr, sr=sr, mono=mono))
        os.replace(tmp, cache_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return np.load(cache_file, mmap_mode="r")
