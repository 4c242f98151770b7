"""Canonical stem names, and the mapping from provider labels onto them.

Two taxonomies exist: the 12-stem split and the 2-stem split. The grouping between them is
``vocals = vocals + backing_vocals`` and ``instrumental = everything else``, so sets of different
granularity can be compared. ``other`` (as in MUSDB18 and Demucs) means everything a set's other
stems do not cover; a label nothing matches becomes ``unknown_<slug>``.

>>> canonical_name("Backing_Vocals"), canonical_name(" (FX)"), canonical_name("Accompaniment")
('backing_vocals', 'fx', 'instrumental')
>>> label_from_title(" (Backing Vocals)")
'Backing Vocals'
>>> group_of("bass", TWO_STEMS)
'instrumental'
"""

from __future__ import annotations

import re
from typing import Iterable

__all__ = [
    "TWELVE_STEMS",
    "TWO_STEMS",
    "GROUPS",
    "canonical_name",
    "label_from_title",
    "safe_name",
    "group_of",
    "taxonomy_of",
    "finest_common",
    "coverage",
    "common_groups",
    "stems_in_group",
]

TWELVE_STEMS = ("vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard", "percussion",
                "strings", "synth", "fx", "brass", "woodwinds")
TWO_STEMS = ("vocals", "instrumental")

# coarse name -> the fine names it is the sum of
GROUPS = {
    "vocals": ("vocals", "backing_vocals"),
    "instrumental": tuple(n for n in TWELVE_STEMS if n not in ("vocals", "backing_vocals")),
}

_SYNONYMS = {
    "vocals": ["vocals", "vocal", "leadvocals", "leadvocal", "lead", "voice", "voices", "vox", "singing"],
    "backing_vocals": ["backingvocals", "backingvocal", "backvocals", "bgvocals", "bgv", "harmonies",
                       "harmonyvocals", "choir"],
    "drums": ["drums", "drum", "drumkit", "kit"],
    "bass": ["bass", "bassguitar", "subbass"],
    "guitar": ["guitar", "guitars", "electricguitar", "acousticguitar"],
    "keyboard": ["keyboard", "keyboards", "keys", "piano", "organ"],
    "percussion": ["percussion", "perc"],
    "strings": ["strings", "string", "orchestra"],
    "synth": ["synth", "synths", "synthesizer", "synthesiser", "pad"],
    "fx": ["fx", "fxother", "effects", "sfx", "soundeffects"],
    "brass": ["brass", "horns", "horn"],
    "woodwinds": ["woodwinds", "woodwind", "winds", "wind"],
    "other": ["other", "others", "rest", "remainder"],
    "instrumental": ["instrumental", "instrumentals", "accompaniment", "backingtrack", "inst", "karaoke",
                     "novocals", "music", "minusone"],
}
_LOOKUP = {alias: name for name, aliases in _SYNONYMS.items() for alias in aliases}


def _key(label: str) -> str:
    """Lower-case a label and drop spaces, underscores, hyphens, slashes, '&' and parentheses."""
    return re.sub(r"[\s_\-/&()\[\].]+", "", label.lower())


def label_from_title(title: str | None) -> str | None:
    """The text inside a title's trailing ``(...)``, as CQTAI writes ``" (Vocals)"``; else ``None``
    (also for anything that is not text)."""
    if not isinstance(title, str) or not title:
        return None
    match = re.search(r"\(([^()]*)\)\s*$", title)
    return match.group(1).strip() if match and match.group(1).strip() else None


def canonical_name(label: str | None) -> str | None:
    """The canonical snake_case name for a provider label, or ``None`` if it is not known.

    Matching ignores case, spaces, underscores, hyphens and parentheses, and knows common
    synonyms (``"Keys"`` is ``keyboard``, ``"Backing Track"`` is ``instrumental``).
    """
    if not isinstance(label, str) or not label:
        return None
    return _LOOKUP.get(_key(label)) or _LOOKUP.get(_key(label_from_title(label) or ""))


def safe_name(label: str | None, taken: Iterable[str] = ()) -> str:
    """A file-safe canonical name for ``label``: the canonical one, else ``unknown_<slug>``.

    Never returns raw provider text: unknown labels are reduced to ``[a-z0-9_]``, at most 24
    characters, and numbered when they collide with a name already ``taken``.

    >>> safe_name("Theremin ../../etc")
    'unknown_theremin_etc'
    >>> safe_name("Vocals", taken=["vocals"])
    'vocals_2'
    """
    name = canonical_name(label)
    if name is None:
        text = label if isinstance(label, str) else ""
        slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:24].strip("_")
        name = f"unknown_{slug}" if slug else "unknown"
    taken = set(taken)
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def group_of(name: str, taxonomy: Iterable[str]) -> str | None:
    """The name in ``taxonomy`` that ``name`` belongs to (itself, or its coarse group)."""
    taxonomy = tuple(taxonomy)
    if name in taxonomy:
        return name
    for coarse, members in GROUPS.items():
        if name in members and coarse in taxonomy:
            return coarse
    if (name == "other" or name.startswith("unknown")) and "instrumental" in taxonomy:
        return "instrumental"
    return None


