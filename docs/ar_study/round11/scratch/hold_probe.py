"""One-off diagnostic of round 11 (not part of the toolkit): ``simple_harmony_probe.py`` with the predictor's
coefficients held after the prompt. The prompt is fed as one chunk, as always; every later refit keeps the last
coefficients and only refits the logistic's scale with them (mode ``hold``; ``none`` changes nothing).

    python docs/ar_study/round11/scratch/hold_probe.py hold -- --source tuning \\
        --soundfont /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 --prompts 8 --draws 4 --pool 64 \\
        --piece-offset 48 --seed 0 --arms shipped --out F
"""
import runpy
import sys
from pathlib import Path

from wavegen.nn import lpc

mode = sys.argv[1]
sys.argv = [sys.argv[0]] + sys.argv[3:]
chunked, fitted = lpc.LPCState.predictive, lpc.fit_lpc
held = None  # while a short chunk runs: the coefficients every refit returns


def fit_lpc(frames, order, method="autocorrelation"):
    return held if held is not None else fitted(frames, order, method)


def predictive(self, values):
    """The shipped method; a chunk shorter than a block (free running, after the prompt) refits to the same
    coefficients, so only the logistic's scale follows the audio."""
    global held
    if values.shape[1] >= self.refit or mode == "none":
        return chunked(self, values)
    held = self.coeffs
    try:
        return chunked(self, values)
    finally:
        held = None


lpc.fit_lpc = fit_lpc
lpc.LPCState.predictive = predictive
runpy.run_path(str(Path(__file__).resolve().parents[4] / "benchmarks" / "simple_harmony_probe.py"), run_name="__main__")
