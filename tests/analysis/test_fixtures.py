"""stemlab's BSSEval against stored outputs of other implementations (../shared/data, read in place):

* museval's own regression scores for MUSDB18's "80s Rock" (BSSEval v4, images, framewise);
* the MATLAB BSS Eval toolbox's outputs that mir_eval tested against (``bss_eval_images``, whole
  signal: the v3 images decomposition, which is v4's with one frame).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import ROCK, SEPARATION  # noqa: E402

from stemlab.analysis.metrics import bss_eval  # noqa: E402


MATLAB = {"Source to Distortion": "sdr", "Image to Spatial": "isr", "Source to Interference": "sir",
          "Source to Artifact": "sar"}
CASES = ["01", "02", "03", "05", "06", "07", "08", "09"]


def test_80s_rock_matches_musevals_stored_scores_to_their_rounding():
    stems = {n: sf.read(ROCK / f"{n}.flac", dtype="float64", always_2d=True)[0] for n in ("vocals", "drums", "bass",
                                                                                         "other")}
    references = np.stack([stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]])
    np.random.seed(0)  # the estimates museval's regression test scores: noise, drawn in this order
    vocals = np.random.random((300032, 2))
    accompaniment = np.random.random((300032, 2))
    result = bss_eval(references, np.stack([vocals, accompaniment]), window=44100, hop=44100)
    expected = json.loads((ROCK / "museval-expected.json").read_text())["targets"]
    assert [t["name"] for t in expected] == ["vocals", "accompaniment"]
    for row, target in enumerate(expected):
        assert len(target["frames"]) == result.frames.sdr.shape[1] == 6
        for k, frame in enumerate(target["frames"]):
            for metric, value in frame["metrics"].items():
                # the json is rounded to 1e-5 dB; museval 0.4.1 itself reproduces it within 5e-6
                assert getattr(result.frames, metric.lower())[row, k] == pytest.approx(value, abs=1e-5)


def _load(folder: Path) -> np.ndarray:
    """As mir_eval.io.load_wav: int16 / 2**16, channels averaged; stacked ``(sources, samples)``."""
    return np.vstack([sf.read(f, dtype="int16", always_2d=True)[0].astype(np.float64).mean(axis=1) / 2 ** 16
                      for f in sorted(folder.glob("*.wav"))])


def _multichannel(signals: np.ndarray, nchan: int, gain: float = 1.0) -> np.ndarray:
    """mir_eval's __generate_multichannel: channel 0 as given, the added channels times ``gain``
    (its ``reverse`` reverses identical copies: nothing to do)."""
    signals = np.atleast_3d(signals)
    return np.dstack([signals] + [gain * signals] * (nchan - 1))


@pytest.mark.parametrize("case", CASES)
def test_images_match_the_matlab_toolbox(case):
    expected = json.loads((SEPARATION / f"output{case}.json").read_text())["Images"]
    references = _multichannel(_load(SEPARATION / f"ref{case}"), expected["nchan"])
    estimates = _multichannel(_load(SEPARATION / f"est{case}"), expected["nchan"], expected["gain"])
    estimates = estimates[expected["Source permutation"]]  # the toolbox searched the permutation; stemlab does not
    result = bss_eval(references, estimates, framewise=False)
    for key, metric in MATLAB.items():
        ours, theirs = getattr(result.whole, metric), np.array(expected[key], dtype=float)
        if metric == "sir" and len(theirs) == 1:
            # one source: nothing interferes. MATLAB writes inf; stemlab says "not measurable" (NaN)
            assert np.isinf(theirs).all() and np.isnan(ours).all()
            continue
        # 1e-6 dB everywhere but SIR of case 05, whose three sources make a near-singular projection:
        # museval 0.4.1 differs from MATLAB there by the same 1.4e-4 dB (stemlab and museval agree)
        tolerance = 2e-4 if (case, metric) == ("05", "sir") else 1e-6
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance, err_msg=f"case {case} {key}")
