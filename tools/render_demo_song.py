#!/usr/bin/env python3
"""Render stemlab's built-in demo song ("Paper Lanterns") and its true 12-stem split.

The whole song is written in code below: chord progression, melody, parts, mix settings and a
fixed random seed (used only for small timing/velocity humanisation). Each stem is rendered
on its own from General MIDI with real instrument samples (FluidR3_GM), panned with a
constant-power pan law, levelled like a mix, and stored as MP3 in ``stemlab/demo/data/``.
The mix is *defined* as the sum of the stored stems. Stems that are not played are silent
(exactly zero) and are not stored; ``song.json`` lists them.

Requirements (Debian, all offline-installable here)::

    apt-get install -y fluidsynth libfluidsynth3 fluid-soundfont-gm   # /usr/share/sounds/sf2/FluidR3_GM.sf2
    python3 -m venv /tmp/render-venv
    /tmp/render-venv/bin/pip install pretty_midi soundfile numpy scipy    # soundfile>=0.13 (libsndfile>=1.1 for MP3)

Run from the repository root::

    /tmp/render-venv/bin/python tools/render_demo_song.py

Options: ``--out DIR`` (default ``stemlab/demo/data``), ``--sf2 PATH`` (default FluidR3_GM),
``--keep DIR`` (also keep the per-layer MIDI files and float WAV renders there), ``--check``
(only decode and report the files already in ``--out``), ``--midi-only`` (only write ``song.mid``).

``song.mid`` is the song's score as rendered: one track per audible stem, named after the stem, its
layers merged (the lead's pitch bends kept). It is the truth that transcriptions are scored against;
it needs neither fluidsynth nor a soundfont, so ``--midi-only`` rewrites it anywhere.

Rendering uses the ``fluidsynth`` command-line program (fast file render, float output),
one run per layer. Re-running regenerates the same music; the MP3 bytes may differ slightly
across fluidsynth/LAME versions.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
from scipy.signal import lfilter

# ----------------------------------------------------------------------------------------------
# Global settings
# ----------------------------------------------------------------------------------------------
TITLE = "Paper Lanterns"
SEED = 20240521
BPM = 120
SPB = 60.0 / BPM               # seconds per beat
BEATS_PER_BAR = 4
KEY = "C major"
SR = 44100
N_BARS = 20
SONG_END_S = N_BARS * BEATS_PER_BAR * SPB      # 40.0 s of music
DURATION_S = 41.0                              # + 1 s for the last chord's release
FADE_OUT_S = 0.6                               # common fade at the very end (same on every stem)
FADE_IN_S = 0.002
DC_BLOCK_HZ = 5.0                              # one-pole DC blocker on every stem (a few GM samples carry DC)
SUM_PEAK_DBFS = -2.0                           # common scale: peak of the sum of all stems
MP3_BITRATE_MODE = "VARIABLE"
MP3_COMPRESSION_LEVEL = 0.6                    # VBR, ~80-150 kbps per stem; all files ~4 MB

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "stemlab" / "demo" / "data"
DEFAULT_SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONTS = {
    "FluidR3_GM.sf2": {"name": "FluidR3_GM", "licence": "MIT",
                       "source": "Debian package fluid-soundfont-gm (Frank Wen)"},
    "TimGM6mb.sf2": {"name": "TimGM6mb", "licence": "GPL-2.0",
                     "source": "shipped with pretty_midi (Tim Brechbill)"},
}

# fluidsynth settings: reverb on (each layer gets its own reverb return, so the stems sum to
# the mix), chorus off, float output.
FLUID_GAIN = 0.5
FLUID_OPTS = {
    "synth.reverb.room-size": 0.55,
    "synth.reverb.damp": 0.35,
    "synth.reverb.width": 1.0,
    "synth.reverb.level": 0.7,
    "synth.polyphony": 256,
}

TWELVE_STEMS = ("vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion",
                "strings", "synth", "fx", "brass", "woodwinds")

# ----------------------------------------------------------------------------------------------
# Harmony and form
# ----------------------------------------------------------------------------------------------
SECTIONS = [("intro", 0, 2), ("verse", 2, 10), ("chorus", 10, 18), ("outro", 18, 20)]
PROG = ["F", "G",                                        # intro
        "C", "Am", "F", "G", "C", "Am", "F", "G",        # verse
        "F", "G", "Em", "Am", "F", "G", "C", "C",        # chorus
        "F", "C"]                                        # outro (plagal "amen" ending)
assert len(PROG) == N_BARS
CHORDS = {  # root pitch class, chord pitch classes
    "C": (0, (0, 4, 7)), "Am": (9, (9, 0, 4)), "F": (5, (5, 9, 0)),
    "G": (7, (7, 11, 2)), "Em": (4, (4, 7, 11)),
}
BASS_ROOT = {"C": 36, "Am": 33, "F": 29, "G": 31, "Em": 28}    # C2 A1 F1 G1 E1
GUITAR_SHAPES = {  # open-position voicings, low string to high string
    "C": [48, 52, 55, 60, 64],
    "Am": [45, 52, 57, 60, 64],
    "F": [41, 48, 53, 57, 60, 65],
    "G": [43, 47, 50, 55, 59, 67],
    "Em": [40, 47, 52, 55, 59, 64],
}


def section_of(bar: int) -> str:
    for name, a, b in SECTIONS:
        if a <= bar < b:
            return name
    raise ValueError(bar)


def T(bar: int, beat: float = 0.0) -> float:
    """Seconds at a bar (0-based) and beat (0-based, may be fractional)."""
    return (bar * BEATS_PER_BAR + beat) * SPB


def voicing(chord: str, low: int, high: int) -> list[int]:
    """All tones of the chord in [low, high)."""
    pcs = CHORDS[chord][1]
    return [p for p in range(low, high) if p % 12 in pcs]


def nn(name: str) -> int:
    return pretty_midi.note_name_to_number(name)


# Lead melody: bar -> [(beat, note, beats)]
LEAD = {
    2: [(0.5, "E4", .5), (1, "E4", .5), (1.5, "D4", .5), (2, "E4", 1), (3, "G4", 1)],
    3: [(0, "A4", 1.5), (1.5, "G4", .5), (2, "E4", 1.5)],
    4: [(0.5, "F4", .5), (1, "F4", .5), (1.5, "E4", .5), (2, "F4", 1), (3, "A4", 1)],
    5: [(0, "G4", 2.5)],
    6: [(0.5, "E4", .5), (1, "E4", .5), (1.5, "D4", .5), (2, "E4", 1), (3, "G4", 1)],
    7: [(0, "C5", 1.5), (1.5, "B4", .5), (2, "A4", 1.5)],
    8: [(0.5, "A4", .5), (1, "G4", .5), (1.5, "F4", .5), (2, "E4", 1), (3, "D4", 1)],
    9: [(0, "D4", 2), (3, "G4", .5), (3.5, "A4", .5)],
    10: [(0, "C5", 1.5), (1.5, "A4", .5), (2, "C5", 1), (3, "D5", 1)],
    11: [(0, "D5", 1), (1, "B4", 1), (2, "G4", 1.5)],
    12: [(0, "E5", 1.5), (1.5, "D5", .5), (2, "B4", 1), (3, "G4", .5)],
    13: [(0, "A4", 2.5), (3, "G4", .5), (3.5, "A4", .5)],
    14: [(0, "C5", 1.5), (1.5, "A4", .5), (2, "C5", 1), (3, "D5", 1)],
    15: [(0, "D5", 1.5), (1.5, "E5", .5), (2, "D5", 1), (3, "B4", 1)],
    16: [(0, "C5", 3)],
    18: [(0, "A4", 1), (1, "C5", 1), (2, "A4", 1), (3, "G4", 1)],
    19: [(0, "E4", 3)],
}

# Backing vocals' answer in bar 17 (where the lead rests): (beat, high, low, beats)
BV_ANSWER = [(0, "G4", "E4", 1), (1, "A4", "F4", 1), (2, "G4", "E4", 2)]


# ----------------------------------------------------------------------------------------------
# Part builders. Each returns a pretty_midi.Instrument.
# ----------------------------------------------------------------------------------------------
class Humanizer:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def t(self, sd_ms: float) -> float:
        return float(np.clip(self.rng.normal(0.0, sd_ms / 1000.0), -2.5 * sd_ms / 1000, 2.5 * sd_ms / 1000))

    def v(self, vel: float, spread: float = 4.0) -> int:
        return int(np.clip(round(vel + self.rng.uniform(-spread, spread)), 1, 127))


def new_instrument(program: int, name: str, is_drum: bool = False, reverb: int = 40,
                   volume: int = 100) -> pretty_midi.Instrument:
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum, name=name)
    for cc, val in ((7, volume), (10, 64), (11, 127), (91, reverb), (93, 0)):
        inst.control_changes.append(pretty_midi.ControlChange(cc, val, 0.0))
    return inst


def add(inst, pitch: int, start: float, end: float, vel: int):
    start = max(0.0, start)
    inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=start, end=max(end, start + 0.02)))


def build_lead(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(pretty_midi.instrument_name_to_program("Voice Oohs"), "lead voice", reverb=50)
    bends = []
    for bar, notes in sorted(LEAD.items()):
        for i, (beat, name, beats) in enumerate(notes):
            start = T(bar, beat) + h.t(6)
            end = T(bar, beat + beats) - 0.03
            accent = 8 if beat in (0, 2) else 0
            chorus = 6 if section_of(bar) == "chorus" else 0
            vel = h.v(88 + accent + chorus)
            add(inst, nn(name), start, end, vel)
            # scoop into phrase-starting and long notes, then delayed vibrato on long notes
            dur = end - start
            curve_t, curve_c = [start], [-35.0 if (beats >= 1 or i == 0) else 0.0]
            tt = start + 0.01
            while tt < end - 0.01:
                rel = tt - start
                scoop = curve_c[0] * max(0.0, 1.0 - rel / 0.09)
                vib = 0.0
                if dur > 0.6 and rel > 0.25:
                    depth = 28.0 * min(1.0, (rel - 0.25) / 0.35)
                    vib = depth * math.sin(2 * math.pi * 5.4 * (rel - 0.25))
                curve_t.append(tt)
                curve_c.append(scoop + vib)
                tt += 0.015
            for ct, cents in zip(curve_t, curve_c):
                bends.append(pretty_midi.PitchBend(int(round(cents / 200.0 * 8191)), ct))
            bends.append(pretty_midi.PitchBend(0, end))
    # drop redundant consecutive zero bends
    out, last = [], None
    for b in sorted(bends, key=lambda b: b.time):
        if b.pitch == 0 and last == 0:
            continue
        out.append(b)
        last = b.pitch
    inst.pitch_bends = out
    return inst


def build_backing_vocals(h: Humanizer) -> tuple[pretty_midi.Instrument, pretty_midi.Instrument]:
    prog = pretty_midi.instrument_name_to_program("Choir Aahs")
    high = new_instrument(prog, "backing high", reverb=75)
    low = new_instrument(prog, "backing low", reverb=75)
    for bar in range(10, 20):
        sec = section_of(bar)
        if bar == 17:
            for beat, hi, lo, beats in BV_ANSWER:
                s, e = T(bar, beat), T(bar, beat + beats) - 0.05
                add(high, nn(hi), s + h.t(8), e, h.v(74))
                add(low, nn(lo), s + h.t(8), e, h.v(70))
            continue
        tones = voicing(PROG[bar], 60, 72)       # 3 tones; the top two are sung
        hi, mid = tones[-1], tones[-2]
        if sec == "chorus":
            # "aah" on the downbeat, re-sung on beat 3 ("aah - aah")
            for beat, beats in ((0, 2.4), (2.5, 1.4)):
                s, e = T(bar, beat), T(bar, beat + beats)
                add(high, hi, s + h.t(8), e, h.v(68 if beat else 74))
                add(low, mid, s + h.t(8), e, h.v(64 if beat else 70))
        else:  # outro: long held chord
            beats = 3.8 if bar == 18 else 6.0
            s, e = T(bar, 0), T(bar, beats)
            add(high, hi, s + h.t(8), e, h.v(72))
            add(low, mid, s + h.t(8), e, h.v(68))
    return high, low


def build_drums(h: Humanizer) -> pretty_midi.Instrument:
    KICK, SNARE, HAT, PEDAL, OPEN, CRASH, RIDE = 36, 38, 42, 44, 46, 49, 51
    TOM_HI, TOM_MID, TOM_LO, FLOOR = 50, 47, 45, 43
    inst = new_instrument(0, "drum kit", is_drum=True, reverb=22)

    def hit(p, bar, beat, vel, sd=3.0, length=0.12):
        s = T(bar, beat) + h.t(sd)
        add(inst, p, s, s + length, h.v(vel, 5))

    for bar in range(N_BARS):
        sec = section_of(bar)
        if sec == "intro":
            for k in range(8):
                hit(HAT, bar, k / 2, 62 if k % 2 == 0 else 40)
            hit(KICK, bar, 0, 92)
            hit(KICK, bar, 2, 84)
            if bar == 1:
                hit(SNARE, bar, 1, 80)
                for i, beat in enumerate((3, 3.25, 3.5, 3.75)):
                    hit(SNARE, bar, beat, 70 + 10 * i)
        elif sec == "verse":
            if bar == 2:
                hit(CRASH, bar, 0, 96, length=1.0)
            fill = bar == 9
            for k in range(8 if not fill else 4):
                if bar == 5 and k == 7:
                    hit(OPEN, bar, 3.5, 68)
                else:
                    hit(HAT, bar, k / 2, 78 if k % 2 == 0 else 50)
            for beat in (0, 2, 2.5):
                hit(KICK, bar, beat, 100 if beat == 0 else 86)
            hit(SNARE, bar, 1, 104)
            if not fill:
                hit(SNARE, bar, 3, 104)
                if bar % 2 == 1:
                    hit(SNARE, bar, 3.75, 30)
            else:
                for beat, p, v in ((2, SNARE, 92), (2.5, SNARE, 96), (3, TOM_HI, 98), (3.25, TOM_MID, 100),
                                   (3.5, TOM_LO, 104), (3.75, FLOOR, 108)):
                    hit(p, bar, beat, v)
        elif sec == "chorus":
            if bar in (10, 14):
                hit(CRASH, bar, 0, 108, length=1.5)
            fill = bar == 17
            for k in range(8 if not fill else 4):
                if bar in (10, 14) and k == 0:
                    continue
                hit(RIDE, bar, k / 2, 84 if k % 2 == 0 else 60)
            for beat in (1, 3):
                hit(PEDAL, bar, beat, 50)
            for beat in (0, 1.5, 2, 2.5):
                hit(KICK, bar, beat, 104 if beat in (0, 2) else 90)
            hit(SNARE, bar, 1, 112)
            if not fill:
                hit(SNARE, bar, 3, 112)
                hit(SNARE, bar, 1.75, 28)
            else:
                for beat, p, v in ((2, SNARE, 96), (2.25, SNARE, 80), (2.5, SNARE, 100), (2.75, SNARE, 84),
                                   (3, TOM_HI, 104), (3.25, TOM_HI, 96), (3.5, TOM_LO, 106), (3.75, FLOOR, 112)):
                    hit(p, bar, beat, v)
        else:  # outro: half-time, then one last hit
            if bar == 18:
                hit(CRASH, bar, 0, 110, length=2.0)
                hit(KICK, bar, 0, 104)
                hit(SNARE, bar, 2, 100)
                for beat in (1, 2, 3):
                    hit(RIDE, bar, beat, 70)
                hit(KICK, bar, 3.5, 84)
            else:
                hit(CRASH, bar, 0, 112, length=3.0)
                hit(KICK, bar, 0, 108)
    return inst


def build_percussion(h: Humanizer) -> tuple[pretty_midi.Instrument, pretty_midi.Instrument]:
    SHAKER, TAMB = 70, 54  # GM "Maracas", "Tambourine"
    shaker = new_instrument(0, "shaker", is_drum=True, reverb=30)
    tamb = new_instrument(0, "tambourine", is_drum=True, reverb=35)
    for bar in range(2, 18):
        for k in range(16):
            vel = (72, 38, 56, 42)[k % 4] + (6 if section_of(bar) == "chorus" else 0)
            s = T(bar, k / 4) + h.t(4)
            add(shaker, SHAKER, s, s + 0.08, h.v(vel, 6))
        if section_of(bar) == "chorus":
            for beat in (1, 3):
                s = T(bar, beat) + h.t(4)
                add(tamb, TAMB, s, s + 0.2, h.v(92, 6))
    for bar in (18, 19):
        s = T(bar, 0) + h.t(3)
        add(tamb, TAMB, s, s + 0.3, h.v(96, 4))
    return shaker, tamb


def build_bass(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(pretty_midi.instrument_name_to_program("Electric Bass (finger)"), "bass", reverb=0)
    for bar in range(N_BARS):
        r = BASS_ROOT[PROG[bar]]
        sec = section_of(bar)
        if sec == "intro":
            pat = [(0, r, 3.6, 88)] if bar == 0 else [(0, r, 1.9, 88), (2, r, 1.4, 82), (3.5, r + 12, .4, 76)]
        elif sec == "verse":
            pat = [(0, r, 1.4, 96), (1.5, r, .45, 80), (2, r, .9, 90), (3, r + 7, .45, 82), (3.5, r + 12, .4, 78)]
            if bar == 9:  # walk up into the chorus
                pat = [(0, r, 1.4, 96), (1.5, r, .45, 80), (2, r, .45, 88), (2.5, r + 2, .45, 86),
                       (3, r + 4, .45, 90), (3.5, r + 5, .45, 92)]
        elif sec == "chorus":
            pat = [(k / 2, r + (12 if k in (3, 7) else 0), .42, 100 if k % 2 == 0 else 84) for k in range(8)]
        else:
            pat = [(0, r, 3.8, 100)] if bar == 18 else [(0, r, 6.0, 104)]
        for beat, p, beats, vel in pat:
            s = T(bar, beat) + h.t(4)
            add(inst, p, s, T(bar, beat + beats), h.v(vel))
    return inst


def build_keyboard(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(0, "piano", reverb=45)  # Acoustic Grand Piano
    # sustain pedal per bar in intro/outro
    for bar in range(N_BARS):
        chord = PROG[bar]
        sec = section_of(bar)
        root3 = 48 + CHORDS[chord][0] if CHORDS[chord][0] < 8 else 36 + CHORDS[chord][0]
        if sec == "intro":
            tones = voicing(chord, 55, 77)
            seq = [tones[i] for i in (0, 1, 2, 3, 4, 3, 2, 1)]
            add(inst, root3, T(bar, 0) + h.t(5), T(bar, 3.9), h.v(72))
            for k, p in enumerate(seq):
                s = T(bar, k / 2) + h.t(6)
                add(inst, p, s, T(bar, k / 2 + 1.2), h.v(66 if k % 2 else 74))
        elif sec == "verse":
            rh = voicing(chord, 60, 72)
            add(inst, root3, T(bar, 0) + h.t(5), T(bar, 1.9), h.v(74))
            add(inst, root3 + 7 if root3 + 7 < 60 else root3 - 5, T(bar, 2) + h.t(5), T(bar, 3.9), h.v(66))
            for beat, beats, vel in ((0, 1.4, 76), (1.5, 1.3, 66), (3, .9, 70)):
                s = T(bar, beat) + h.t(6)
                for i, p in enumerate(rh):
                    add(inst, p, s + 0.004 * i, T(bar, beat + beats), h.v(vel))
        elif sec == "chorus":
            rh = voicing(chord, 67, 79)
            add(inst, root3 - 12, T(bar, 0) + h.t(5), T(bar, 3.9), h.v(80))
            add(inst, root3, T(bar, 0) + h.t(5), T(bar, 3.9), h.v(76))
            for beat in range(4):
                s = T(bar, beat) + h.t(6)
                for i, p in enumerate(rh):
                    add(inst, p, s + 0.004 * i, T(bar, beat + .85), h.v(78 if beat % 2 == 0 else 64))
        else:
            beats = 3.9 if bar == 18 else 6.0
            add(inst, root3 - 12, T(bar, 0) + h.t(5), T(bar, beats), h.v(80))
            add(inst, root3, T(bar, 0) + h.t(5), T(bar, beats), h.v(76))
            for i, p in enumerate(voicing(chord, 60, 77)):
                add(inst, p, T(bar, 0) + 0.012 * i, T(bar, beats), h.v(74))
            if bar == 19:  # a last high sparkle
                for k, p in enumerate((79, 84, 88)):
                    add(inst, p, T(bar, 1 + k * .5), T(bar, 6.0), h.v(58))
    return inst


def build_guitar(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(pretty_midi.instrument_name_to_program("Acoustic Guitar (steel)"), "acoustic guitar",
                          reverb=35)

    def strum(bar, beat, end_beat, down: bool, vel: float, end_bar=None):
        shape = GUITAR_SHAPES[PROG[bar]]
        strings = shape if down else list(reversed(shape[-4:]))
        s0 = T(bar, beat) + h.t(5)
        end = T(bar if end_bar is None else end_bar, end_beat)
        gap = 0.011 if down else 0.008
        for i, p in enumerate(strings):
            add(inst, p, s0 + i * gap, end, h.v(vel - (0 if down else 2 * i)))

    for bar in range(2, N_BARS):
        sec = section_of(bar)
        if sec == "verse":
            strum(bar, 0, 1.95, True, 74)
            strum(bar, 2, 2.45, True, 64)
            strum(bar, 2.5, 3.95, False, 56)
        elif sec == "chorus":
            # D . D U . U D U
            pat = [(0, True, 92), (1, True, 82), (1.5, False, 66), (2.5, False, 70), (3, True, 84), (3.5, False, 64)]
            for i, (beat, down, vel) in enumerate(pat):
                nxt = pat[i + 1][0] if i + 1 < len(pat) else 4.0
                strum(bar, beat, nxt - 0.04, down, vel)
        else:
            strum(bar, 0, 3.9 if bar == 18 else 6.0, True, 88)
    return inst


def build_strings(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(pretty_midi.instrument_name_to_program("String Ensemble 1"), "strings", reverb=65)
    for bar in range(6, N_BARS):
        sec = section_of(bar)
        if sec == "verse":
            tones, vel = voicing(PROG[bar], 48, 62), 62
        else:
            tones, vel = voicing(PROG[bar], 55, 74), 74
        end = T(bar, 6.0) if bar == 19 else T(bar, 4.0) - 0.02
        for p in tones:
            add(inst, p, T(bar, 0) + h.t(10), end, h.v(vel))
    return inst


def build_brass(h: Humanizer) -> pretty_midi.Instrument:
    inst = new_instrument(pretty_midi.instrument_name_to_program("Brass Section"), "brass section", reverb=40)
    for bar in range(10, 18):
        tones = voicing(PROG[bar], 58, 72)
        if (bar - 10) % 2 == 0:
            hits = [(0, .45, 100)]
        else:
            hits = [(2.5, .3, 92), (3, .7, 100)]
        if bar == 17:
            hits = [(0, .45, 100), (1.5, .3, 90), (2, .45, 96)]
        for beat, beats, vel in hits:
            s = T(bar, beat) + h.t(5)
            for p in tones:
                add(inst, p, s, T(bar, beat + beats), h.v(vel))
    for p in voicing("C", 55, 72):  # final chord
        add(inst, p, T(19, 0) + h.t(4), T(19, 3.0), h.v(84))
    return inst


# stem -> list of layers (instrument, pan in [-1, 1], relative gain dB within the stem)
def build_song(seed: int = SEED) -> dict[str, list[tuple[pretty_midi.Instrument, float, float]]]:
    h = Humanizer(seed)
    bv_high, bv_low = build_backing_vocals(h)
    shaker, tamb = build_percussion(h)
    return {
        "vocals": [(build_lead(h), 0.0, 0.0)],
        "backing_vocals": [(bv_high, -0.7, 0.0), (bv_low, 0.7, 0.0)],
        "drums": [(build_drums(h), 0.0, 0.0)],
        "bass": [(build_bass(h), 0.0, 0.0)],
        "guitar": [(build_guitar(h), -0.45, 0.0)],
        "keyboard": [(build_keyboard(h), 0.35, 0.0)],
        "percussion": [(shaker, 0.45, 0.0), (tamb, -0.3, -2.0)],
        "strings": [(build_strings(h), -0.15, 0.0)],
        "brass": [(build_brass(h), 0.3, 0.0)],
    }


# Mix: target "active" RMS per stem in dBFS before the common scale (RMS over the frames where
# the stem plays, so sparse stems are not pushed up). Vocals on top.
MIX_TARGET_DB = {
    "vocals": -13.0,
    "drums": -16.0,
    "bass": -17.0,
    "keyboard": -21.0,
    "backing_vocals": -20.0,
    "guitar": -22.0,
    "strings": -22.0,
    "brass": -20.0,
    "percussion": -24.0,
}

# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def render_layer(inst: pretty_midi.Instrument, sf2: Path, work: Path, tag: str) -> np.ndarray:
    """Render one instrument alone with the fluidsynth CLI; returns (2, n) float64."""
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=BPM)
    # a harmless controller event at the end so the file (and the render) spans the whole song
    inst.control_changes.append(pretty_midi.ControlChange(110, 0, DURATION_S + 0.5))
    pm.instruments.append(inst)
    mid = work / f"{tag}.mid"
    wav = work / f"{tag}.wav"
    pm.write(str(mid))
    cmd = ["fluidsynth", "-ni", "-q", "-g", str(FLUID_GAIN), "-r", str(SR), "-O", "float", "-T", "wav",
           "-R", "1", "-C", "0"]
    for k, v in FLUID_OPTS.items():
        cmd += ["-o", f"{k}={v}"]
    cmd += ["-F", str(wav), str(sf2), str(mid)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    x, sr = sf.read(wav, dtype="float64", always_2d=True)
    assert sr == SR, sr
    return x.T


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan law, normalised so that centre leaves both channels unchanged."""
    theta = (pan + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)


