"""Real material (../shared/data, read in place) and the variants tests make of it in tmp_path.

The MUSDB18 7-second sample "Music Delta - 80s Rock": true stems and the dataset's own mixture,
44.1 kHz stereo 16-bit FLAC, 300,032 samples. Each variant is a folder ``<stem>.<ext>`` plus
``mixture.<ext>``, written the way a user's material arrives: other formats, other rates, MP3s
with and without gapless tags, and the faults check must explain.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
ROCK = DATA / "musdb18-sample-80s-rock"
SEPARATION = DATA / "mir_eval-separation"
assert ROCK.is_dir() and SEPARATION.is_dir(), f"the real test material is missing: expected {DATA} beside the repository"
STEMS = ("vocals", "drums", "bass", "other")
SR = 44100
LENGTH = 300_032


def rock() -> dict[str, np.ndarray]:
    """The mixture and the four stems, float32 ``(channels, samples)``."""
    return {name: sf.read(ROCK / f"{name}.flac", dtype="float32", always_2d=True)[0].T
            for name in ("mixture", *STEMS)}


def _write(folder: Path, name: str, audio: np.ndarray, sr: int, kind: str) -> None:
    """One track as ``kind``: "wav24", "flac", "mp3" (tagged VBR), "mp3-tagless" (VBR, Xing frame
    stripped), "mp3-cbr-tagless" (ffmpeg's LAME, CBR, no Xing frame)."""
    from stemlab.encode import mp3_bytes
    from stemlab.sandbox.synth import strip_xing_frame

    audio = np.asarray(audio, dtype=np.float32)
    if kind == "wav24":
        sf.write(folder / f"{name}.wav", audio.T, sr, subtype="PCM_24")
    elif kind == "flac":
        sf.write(folder / f"{name}.flac", audio.T, sr, subtype="PCM_16")
    elif kind == "float":
        sf.write(folder / f"{name}.wav", audio.T, sr, subtype="FLOAT")
    elif kind == "mp3":
        (folder / f"{name}.mp3").write_bytes(mp3_bytes(audio, sr, quality=0.1))
    elif kind == "mp3-tagless":
        (folder / f"{name}.mp3").write_bytes(strip_xing_frame(mp3_bytes(audio, sr, quality=0.1)))
    elif kind == "mp3-cbr-tagless":
        wav = folder / f".{name}.wav"
        sf.write(wav, audio.T, sr, subtype="FLOAT")
        subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a",
                        "libmp3lame", "-b:a", "256k", "-write_xing", "0", str(folder / f"{name}.mp3")], check=True)
        wav.unlink()
    else:
        raise ValueError(kind)


def _resample(audio: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    return librosa.resample(audio, orig_sr=SR, target_sr=sr, res_type="soxr_hq").astype(np.float32)


def _delayed(audio: np.ndarray, samples: int) -> np.ndarray:
    """``audio`` moved ``samples`` later (earlier when negative), zeros coming in."""
    out = np.zeros_like(audio)
    if samples >= 0:
        out[:, samples:] = audio[:, : audio.shape[1] - samples]
    else:
        out[:, :samples] = audio[:, -samples:]
    return out


#: variant name -> what check must say: (ok, culprits, words in a problem)
VARIANTS = {
    "wav24": (True, (), None),
    "flac": (True, (), None),
    "mp3": (True, (), None),
    "mp3-tagless-vbr": (True, (), None),
    "mp3-tagless-cbr": (True, (), None),
    "48k": (True, (), None),
    "mono": (True, (), None),
    "frame-short": (True, (), None),
    "mixed-rate": (True, (), None),
    "delayed": (False, ("vocals",), "vocals is 1,105 samples (25.1 ms) late"),

    "inverted": (False, ("drums",), "drums is inverted"),
    "missing": (False, (), "a part seems to be missing"),
    "quieter": (False, (), "the stems are 6.0 dB quieter than the source"),
    "late-1s": (False, (), "the stems are 44,100 samples (1000.0 ms) late against the source"),
    "limited": (False, (), "the source looks limited or clipped after the stems were summed"),
    "clipped": (False, (), "the source looks limited or clipped after the stems were summed"),
}


def make_variant(name: str, root: Path) -> Path:
    """Write variant ``name`` of 80s Rock into ``root / name`` and return that folder."""
    tracks = rock()
    folder = root / name
    folder.mkdir(parents=True)
    kind, sr = "flac", SR
    if name == "wav24":
        kind = "wav24"
    elif name == "mp3":
        kind = "mp3"
    elif name == "48k":
        tracks, sr, kind = {n: _resample(a, 48000) for n, a in tracks.items()}, 48000, "wav24"
    elif name == "mono":
        tracks = {n: a.mean(axis=0, keepdims=True) for n, a in tracks.items()}
    elif name == "frame-short":
        tracks["bass"] = tracks["bass"][:, :-1152]
    elif name == "delayed":
        tracks["vocals"] = _delayed(tracks["vocals"], 1105)  # an MP3 delay left in one stem
    elif name == "inverted":
        tracks["drums"] = -tracks["drums"]
    elif name == "missing":
        del tracks["bass"]
    elif name == "quieter":
        tracks = {n: (a if n == "mixture" else 0.5 * a) for n, a in tracks.items()}
    elif name == "late-1s":
        tracks = {n: (a if n == "mixture" else _delayed(a, SR)) for n, a in tracks.items()}
    elif name in ("limited", "clipped"):  # the mix made from the stems, then limited or clipped
        total = sum(tracks[n] for n in STEMS)
        tracks["mixture"] = np.tanh(2.5 * total) / 2.5 if name == "limited" else np.clip(total, -0.4, 0.4)
    for track, audio in tracks.items():
        if name in ("mp3-tagless-vbr", "mp3-tagless-cbr"):
            _write(folder, track, audio, sr, "mp3" if track == "mixture" else
                   "mp3-tagless" if name == "mp3-tagless-vbr" else "mp3-cbr-tagless")
        elif name == "mixed-rate" and track == "vocals":
            _write(folder, track, _resample(audio, 48000), 48000, "wav24")
        else:
            _write(folder, track, audio, sr, kind)
    return folder
