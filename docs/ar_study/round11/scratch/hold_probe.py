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

import torch

from wavegen.nn import lpc

mode = sys.argv[1]
sys.argv = [sys.argv[0]] + sys.argv[3:]
chunked = lpc.LPCState.predictive


def predictive(self, values):
    if values.shape[1] >= self.refit or mode == "none":
        return chunked(self, values)
    means, scales = [], []
    for i in range(values.shape[1]):
        self.history = torch.cat([self.history[:, 1:], values[:, i : i + 1].float()], dim=1)
        self.n += 1
        if self.n % self.refit == 0:  # the coefficients stay; the scale follows the held filter's residual
            self.scale = lpc.block_scales_from_frames(self.history[:, None].double(), self.coeffs[:, None])[:, 0]
        past = self.history[:, -self.order:].flip(-1).double()
        means.append((past * self.coeffs.double()).sum(-1))
        scales.append(self.scale)
    return torch.stack(means, dim=1), torch.stack(scales, dim=1)


lpc.LPCState.predictive = predictive
runpy.run_path(str(Path(__file__).resolve().parents[4] / "benchmarks" / "simple_harmony_probe.py"), run_name="__main__")