def taxonomy_of(names: Iterable[str]) -> tuple[str, ...]:
    """``TWELVE_STEMS`` or ``TWO_STEMS`` if ``names`` fit in one of them, else the names as given."""
    names = tuple(names)
    if set(names) <= set(TWO_STEMS) and "instrumental" in names:
        return TWO_STEMS
    if set(names) <= set(TWELVE_STEMS):
        return TWELVE_STEMS
    return names


def finest_common(*name_sets: Iterable[str]) -> tuple[str, ...]:
    """The finest taxonomy every set can be mapped onto: 12 stems if all are 12-stem, else 2.

    >>> finest_common(["vocals", "drums", "bass"], ["vocals", "instrumental"])
    ('vocals', 'instrumental')
    """
    taxonomies = [taxonomy_of(names) for names in name_sets]
    if all(t == TWELVE_STEMS for t in taxonomies):
        return TWELVE_STEMS
    return TWO_STEMS


def coverage(names: Iterable[str]) -> dict[str, frozenset[str]]:
    """Which of the 12 fine stems each stem of a set covers.

    A fine name covers itself; ``vocals`` also covers ``backing_vocals`` when the set has no
    separate backing vocals (as in 2-stem splits and MUSDB18); ``instrumental`` covers every
    non-vocal stem the set does not name; ``other`` covers whatever no other stem of the set
    covers; an ``unknown_*`` stem covers nothing comparable.

    >>> sorted(coverage(["vocals", "instrumental"])["vocals"])
    ['backing_vocals', 'vocals']
    >>> len(coverage(["drums", "other"])["other"])
    11
    """
    names = list(names)
    explicit = {n for n in names if n in TWELVE_STEMS}
    covered: dict[str, frozenset[str]] = {}
    for name in names:
        if name in TWELVE_STEMS:
            group = {name} | ({"backing_vocals"} if name == "vocals" and "backing_vocals" not in explicit else set())
        elif name == "instrumental":
            group = set(GROUPS["instrumental"]) - explicit
        else:
            group = set()
        covered[name] = frozenset(group)
    if "other" in names:
        taken = set().union(*covered.values())
        covered["other"] = frozenset(set(TWELVE_STEMS) - taken)
    return covered


def _group_name(group: frozenset[str], universe: set[str], leftover: bool) -> str:
    if len(group) == 1:
        return next(iter(group))
    for coarse, members in GROUPS.items():
        if group == frozenset(members) & universe:
            return coarse
    return "other" if leftover else "+".join(n for n in TWELVE_STEMS if n in group)


def common_groups(*name_sets: Iterable[str]) -> dict[str, frozenset[str]]:
    """The finest groups of fine stems that every set can express as a sum of its own stems.

    Returns ``{group name: fine stems}``; a set's stem belongs to the group containing its
    coverage. Stems covered by only some of the sets are left out.

    >>> sorted(common_groups(TWELVE_STEMS, TWO_STEMS))
    ['instrumental', 'vocals']
    >>> sorted(common_groups(TWELVE_STEMS, ["drums", "bass", "other"]))
    ['bass', 'drums', 'other']
    >>> common_groups(["drums", "other"], ["vocals", "instrumental"])
    {}
    """
    covers = [coverage(names) for names in name_sets]
    universe = set(TWELVE_STEMS)
    for cover in covers:
        universe &= set().union(*cover.values()) if cover else set()
    parent = {n: n for n in universe}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for cover in covers:
        for group in cover.values():
            members = [n for n in group if n in universe]
            for a, b in zip(members, members[1:]):
                parent[root(a)] = root(b)
    blocks: dict[str, set[str]] = {}
    for n in universe:
        blocks.setdefault(root(n), set()).add(n)
    groups = sorted((frozenset(b) for b in blocks.values()), key=lambda g: min(TWELVE_STEMS.index(n) for n in g))
    if len(groups) == 1 and len(groups[0]) == len(TWELVE_STEMS):
        return {}  # only the whole mix in common: nothing to compare stem by stem
    biggest = max(groups, key=len) if groups else frozenset()
    names = {g: _group_name(g, universe, leftover=g is biggest and len(g) > 1) for g in groups}
    groups.sort(key=lambda g: names[g] == "other")  # the leftover last
    return {names[g]: g for g in groups}


def stems_in_group(names: Iterable[str], group: frozenset[str]) -> list[str]:
    """The stems of a set that make up ``group`` (a group of :func:`common_groups`): their sum is the
    set's estimate of it. A stem belongs to the one group its coverage meets."""
    return [name for name, covered in coverage(names).items() if covered & group]
