"""stemlab's note and onset scores against mir_eval's, on random notes (hypothesis): the same
matches, so the same precision, recall and F1, with and without offsets."""

import mir_eval
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stemlab.analysis.notes import score_drums, score_notes, score_onsets
from stemlab.transcription.notes import note_frame

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# onsets mostly on a 5 ms grid, so many pairs sit exactly on (or a float's hair around) the 50 ms
# tolerance, and some anywhere, so that the rounding of distances to 0.1 ms is exercised too
onset = st.integers(min_value=0, max_value=400).map(lambda k: k * 0.005) | st.floats(min_value=0, max_value=2)
note = st.tuples(onset, st.integers(min_value=1, max_value=60).map(lambda k: k * 0.01),
                 st.integers(min_value=55, max_value=62))
notes = st.lists(note, max_size=25)


def table(rows) -> pd.DataFrame:
    rows = list(rows)
    return note_frame([r[0] for r in rows], [r[0] + r[1] for r in rows], [r[2] for r in rows],
                      [100] * len(rows), [1.0] * len(rows))


def hz(pitches) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitches, float) - 69.0) / 12.0)


def mir_eval_f1(estimate, reference, offsets: bool) -> tuple[float, float, float]:
    return mir_eval.transcription.precision_recall_f1_overlap(
        reference[["onset", "offset"]].to_numpy(float).reshape(-1, 2), hz(reference["pitch"]),
        estimate[["onset", "offset"]].to_numpy(float).reshape(-1, 2), hz(estimate["pitch"]),
        onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=0.2 if offsets else None)[:3]


@EXAMPLES
@given(estimate=notes, reference=notes.filter(len), offsets=st.booleans())
@example(estimate=[(0.05, 0.1, 60)], reference=[(0.0, 0.1, 60)], offsets=False)      # exactly 50 ms
@example(estimate=[(0.0, 0.1, 60), (0.01, 0.1, 60)], reference=[(0.0, 0.1, 60)], offsets=True)
@example(estimate=[(0.05004, 0.1, 60)], reference=[(0.0, 0.1, 60)], offsets=False)  # 50.04 ms: 50.0 at 0.1 ms
def test_note_scores_are_mir_eval_s(estimate, reference, offsets):
    ours = score_notes(table(estimate), table(reference), offsets=offsets)
    assert (ours.precision, ours.recall, ours.f1) == pytest.approx(mir_eval_f1(table(estimate), table(reference), offsets))


@EXAMPLES
@given(estimate=st.lists(onset, max_size=30, unique=True), reference=st.lists(onset, min_size=1, max_size=30, unique=True))
@example(estimate=[0.05, 0.1], reference=[0.0, 0.1, 0.15])
@example(estimate=[0.42], reference=[94 * 0.005])  # 0.47000000000000003 - 0.42 > 0.05 (CI's find)
def test_onset_scores_are_mir_eval_s(estimate, reference):
    ours = score_onsets(np.sort(estimate), np.sort(reference))
    theirs = mir_eval.onset.f_measure(np.sort(reference), np.sort(estimate), window=0.05)
    assert (ours.f1, ours.precision, ours.recall) == pytest.approx(theirs)


def test_drum_scores_are_per_class_and_count_a_flam_once():
    reference = note_frame([0.0, 0.0, 0.01, 0.5, 1.0], [0.1] * 5, [36, 42, 44, 38, 36], [100] * 5, [1.0] * 5)
    estimate = note_frame([0.01, 0.02, 0.5, 0.6], [0.1] * 4, [36, 42, 36, 38], [100] * 4, [1.0] * 4)
    scores = score_drums(estimate, reference, {"kick": (36,), "snare": (38,), "hihat": (42, 44), "ride": (51,)})
    assert set(scores) == {"kick", "snare", "hihat"}  # no ride in the reference: not scored
    assert scores["hihat"].true == 1 and scores["hihat"].f1 == 1.0  # hat + pedal 10 ms apart: one hit
    assert (scores["kick"].matched, scores["kick"].estimated, scores["kick"].true) == (1, 2, 2)
    assert scores["snare"].f1 == 0.0  # 100 ms late


def test_a_reference_with_none_of_the_classes_is_scored_on_its_onsets_whatever_the_key():
    reference = note_frame([0.0, 0.25, 0.5], [0.1] * 3, [70, 70, 54], [100] * 3, [1.0] * 3)  # shaker, tambourine
    estimate = note_frame([0.01, 0.26, 0.9], [0.1] * 3, [42, 42, 42], [100] * 3, [1.0] * 3)
    scores = score_drums(estimate, reference, {"kick": (36,), "hihat": (42,)})
    assert list(scores) == ["any"] and (scores["any"].matched, scores["any"].estimated) == (2, 3)
