"""Provider labels map onto canonical names, whatever their case, spacing or synonyms."""

import pytest

from stemlab.taxonomy import (GROUPS, TWELVE_STEMS, TWO_STEMS, canonical_name, common_groups, coverage, finest_common,
                              group_of, label_from_title, safe_name, stems_in_group)


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


def test_coverage_of_each_kind_of_set():
    two = coverage(["vocals", "instrumental"])
    assert two["vocals"] == {"vocals", "backing_vocals"} and len(two["instrumental"]) == 10
    musdb = coverage(["vocals", "drums", "bass", "other"])
    assert musdb["vocals"] == {"vocals", "backing_vocals"}
    assert musdb["other"] == set(TWELVE_STEMS) - {"vocals", "backing_vocals", "drums", "bass"}
    twelve = coverage(TWELVE_STEMS)
    assert all(twelve[n] == {n} for n in TWELVE_STEMS)
    assert coverage(["unknown_theremin", "drums"])["unknown_theremin"] == frozenset()


def test_common_groups_are_the_finest_shared_partition():
    assert list(common_groups(TWELVE_STEMS, TWELVE_STEMS)) == list(TWELVE_STEMS)
    assert list(common_groups(TWELVE_STEMS, TWO_STEMS)) == ["vocals", "instrumental"]
    assert list(common_groups(TWELVE_STEMS, ["vocals", "drums", "bass", "other"])) == ["vocals", "drums", "bass",
                                                                                          "other"]
    assert list(common_groups(["drums", "other"], TWELVE_STEMS)) == ["drums", "other"]
    assert common_groups(["drums", "other"], TWO_STEMS) == {}  # nothing but the whole mix in common
    groups = common_groups(TWELVE_STEMS, TWO_STEMS)
    assert stems_in_group(TWELVE_STEMS, groups["vocals"]) == ["vocals", "backing_vocals"]
    assert stems_in_group(TWO_STEMS, groups["vocals"]) == ["vocals"]
