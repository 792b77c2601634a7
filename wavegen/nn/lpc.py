"""Backward-adaptive linear prediction (LPC), and the LPC likelihood baseline (torch only).

A linear predictor of order ``p`` guesses sample ``n`` from the ``p`` before it::

    pred[n] = Σ_{k=1..p} a_k · x[n-k]

*Backward adaptive* means the coefficients are fitted on samples the decoder has
already produced, so encoder and decoder (or training and sampling) agree without
sending anything: sample ``n`` lies in block ``j = n // refit``, whose coefficients
are fitted on ``x[j·refit - window : j·refit]`` (digital silence before time 0).
The fit is the autocorrelation method: an asymmetrically windowed frame (weighted toward
its recent end), its autocorrelation
with a Gaussian lag window (smooths the spectral envelope so sharp resonances do
not make the predictor ill-conditioned) and a white-noise correction (``r[0]``
raised by 40 dB below itself: keeps the Toeplitz system positive definite), then
the Levinson–Durbin recursion. A frame of digital silence gets all-zero coefficients.

Two users:

- :class:`~wavegen.models.wavenet.WaveNet` with ``lpc_order > 0`` (LPCNet-style: the
  network sees the prediction and models the sample around it); :class:`LPCState`
  is the incremental (sample-by-sample) form of :func:`lpc_predict`.
- :func:`lpc_nll_bits`: a classical baseline's negative log-likelihood in the
  WaveNet's own units (bits per sample under its quantisation). The residual
  ``x[n] - pred[n]`` is modelled by a logistic whose scale is fitted on the same past
  window's residuals, and its mass is integrated over each quantisation bin (mixed with a
  0.1 % uniform share over the bins, a guard against onsets after silence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_ORDER = 32
DEFAULT_WINDOW = 1024
DEFAULT_REFIT = 256
# Lag window: Gaussian with this standard deviation in cycles per sample
# (60 Hz of bandwidth expansion at 16 kHz), and the white-noise correction factor.
LAG_SIGMA = 60.0 / 16000.0
WHITE_NOISE = 1e-4
# A frame whose energy is below this is digital silence: no fit.
SILENCE_ENERGY = 1e-12


# ----------------------------------------------------------------------------- fitting


def levinson_durbin(r: Tensor) -> Tensor:
    """Autocorrelations Tensor[..., p+1] -> predictor coefficients Tensor[..., p] (``pred = Σ a_k x[n-k]``).

    Batched over the leading axes. Where ``r[0]`` is (near) zero the coefficients are zero.
    """
    order = r.shape[-1] - 1
    silent = r[..., 0] <= SILENCE_ENERGY
    r = torch.where(silent[..., None], torch.zeros_like(r), r)
    r = r.clone()
    r[..., 0] = torch.where(silent, torch.ones_like(r[..., 0]), r[..., 0])
    a = r.new_zeros(r.shape[:-1] + (order,))
    error = r[..., 0]
    for i in range(order):
        # Reflection coefficient of stage i+1: the part of r[i+1] the current predictor misses.
        acc = r[..., i + 1] - (a[..., :i] * r[..., 1 : i + 1].flip(-1)).sum(-1)
        k = acc / error
        previous = a[..., :i].clone()
        a[..., :i] = previous - k[..., None] * previous.flip(-1)
        a[..., i] = k
        error = (error * (1.0 - k * k)).clamp_min(error * 1e-9)
    return a


def _analysis_window(length: int, dtype, device) -> Tensor:
    """Asymmetric: rises over the first 3/4 (half Hann), falls over the last 1/4 (quarter cosine).

    The weight peaks near the most recent samples, which predict the next ones best,
    while the short fall still avoids the spectral leakage of a hard edge.
    """
    rise = length - length // 4
    fall = length - rise
    up = torch.sin(0.5 * math.pi * (torch.arange(rise, dtype=dtype, device=device) + 0.5) / rise) ** 2
    down = torch.cos(0.5 * math.pi * (torch.arange(fall, dtype=dtype, device=device) + 0.5) / fall)
    return torch.cat([up, down])


def fit_lpc(frames: Tensor, order: int) -> Tensor:
    """Tensor[..., W] past-sample frames -> Tensor[..., order] coefficients (float64 inside, float32 out)."""
    x = frames.double() * _analysis_window(frames.shape[-1], torch.float64, frames.device)
    n = x.shape[-1]
    size = 1 << (2 * n - 1).bit_length()  # linear (not circular) correlation
    spectrum = torch.fft.rfft(x, size)
    r = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[..., : order + 1]
    lags = torch.arange(order + 1, dtype=torch.float64, device=frames.device)
    r = r * torch.exp(-0.5 * (2 * math.pi * LAG_SIGMA * lags) ** 2)
    r[..., 0] = r[..., 0] * (1.0 + WHITE_NOISE)
    return levinson_durbin(r).float()


def _past_frames(x: Tensor, order: int) -> Tensor:
    """Tensor[B, T] -> Tensor[B, T+1, order]: row n holds x[n-1], x[n-2], ..., x[n-order] (zeros before 0)."""
    padded = F.pad(x, (order, 0))  # [B, T + order]
    return padded.unfold(-1, order, 1).flip(-1)  # row n: x[n-order .. n-1], flipped


def block_coefficients(x: Tensor, order: int, window: int, refit: int, length: Optional[int] = None) -> Tensor:
    """Coefficients of every block, Tensor[B, J, order]; block ``j`` predicts samples ``j·refit ..``.

    x: Tensor[B, T]; ``length`` (default T+1) is how many predictions are wanted.
    """
    length = x.shape[-1] + 1 if length is None else length
    blocks = (length + refit - 1) // refit
    # Frame j is x[j·refit - window : j·refit]; left padding stands for silence before time 0.
    padded = F.pad(x.detach().float(), (window, 0))
    starts = torch.arange(blocks, device=x.device) * refit
    index = starts[:, None] + torch.arange(window, device=x.device)  # [J, W] into padded
    frames = padded[:, index.clamp_max(padded.shape[-1] - 1)]
    return fit_lpc(frames, order)


def lpc_predict(x: Tensor, order: int = DEFAULT_ORDER, window: int = DEFAULT_WINDOW,
                refit: int = DEFAULT_REFIT) -> Tensor:
    """Backward-adaptive predictions Tensor[B, T+1] of x: Tensor[B, T] (``pred[:, n]`` sees ``x[:, :n]`` only).

    The last column predicts the sample after the clip.
    """
    x = x.detach().float()
    length = x.shape[-1] + 1
    coeffs = block_coefficients(x, order, window, refit, length)  # [B, J, p]
    per_sample = coeffs.repeat_interleave(refit, dim=1)[:, :length]  # [B, T+1, p]
    return (_past_frames(x, order) * per_sample).sum(-1)


@dataclass
class LPCState:
    """The sample-by-sample form of :func:`lpc_predict` for a batch of streams.

    history: Tensor[B, window] the last ``window`` samples (oldest first; zeros = silence before 0);
    coeffs: Tensor[B, order] the current block's coefficients; n: index of the next sample to predict.
    """

    order: int
    window: int
    refit: int
    history: Tensor
    coeffs: Tensor
    n: int = 0

    @classmethod
    def empty(cls, batch: int, order: int, window: int, refit: int, device=None) -> "LPCState":
        history = torch.zeros(batch, max(window, order), device=device)
        return cls(order, window, refit, history, torch.zeros(batch, order, device=device), 0)

    def predict(self, values: Tensor) -> Tensor:
        """Append Tensor[B, n] samples; return the predictions of the sample after each, Tensor[B, n].

        Column ``i`` equals ``lpc_predict(all samples so far)[:, m + 1]`` for the sample at index ``m``.
        """
        out = []
        for i in range(values.shape[1]):
            self.history = torch.cat([self.history[:, 1:], values[:, i : i + 1].float()], dim=1)
            self.n += 1
            if self.n % self.refit == 0:
                frame = self.history[:, -self.window:]
                self.coeffs = fit_lpc(frame, self.order)
            past = self.history[:, -self.order:].flip(-1)  # x[n-1], x[n-2], ...
            out.append((past * self.coeffs).sum(-1))
        return torch.stack(out, dim=1)


# ----------------------------------------------------------------------------- the likelihood baseline


def mulaw_class_edges(classes: int = 256) -> Tensor:
    """Waveform-domain edges of the μ-law classes, Tensor[classes+1] float64 (first -inf, last +inf).

    Matches :func:`wavegen.audio.dsp.mu_law_encode` (torchaudio): class ``c`` holds the
    samples whose companded value rounds to ``c``, i.e. lies in ``[(c-½)·2/μ - 1, (c+½)·2/μ - 1)``.
    """
    mu = classes - 1
    c = torch.arange(classes + 1, dtype=torch.float64) - 0.5
    y = c * 2.0 / mu - 1.0
    edges = torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
    edges[0], edges[-1] = -math.inf, math.inf
    return edges


def _log_logistic_mass(lo: Tensor, hi: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """log P(lo <= X < hi) for X ~ Logistic(mean, scale), stable in both tails (float64)."""
    a, b = (lo - mean) / scale, (hi - mean) / scale
    # σ(b) - σ(a) = σ(-a) - σ(-b): evaluate on the side where both ends are in the lower tail.
    flip = (a + b) > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = F.logsigmoid(b), F.logsigmoid(a)
    diff = (log_lo - log_hi).clamp_max(-1e-300)
    # log(1 - e^d), accurate for d near 0 and for d very negative.
    log1mexp = torch.where(diff > -math.log(2), torch.log(-torch.expm1(diff)), torch.log1p(-torch.exp(diff)))
    return log_hi + log1mexp


def logistic_scale(residual_rms: Tensor) -> Tensor:
    """A logistic with this scale has the given standard deviation (variance s²π²/3)."""
    return residual_rms * math.sqrt(3.0) / math.pi


MIN_SCALE = 1e-5  # a residual never gets a narrower logistic than this
COLD_SCALE = 0.1  # the first block, with no past to fit on: a broad logistic around 0
# A share of the probability spread evenly over every bin. A fit on near-silence is a very narrow
# logistic, and the onset after it (which no backward-adaptive fit can foresee) would cost thousands
# of bits per sample under the logistic's exponential tails; with this share it costs at most
# -log2(UNIFORM_SHARE / bins) (18 bits for μ-law 256), and anything else at most 0.0015 bits more.
UNIFORM_SHARE = 1e-3


@dataclass
class LPCBaseline:
    """The order-p backward-adaptive predictor with a logistic residual (defaults: 32, 1024, 256)."""

    order: int = DEFAULT_ORDER
    window: int = DEFAULT_WINDOW
    refit: int = DEFAULT_REFIT

    def predictive(self, signal: Tensor) -> tuple[Tensor, Tensor]:
        """signal: Tensor[B, T] (already quantised) -> (mean Tensor[B, T], logistic scale Tensor[B, T]), float64.

        The scale of block ``j`` comes from the residuals of its own coefficients over its
        fitting frame ``signal[j·refit - window : j·refit]`` (past samples only).
        """
        x = signal.detach().float()
        B, T = x.shape
        coeffs = block_coefficients(x, self.order, self.window, self.refit, T)  # [B, J, p]
        J = coeffs.shape[1]
        past = _past_frames(x, self.order)[:, :T].double()  # [B, T, p]
        mean = (past * coeffs.repeat_interleave(self.refit, dim=1)[:, :T].double()).sum(-1)
        # Residuals of block j's predictor over its own frame, a few blocks at a time (memory).
        padded_past = F.pad(past, (0, 0, self.window, 0))  # rows before time 0 are silence
        padded_x = F.pad(x.double(), (self.window, 0))
        rms, energy = [], []
        for first in range(0, J, 16):
            blocks = torch.arange(first, min(J, first + 16), device=x.device)
            index = blocks[:, None] * self.refit + torch.arange(self.window, device=x.device)  # [j, W]
            frame_x = padded_x[:, index]  # [B, j, W]
            predicted = (padded_past[:, index] * coeffs[:, blocks].double()[:, :, None, :]).sum(-1)
            rms.append((frame_x - predicted).pow(2).mean(-1).sqrt())
            energy.append(frame_x.pow(2).sum(-1))
        rms, energy = torch.cat(rms, dim=1), torch.cat(energy, dim=1)  # [B, J]
        scale = logistic_scale(rms).clamp_min(MIN_SCALE)
        silent = energy <= SILENCE_ENERGY
        scale = torch.where(silent, torch.full_like(scale, COLD_SCALE), scale)
        return mean, scale.repeat_interleave(self.refit, dim=1)[:, :T]

    def nll_bits(self, audio: Tensor, quantisation: str = "mulaw", classes: int = 256, bits: int = 16) -> Tensor:
        """Per-sample negative log-likelihood in bits, Tensor[B, T], of audio Tensor[B, T] (or Tensor[T]) in [-1, 1].

        quantisation ``mulaw``: the categorical head's ``classes`` μ-law classes; ``mol``:
        the mixture-of-logistics head's ``2**bits`` uniform levels (edge bins open-ended).
        The clip is first quantised exactly as the WaveNet's head encodes it, and the
        predictor reads the quantised past, as the WaveNet does.
        """
        if audio.dim() == 1:
            audio = audio[None]
        audio = audio.detach().float().clamp(-1, 1)
        bins = classes if quantisation == "mulaw" else 2**bits
        if quantisation == "mulaw":
            from wavegen.audio.dsp import mu_law_decode, mu_law_encode

            target = mu_law_encode(audio, classes)
            signal = mu_law_decode(target, classes).float()
            edges = mulaw_class_edges(classes).to(audio.device)
            lo, hi = edges[target], edges[target + 1]
        elif quantisation == "mol":
            levels = 2**bits - 1
            half_bin = 1.0 / levels
            signal = torch.round((audio + 1) * levels / 2) * 2 / levels - 1
            value = signal.double()
            lo = torch.where(value < -1 + half_bin, torch.full_like(value, -math.inf), value - half_bin)
            hi = torch.where(value > 1 - half_bin, torch.full_like(value, math.inf), value + half_bin)
        else:
            raise ValueError(f"quantisation must be 'mulaw' or 'mol', not {quantisation!r}")
        mean, scale = self.predictive(signal)
        log_mass = _log_logistic_mass(lo, hi, mean, scale)
        log_prob = torch.logaddexp(log_mass + math.log1p(-UNIFORM_SHARE),
                                   torch.full_like(log_mass, math.log(UNIFORM_SHARE / bins)))
        return -log_prob / math.log(2)


def lpc_nll_bits(audio: Tensor, quantisation: str = "mulaw", order: int = DEFAULT_ORDER,
                 window: int = DEFAULT_WINDOW, refit: int = DEFAULT_REFIT, classes: int = 256, bits: int = 16) -> float:
    """Mean bits per sample of the LPC baseline over a clip Tensor[T] or clips Tensor[B, T].

    Comparable to the WaveNet's ``val_bits_per_sample`` on the same clips (same quantisation,
    each clip starting from silence as the WaveNet's validation does).
    """
    return float(LPCBaseline(order, window, refit).nll_bits(audio, quantisation, classes, bits).mean())