def active_rms_db(x: np.ndarray, frame: int = 2048, floor_db: float = 30.0) -> float:
    """RMS (dBFS) over the frames within ``floor_db`` of the loudest frame."""
    mono2 = (x ** 2).mean(axis=0)
    n = mono2.size // frame
    fr = mono2[: n * frame].reshape(n, frame).mean(axis=1)
    thr = fr.max() * 10 ** (-floor_db / 10)
    return 10 * math.log10(fr[fr >= thr].mean())


def db(v: float) -> float:
    return 20 * math.log10(v) if v > 0 else -math.inf


def rms_db(x: np.ndarray) -> float:
    return db(float(np.sqrt((x ** 2).mean())))


def report(stems: dict[str, np.ndarray]) -> list[str]:
    lines = [f"{'stem':16s} {'RMS dBFS':>9s} {'active':>8s} {'peak':>7s} {'peak dBFS':>9s}"]
    total = sum(stems.values())
    for name, x in list(stems.items()) + [("SUM (mix)", total)]:
        lines.append(f"{name:16s} {rms_db(x):9.1f} {active_rms_db(x):8.1f} {np.abs(x).max():7.3f} "
                     f"{db(np.abs(x).max()):9.2f}")
    return lines


def check(out: Path) -> dict:
    meta = json.loads((out / "song.json").read_text())
    stems, lengths = {}, set()
    for s in meta["stems"]:
        x, sr = sf.read(out / s["file"], dtype="float64", always_2d=True)
        assert sr == SR, (s["file"], sr)
        assert x.shape[1] == 2, (s["file"], x.shape)
        lengths.add(x.shape[0])
        stems[s["name"]] = x.T
    assert lengths == {meta["samples"]}, (lengths, meta["samples"])
    total = sum(stems.values())
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print("\n".join(report(stems)))
    print(f"decoded: {len(stems)} stems x {meta['samples']} samples @ {SR} Hz stereo; "
          f"sum peak {np.abs(total).max():.3f}; data dir {size / 1e6:.2f} MB")
    assert np.abs(total).max() < 1.0
    return {"stems": stems, "size": size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sf2", type=Path, default=DEFAULT_SF2)
    ap.add_argument("--keep", type=Path, default=None, help="keep MIDI + float WAV renders here")
    ap.add_argument("--check", action="store_true", help="only decode and report the existing files")
    ap.add_argument("--midi-only", action="store_true", help="only write the score, song.mid")
    args = ap.parse_args(argv)
    if args.check:
        check(args.out)
        return 0
    if args.midi_only:
        write_truth_midi(build_song(SEED), args.out / "song.mid")
        return 0
    if not args.sf2.exists():
        sys.exit(f"soundfont not found: {args.sf2} (apt-get install -y fluid-soundfont-gm)")
    if shutil.which("fluidsynth") is None:
        sys.exit("fluidsynth not found (apt-get install -y fluidsynth)")

    n = int(round(DURATION_S * SR))
    song = build_song(SEED)
    work = Path(tempfile.mkdtemp(prefix="stemlab-demo-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)

    raw: dict[str, np.ndarray] = {}
    layer_info: dict[str, list[dict]] = {}
    for stem, layers in song.items():
        acc = np.zeros((2, n))
        layer_info[stem] = []
        for i, (inst, pan, gain_db) in enumerate(layers):
            x = fit_length(render_layer(inst, args.sf2, work, f"{stem}_{i}"), n)
            gl, gr = pan_gains(pan)
            acc += 10 ** (gain_db / 20) * np.stack([x[0] * gl, x[1] * gr])
            layer_info[stem].append({"instrument": inst.name, "program": inst.program, "is_drum": inst.is_drum,
                                     "pan": pan, "gain_db": gain_db, "notes": len(inst.notes)})
        r = 1.0 - 2 * math.pi * DC_BLOCK_HZ / SR
        raw[stem] = lfilter([1.0, -1.0], [1.0, -r], acc, axis=1)
        print(f"rendered {stem:15s} ({len(layers)} layer(s))", flush=True)

    # common fades (identical on every stem, so the sum is unaffected apart from the same fade)
    env = np.ones(n)
    k_in, k_out = int(FADE_IN_S * SR), int(FADE_OUT_S * SR)
    env[:k_in] = np.linspace(0, 1, k_in, endpoint=False)
    env[n - k_out:] = 0.5 * (1 + np.cos(np.linspace(0, math.pi, k_out)))

    # levels: per-stem gain to its target active RMS, then one common factor for the sum's peak
    gains_db = {s: MIX_TARGET_DB[s] - active_rms_db(x) for s, x in raw.items()}
    stems = {s: raw[s] * 10 ** (gains_db[s] / 20) * env for s in raw}
    common_db = SUM_PEAK_DBFS - db(np.abs(sum(stems.values())).max())
    stems = {s: x * 10 ** (common_db / 20) for s, x in stems.items()}
    for s, x in stems.items():
        assert np.abs(x).max() < 1.0, s

    print("\n".join(report(stems)))

    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.mp3"):
        old.unlink()
    entries = []
    for s in TWELVE_STEMS:
        if s not in stems:
            continue
        fname = f"{s}.mp3"
        sf.write(args.out / fname, stems[s].T.astype(np.float32), SR, format="MP3", subtype="MPEG_LAYER_III",
                 bitrate_mode=MP3_BITRATE_MODE, compression_level=MP3_COMPRESSION_LEVEL)
        x = stems[s]
        entries.append({
            "name": s, "file": fname,
            "gain_db": round(gains_db[s] + common_db, 2),
            "gain": round(10 ** ((gains_db[s] + common_db) / 20), 5),
            "pan": layers_pan(layer_info[s]),
            "layers": layer_info[s],
            "rms_dbfs": round(rms_db(x), 2), "active_rms_dbfs": round(active_rms_db(x), 2),
            "peak": round(float(np.abs(x).max()), 4),
            "bytes": (args.out / fname).stat().st_size,
        })
    total = sum(stems.values())
    sf2_meta = SOUNDFONTS.get(args.sf2.name, {"name": args.sf2.stem, "licence": "unknown", "source": ""})
    fluid_version = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    meta = {
        "title": TITLE,
        "composer": "composed for stemlab, CC0",
        "licence": "CC0-1.0",
        "bpm": BPM, "time_signature": "4/4", "key": KEY,
        "duration_s": DURATION_S, "sr": SR, "channels": 2, "samples": n,
        "sections": [{"name": nme, "start_s": T(a), "end_s": T(b), "bars": [a + 1, b]} for nme, a, b in SECTIONS],
        "chords": [{"bar": i + 1, "start_s": T(i), "chord": c} for i, c in enumerate(PROG)],
        "stems": entries,
        "silent_stems": [s for s in TWELVE_STEMS if s not in stems],
        "mix": {
            "definition": "mix = sum of the stems (silent stems are exactly zero)",
            "gain_db": "gain applied to the fluidsynth float render of the stem (includes the common factor)",
            "pan": "-1 = left, 0 = centre, +1 = right; constant-power law L=sqrt2*cos(t), R=sqrt2*sin(t), "
                   "t=(pan+1)*pi/4, applied to the stereo render of each layer",
            "common_gain_db": round(common_db, 2),
            "sum_peak": round(float(np.abs(total).max()), 4),
            "sum_rms_dbfs": round(rms_db(total), 2),
            "fade_in_s": FADE_IN_S, "fade_out_s": FADE_OUT_S, "dc_block_hz": DC_BLOCK_HZ,
        },
        "soundfont": {**sf2_meta, "file": args.sf2.name},
        "render": {
            "command": "python tools/render_demo_song.py",
            "requirements": "apt-get install -y fluidsynth libfluidsynth3 fluid-soundfont-gm; "
                            "pip install pretty_midi soundfile numpy scipy",
            "seed": SEED,
            "synthesizer": fluid_version,
            "fluidsynth_gain": FLUID_GAIN, "fluidsynth_settings": FLUID_OPTS,
            "encoding": {"format": "MP3", "bitrate_mode": MP3_BITRATE_MODE,
                         "compression_level": MP3_COMPRESSION_LEVEL,
                         "libsndfile": sf.__libsndfile_version__},
        },
    }
    (args.out / "song.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_truth_midi(build_song(SEED), args.out / "song.mid")
    print(f"wrote {len(entries)} stems, song.json and song.mid to {args.out}")
    check(args.out)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def write_truth_midi(song: dict, path: Path) -> None:
    """One track per stem, named after it, holding all its layers' notes (and the lead's bends).

    Built from a fresh ``build_song``: rendering appends an end-of-song controller to each layer,
    which the score does not need.
    """
    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=BPM)
    for stem in TWELVE_STEMS:
        if stem not in song:
            continue
        first = song[stem][0][0]
        track = pretty_midi.Instrument(program=first.program, is_drum=first.is_drum, name=stem)
        for inst, _pan, _gain in song[stem]:
            track.notes.extend(inst.notes)
            track.pitch_bends.extend(inst.pitch_bends)
        track.notes.sort(key=lambda n: (n.start, n.pitch))
        pm.instruments.append(track)
    pm.write(str(path))
    print(f"wrote {path} ({sum(len(t.notes) for t in pm.instruments)} notes)")


def layers_pan(layers: list[dict]) -> float | list[float]:
    pans = [l["pan"] for l in layers]
    return pans[0] if len(set(pans)) == 1 else pans


if __name__ == "__main__":
    raise SystemExit(main())
