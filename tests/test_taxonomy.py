"""Provider labels map onto canonical names, whatever their case, spacing or synonyms."""

import pytest

from stemlab.taxonomy import (GROUPS, TWELVE_STEMS, TWO_STEMS, canonical_name, finest_common, group_of,
                              label_from_title, safe_name)


@pytest.mark.parametrize("label, name", [
    ("Vocals", "vocals"), ("VOCALS", "vocals"), ("Backing_Vocals", "backing_vocals"),
    ("Backing Vocals", "backing_vocals"), ("backing-vocals", "backing_vocals"), (" (Drums)", "drums"),
    ("FX", "fx"), ("FX/Other", "fx"), ("Keys", "keyboard"), ("Piano", "keyboard"), ("Woodwind", "woodwinds"),
    ("Accompaniment", "instrumental"), ("Instrumental", "instrumental"), ("Backing Track", "instrumental"),
    ("backing_track", "instrumental"), ("Synthesizer", "synth"), ("Theremin", None), ("", None), (None, None),
    ("other", "other"), ("Other", "other"),
])
def test_canonical_name(label, name):
    assert canonical_name(label) == name


def test_every_canonical_name_maps_to_itself():
    for name in (*TWELVE_STEMS, *TWO_STEMS):
        assert canonical_name(name) == name


def test_title_fallback():
    assert label_from_title(" (Backing Vocals)") == "Backing Vocals"
    assert label_from_title("My Song (Live) (Drums)") == "Drums"
    assert label_from_title("No parentheses") is None and label_from_title("()") is None


def test_safe_names_never_carry_raw_provider_text():
    assert safe_name("../../etc/passwd") == "unknown_etc_passwd"
    assert safe_name("Vocals", taken={"vocals"}) == "vocals_2"
    assert safe_name("Vocals", taken={"vocals", "vocals_2"}) == "vocals_3"
    assert safe_name("☃") == "unknown"


def test_groups_cover_the_twelve_stems_once():
    members = [m for group in GROUPS.values() for m in group]
    assert sorted(members) == sorted(TWELVE_STEMS)
    assert group_of("backing_vocals", TWO_STEMS) == "vocals" and group_of("brass", TWO_STEMS) == "instrumental"
    assert group_of("vocals", TWELVE_STEMS) == "vocals" and group_of("instrumental", TWELVE_STEMS) is None


def test_finest_common_taxonomy():
    assert finest_common(["vocals", "drums"], ["bass", "fx"]) == TWELVE_STEMS
    assert finest_common(["vocals", "drums"], ["vocals", "instrumental"]) == TWO_STEMS
