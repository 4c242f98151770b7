"""What each stem kind is, musically: its transcription method, pitch range and MIDI program.

A stem's kind is its canonical name (see :mod:`stemlab.taxonomy`); names outside the 12-stem and
2-stem taxonomies (``other``, ``unknown_...``) are treated as polyphonic instruments.

>>> kind_of("bass").method, kind_of("bass").pitch_range, kind_of("drums").is_drum
('monophonic', (23, 67), True)
>>> kind_of("unknown_theremin").method
'polyphonic'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..taxonomy import canonical_name

__all__ = ["Kind", "KINDS", "METHODS", "kind_of", "is_drum_stem"]

METHODS = ("monophonic", "polyphonic", "drums")


@dataclass(frozen=True)
class Kind:
    """How one stem kind is transcribed and written to MIDI.

    ``pitch_range`` is the lowest and highest MIDI note searched (the instrument's range, with a
    little room); ``program`` the 0-based General MIDI program; drums go on the percussion channel.
    """

    method: str
    pitch_range: tuple[int, int]
    program: int
    is_drum: bool = False


KINDS = {
    "vocals": Kind("monophonic", (40, 84), 53),        # E2-C6; Voice Oohs
    "backing_vocals": Kind("polyphonic", (40, 84), 52),  # Choir Aahs
    "drums": Kind("drums", (35, 81), 0, is_drum=True),
    "bass": Kind("monophonic", (23, 67), 33),           # B0 (5-string) to G4; Electric Bass (finger)
    "guitar": Kind("polyphonic", (40, 88), 25),         # E2-E6; Acoustic Guitar (steel)
    "keyboard": Kind("polyphonic", (21, 108), 0),       # the piano's A0-C8; Acoustic Grand Piano
    "percussion": Kind("drums", (35, 81), 0, is_drum=True),
    "strings": Kind("polyphonic", (28, 100), 48),       # double bass E1 to violin E7; String Ensemble 1
    "synth": Kind("polyphonic", (24, 108), 81),         # Lead 2 (sawtooth)
    "fx": Kind("polyphonic", (24, 108), 98),            # FX 3 (crystal)
    "brass": Kind("polyphonic", (34, 84), 61),          # tuba B-flat1 to trumpet C6; Brass Section
    "woodwinds": Kind("polyphonic", (34, 96), 73),      # bassoon B-flat1 to flute C7; Flute
    "instrumental": Kind("polyphonic", (24, 108), 0),
}
_OTHER = Kind("polyphonic", (24, 108), 0)


def kind_of(name: str) -> Kind:
    """The kind of the stem named ``name`` (a canonical name)."""
    return KINDS.get(name, _OTHER)


def is_drum_stem(label: str) -> bool:
    """Are the note pitches of the stem labelled ``label`` General MIDI percussion keys?

    >>> is_drum_stem("drums"), is_drum_stem(" (Percussion)"), is_drum_stem("bass")
    (True, True, False)
    """
    return kind_of(canonical_name(label) or label).is_drum
