"""The comparison view: one stem group of two sets, A/B in the player, the numbers underneath.
(tests/browser/test_compare_view_browser.py plays it in Chromium.)"""

import numpy as np
import pytest

import stemlab


def test_rows_mixer_and_table_follow_the_choices(small_comparison):
    comparison = small_comparison
    view = comparison.view(stem="vocals")
    assert [t["name"] for t in view.view.tracks] == ["A: a", "B: b", "A - B", "reference"]
    assert [t["kind"] for t in view.view.tracks] == ["source", "stem", "residual", "stem"]
    assert view.view.muted == [False, False, True, True] and view.view.ab_labels == ["B: b", "A: a"]
    assert "si_sdr" in view.table.value and "agreement_si_sdr" in view.table.value
    difference = np.frombuffer(view.view.waves, "<f4").reshape(4, 1, 2, -1)[2]
    assert np.abs(difference).max() > 0.05  # b's vocals carry drums: the difference row shows them
    view.stem_select.value = "drums"
    view.b_select.value = "reference"
    assert [t["name"] for t in view.view.tracks] == ["A: a", "B: reference", "A - B"]
    assert view.view.muted == [False, False, True] and len(view.view.audio) == 3
    with pytest.raises(stemlab.errors.UsageError, match="no stem 'piano'"):
        comparison.view(stem="piano")
