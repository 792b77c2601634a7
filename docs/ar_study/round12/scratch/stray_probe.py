"""One-off experiment of round 12 (not part of the toolkit): ``simple_harmony_probe.py`` with round 7's stray
decay applied at sampling time. After the prompt, every refit's poles between 100 Hz and 5 kHz are moved inward by
``exp(-(1 - w) / D)``, ``w`` the weight with which the prompt holds the pole's pitch class (1 for its strongest
class) and ``D`` the added decay time in samples. The logistic's scale is still the one of the fit as made, and the
network is unchanged. Round 7's code (commit ffbf5c8, reverted by 0d04a71) is restated here, not restored.

    python docs/ar_study/round12/scratch/stray_probe.py 2000 -- --model M --source tuning \\
        --soundfont /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 --prompts 8 --draws 4 --pool 64 \\
        --piece-offset 48 --seed 0 --arms shipped --out F

``D`` in milliseconds; 0 changes nothing (the plain probe).
"""
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wavegen.nn import lpc

decay_ms = float(sys.argv[1])
sys.argv = [sys.argv[0]] + sys.argv[3:]
SAMPLE_RATE = 16000  # the piano-tiny family's rate (every model this round probes)
LOW_HZ, HIGH_HZ = 100.0, 5000.0  # where a pole's pitch class is well defined, and a piano holds more than noise


def held_classes(audio: torch.Tensor) -> np.ndarray:
    """Tensor[B, T] -> float64[B, 12]: each pitch class's power in [LOW_HZ, HIGH_HZ] (one Hann window over the
    whole clip) as an amplitude relative to the strongest class."""
    x = audio.detach().double()
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=x.dtype), dim=-1)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / SAMPLE_RATE)
    inside = (freqs >= LOW_HZ) & (freqs <= HIGH_HZ)
    classes = torch.round(12 * torch.log2(freqs[inside] / 440.0)).long() % 12
    power = spectrum.abs().pow(2)[..., inside] @ F.one_hot(classes, 12).double()
    return (power / power.amax(-1, keepdim=True).clamp_min(1e-30)).sqrt().numpy()


def damp(coeffs: torch.Tensor, held: np.ndarray, decay_samples: float) -> torch.Tensor:
    """Coefficients Tensor[B, p] -> the same predictor with the poles of weakly held classes moved inward. The
    new polynomial A(z)·Π(1 - s·r/z)/(1 - r/z) is evaluated on the unit circle and brought back by an inverse FFT
    (rebuilding from all p roots loses every digit at these orders)."""
    a = coeffs.detach().double().numpy()
    p = a.shape[-1]
    size = 1 << (p + 1).bit_length()
    inverse_z = np.exp(-2j * math.pi * np.arange(size) / size)
    out = np.empty_like(a)
    for b in range(a.shape[0]):
        polynomial = np.concatenate([[1.0], -a[b]])
        poles = np.roots(polynomial)
        freq = np.abs(np.angle(poles)) * SAMPLE_RATE / (2 * math.pi)
        band = (freq >= LOW_HZ) & (freq <= HIGH_HZ) & (np.abs(poles.imag) > 0)
        classes = np.round(12 * np.log2(np.maximum(freq, 1.0) / 440.0)).astype(np.int64) % 12
        shrink = np.exp(-(1.0 - held[b][classes[band]]) / decay_samples)
        moved = poles[band, None]
        ratio = np.prod((1 - shrink[:, None] * moved * inverse_z) / (1 - moved * inverse_z), axis=0)
        out[b] = -np.fft.ifft(np.fft.fft(polynomial, size) * ratio).real[1 : p + 1]
    return torch.from_numpy(out).to(coeffs.dtype)


shipped_predictive, shipped_fit, shipped_scales = lpc.LPCState.predictive, lpc.fit_lpc, lpc.block_scales_from_frames
active = None  # while a short chunk runs: (held weights, the undamped fit of the last refit)


def fit_lpc(frames, order, method="autocorrelation"):
    fitted = shipped_fit(frames, order, method)
    if active is None:
        return fitted
    active[1] = fitted
    return damp(fitted, active[0], decay_ms * SAMPLE_RATE / 1000.0).to(fitted.dtype)


def block_scales_from_frames(ext, coeffs):
    """The logistic's scale of the fit as made (round 7 damped the predictions only)."""
    return shipped_scales(ext, coeffs if active is None else active[1][:, None])


def predictive(self, values):
    """Long chunks (the prompt) as shipped, remembered; the first short chunk (free running) measures the prompt's
    pitch classes, and every later refit is damped."""
    global active
    if decay_ms == 0:
        return shipped_predictive(self, values)
    if values.shape[1] >= self.refit:
        self.prompt_seen = torch.cat([getattr(self, "prompt_seen", values[:, :0].float()), values.float()], dim=1)
        return shipped_predictive(self, values)
    if not hasattr(self, "held"):
        self.held = held_classes(self.prompt_seen)
    active = [self.held, None]
    try:
        return shipped_predictive(self, values)
    finally:
        active = None


lpc.fit_lpc = fit_lpc
lpc.block_scales_from_frames = block_scales_from_frames
lpc.LPCState.predictive = predictive
runpy.run_path(str(Path(__file__).resolve().parents[4] / "benchmarks" / "simple_harmony_probe.py"), run_name="__main__")
