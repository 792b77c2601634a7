"""Backward-adaptive linear prediction (LPC), and the LPC likelihood baseline (torch only).

A linear predictor of order ``p`` guesses sample ``n`` from the ``p`` before it::

    pred[n] = Σ_{k=1..p} a_k · x[n-k]

*Backward adaptive* means the coefficients are fitted on samples the decoder has
already produced, so encoder and decoder (or training and sampling) agree without
sending anything: sample ``n`` lies in block ``j = n // refit``, whose coefficients
are fitted on ``x[j·refit - window : j·refit]`` (digital silence before time 0).
The fit is the autocorrelation method: an asymmetrically windowed frame (weighted toward
its recent end), its autocorrelation with a tiny white-noise correction (``r[0]`` raised
by 90 dB below itself: keeps the Toeplitz system positive definite), then the
Levinson–Durbin recursion. A frame of digital silence gets all-zero coefficients.

Two fitting methods (``method``). ``autocorrelation`` (the default, and the baseline's) is the
above. ``burg`` (Burg's method) fits the reflection coefficients directly on the frame's forward
and backward prediction errors, with no window: its resonances are not widened by a window's main
lobe, so a predictor refitted on its own output keeps partials as narrow as the prompt's (free-running
from training prompts of simple harmony, ``benchmarks/lpc_fit.py --compare-methods --simplest``:
peak-energy share 0.93 against the autocorrelation fit's 0.71, chroma entropy 2.52 against 2.91, the
prompts' 0.93 and 2.48; ``docs/ar_study/README.md`` section 7). Both always give a stable
(minimum-phase) predictor.

No lag window (the Gaussian smoothing of the autocorrelation speech codecs use): piano is
sums of sharp partials, and smoothing the envelope widens every resonance at every refit.
Measured on the embedded set's *training* clips (``benchmarks/lpc_fit.py``): with a 60 Hz lag
window and a -40 dB correction, order 128 scored 0.5 bits/sample worse, and a free-running
predictor refitted on its own output blurred into noise within a second (peak-energy share
0.07); without them it keeps the prompt's partials.

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

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_ORDER = 32
DEFAULT_WINDOW = 1024
DEFAULT_REFIT = 256
# Lag window: Gaussian with this standard deviation in cycles per sample (0: none, see the
# module docstring), and the white-noise correction factor.
LAG_SIGMA = 0.0
WHITE_NOISE = 1e-9
# A frame whose energy is below this is digital silence: no fit.
SILENCE_ENERGY = 1e-12


# ----------------------------------------------------------------------------- fitting


def levinson_durbin(r: Tensor) -> Tensor:
    """Autocorrelations Tensor[..., p+1] -> predictor coefficients Tensor[..., p] (``pred = Σ a_k x[n-k]``), float64.

    Batched over the leading axes. Where ``r[0]`` is (near) zero the coefficients are zero.
    The recursion runs in numpy on the CPU: it is p sequential steps of tiny vector operations,
    where each torch call's overhead (not the arithmetic) dominates; numpy is 2-8x faster here
    (measured at order 160: 3.7 against 28.7 ms for 2 frames, the sampling case).
    """
    device = r.device
    r = r.detach().to("cpu", torch.float64).numpy()
    order = r.shape[-1] - 1
    silent = r[..., 0] <= SILENCE_ENERGY
    r = np.where(silent[..., None], 0.0, r)
    r[..., 0] = np.where(silent, 1.0, r[..., 0])
    a = np.zeros(r.shape[:-1] + (order,))
    error = r[..., 0].copy()
    for i in range(order):
        # Reflection coefficient of stage i+1: the part of r[i+1] the current predictor misses.
        acc = r[..., i + 1] - np.einsum("...j,...j->...", a[..., :i], r[..., i:0:-1])
        k = acc / error
        previous = a[..., :i].copy()
        a[..., :i] = previous - k[..., None] * previous[..., ::-1]
        a[..., i] = k
        error = np.maximum(error * (1.0 - k * k), error * 1e-9)
    return torch.from_numpy(a).to(device)


def burg(frames: Tensor, order: int) -> Tensor:
    """Tensor[..., W] frames -> Tensor[..., order] coefficients (``pred = Σ a_k x[n-k]``) by Burg's method, float64.

    Stage ``m`` picks the reflection coefficient that minimises the summed energy of the forward and
    backward errors (so ``|k| <= 1``: stable), then updates both errors. Batched over the leading axes; in
    numpy for the reason :func:`levinson_durbin` gives. A frame of digital silence gets all-zero coefficients.
    """
    device = frames.device
    x = frames.detach().to("cpu", torch.float64).numpy()
    a = np.zeros(x.shape[:-1] + (order + 1,))
    a[..., 0] = 1.0
    forward, backward = x[..., 1:], x[..., :-1]  # the errors of the order-0 predictor, aligned
    for m in range(order):
        energy = np.einsum("...i,...i->...", forward, forward) + np.einsum("...i,...i->...", backward, backward)
        cross = np.einsum("...i,...i->...", forward, backward)
        k = np.where(energy > SILENCE_ENERGY, -2.0 * cross / np.maximum(energy, SILENCE_ENERGY), 0.0)
        a[..., 1 : m + 2] = a[..., 1 : m + 2] + k[..., None] * a[..., m::-1][..., : m + 1]
        forward, backward = (forward + k[..., None] * backward)[..., 1:], (backward + k[..., None] * forward)[..., :-1]
    return torch.from_numpy(-a[..., 1:]).to(device)


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


METHODS = ("autocorrelation", "burg")


def check_method(method: str) -> str:
    """The fitting method's name, or a ValueError naming the choices."""
    if method not in METHODS:
        raise ValueError(f"lpc_method must be one of {', '.join(METHODS)}, not {method!r}")
    return method


def fit_lpc(frames: Tensor, order: int, method: str = "autocorrelation") -> Tensor:
    """Tensor[..., W] past-sample frames -> Tensor[..., order] coefficients (float64 inside, float32 out)."""
    if check_method(method) == "burg":
        return burg(frames, order).float()
    x = frames.double() * _analysis_window(frames.shape[-1], torch.float64, frames.device)
    n = x.shape[-1]
    size = 1 << (2 * n - 1).bit_length()  # linear (not circular) correlation
    spectrum = torch.fft.rfft(x, size)
    r = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[..., : order + 1]
    lags = torch.arange(order + 1, dtype=torch.float64, device=frames.device)
    r = r * torch.exp(-0.5 * (2 * math.pi * LAG_SIGMA * lags) ** 2)
    r[..., 0] = r[..., 0] * (1.0 + WHITE_NOISE)
    return levinson_durbin(r).float()


def block_coefficients(x: Tensor, order: int, window: int, refit: int, length: Optional[int] = None,
                       method: str = "autocorrelation") -> Tensor:
    """Coefficients of every block, Tensor[B, J, order]; block ``j`` predicts samples ``j·refit ..``.

    x: Tensor[B, T]; ``length`` (default T+1) is how many predictions are wanted.
    """
    length = x.shape[-1] + 1 if length is None else length
    frames = _block_frames(x.detach().float(), window, 0, refit, length)
    return fit_lpc(frames, order, method)


def _block_frames(x: Tensor, window: int, extra: int, refit: int, length: int) -> Tensor:
    """Tensor[B, T] -> Tensor[B, J, extra + window]: ``x[j·refit - window - extra : j·refit]`` per block.

    Samples before time 0 (and after T, never read by a causal user) are zeros: silence.
    """
    blocks = (length + refit - 1) // refit
    padded = F.pad(x, (window + extra, max(0, blocks * refit - x.shape[-1])))
    index = torch.arange(blocks, device=x.device)[:, None] * refit + torch.arange(window + extra, device=x.device)
    return padded[:, index]


def _filter_blocks(ext: Tensor, coeffs: Tensor, residual: bool) -> Tensor:
    """Per-block linear prediction by one grouped convolution.

    ext: Tensor[B, J, order + n] (each block's ``n`` samples after ``order`` of past),
    coeffs: Tensor[B, J, order] -> Tensor[B, J, n]: the predictions of those ``n`` samples
    (``residual``: the samples minus their predictions).
    """
    B, J, width = ext.shape
    order = coeffs.shape[-1]
    taps = -coeffs.flip(-1).to(ext.dtype)  # cross-correlation: tap m reads sample n - order + m
    one = torch.ones_like(taps[..., :1]) if residual else torch.zeros_like(taps[..., :1])
    weight = torch.cat([taps, one], dim=-1).reshape(B * J, 1, order + 1)
    out = F.conv1d(ext.reshape(1, B * J, width), weight, groups=B * J).reshape(B, J, width - order)
    return out if residual else -out


def block_predictions(x: Tensor, coeffs: Tensor, refit: int, length: int) -> Tensor:
    """x: Tensor[B, T], block coefficients Tensor[B, J, p] -> predictions Tensor[B, length] (float64).

    ``pred[:, n]`` uses block ``n // refit``'s coefficients on ``x[:, n-p : n]`` (zeros before 0).
    """
    order = coeffs.shape[-1]
    J = coeffs.shape[1]
    padded = F.pad(x.double(), (order, J * refit - x.shape[-1]))
    index = torch.arange(J, device=x.device)[:, None] * refit + torch.arange(order + refit, device=x.device)
    return _filter_blocks(padded[:, index], coeffs, residual=False).reshape(x.shape[0], -1)[:, :length]


def block_scales_from_frames(ext: Tensor, coeffs: Tensor) -> Tensor:
    """ext: Tensor[B, J, order + window] fitting frames with ``order`` samples of past before each,
    coeffs: Tensor[B, J, order] -> Tensor[B, J] float64: the logistic whose variance is the mean square of the
    block's own residuals over its frame, at least :data:`MIN_SCALE`; :data:`COLD_SCALE` where the frame is
    digital silence (nothing to fit on)."""
    order = coeffs.shape[-1]
    residual = _filter_blocks(ext.double(), coeffs.double(), residual=True)
    scale = logistic_scale(residual.pow(2).mean(-1).sqrt()).clamp_min(MIN_SCALE)
    silent = ext[..., order:].double().pow(2).sum(-1) <= SILENCE_ENERGY
    return torch.where(silent, torch.full_like(scale, COLD_SCALE), scale)


def lpc_predict(x: Tensor, order: int = DEFAULT_ORDER, window: int = DEFAULT_WINDOW,
                refit: int = DEFAULT_REFIT, method: str = "autocorrelation") -> Tensor:
    """Backward-adaptive predictions Tensor[B, T+1] of x: Tensor[B, T] (``pred[:, n]`` sees ``x[:, :n]`` only).

    The last column predicts the sample after the clip.
    """
    x = x.detach().float()
    length = x.shape[-1] + 1
    coeffs = block_coefficients(x, order, window, refit, length, method)  # [B, J, p]
    return block_predictions(x, coeffs, refit, length).float()


def logistic_scale(residual_rms: Tensor) -> Tensor:
    """A logistic with this scale has the given standard deviation (variance s²π²/3)."""
    return residual_rms * math.sqrt(3.0) / math.pi


MIN_SCALE = 1e-5  # a residual never gets a narrower logistic than this
COLD_SCALE = 0.1  # a block with no past to fit on: a broad logistic around 0


@dataclass
class LPCState:
    """The sample-by-sample form of :func:`lpc_predict` and :meth:`LPCBaseline.predictive` for a batch of streams.

    history: Tensor[B, window + order] the last samples (oldest first; zeros = silence before 0);
    coeffs: Tensor[B, order] the current block's coefficients; scale: Tensor[B] its logistic
    scale (float64); n: index of the next sample to predict; method: how coefficients are fitted.
    """

    order: int
    window: int
    refit: int
    history: Tensor
    coeffs: Tensor
    scale: Tensor
    n: int = 0
    method: str = "autocorrelation"

    @classmethod
    def empty(cls, batch: int, order: int, window: int, refit: int, device=None,
              method: str = "autocorrelation") -> "LPCState":
        history = torch.zeros(batch, window + order, device=device)
        scale = torch.full((batch,), COLD_SCALE, dtype=torch.float64, device=device)
        return cls(order, window, refit, history, torch.zeros(batch, order, device=device), scale, 0, method)

    def predictive(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append Tensor[B, n] samples; return (mean, scale) of the sample after each, Tensor[B, n] float64.

        Column ``i`` equals ``LPCBaseline.predictive`` of all samples so far (and one more) at the next index.
        A chunk of a block or more (a prompt) is computed at once, block by block; shorter ones sample by sample.
        """
        if values.shape[1] >= self.refit:
            return self._predictive_chunk(values.float())
        means, scales = [], []
        for i in range(values.shape[1]):
            self.history = torch.cat([self.history[:, 1:], values[:, i : i + 1].float()], dim=1)
            self.n += 1
            if self.n % self.refit == 0:
                self.coeffs = fit_lpc(self.history[:, -self.window:], self.order, self.method)
                ext = self.history[:, None].double()
                self.scale = block_scales_from_frames(ext, self.coeffs[:, None])[:, 0]
            past = self.history[:, -self.order:].flip(-1).double()  # x[n-1], x[n-2], ...
            means.append((past * self.coeffs.double()).sum(-1))
            scales.append(self.scale)
        return torch.stack(means, dim=1), torch.stack(scales, dim=1)

    def _predictive_chunk(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`predictive` for a long chunk: the blocks it enters are fitted together and predicted by
        one grouped convolution (the same arithmetic as :class:`LPCBaseline`)."""
        B, L = values.shape
        p, W, R, n = self.order, self.window, self.refit, self.n
        full = torch.cat([self.history, values], dim=1)  # absolute samples n-W-p .. n+L-1
        start = n - W - p
        first, last = n // R, (n + L) // R  # the block of sample n (coefficients held) .. of sample n+L
        new = torch.arange(first + 1, last + 1, device=values.device)  # blocks that start inside the chunk
        frames = full[:, (new[:, None] * R - W - p - start) + torch.arange(W + p, device=values.device)]
        coeffs = torch.cat([self.coeffs[:, None], fit_lpc(frames[..., p:], p, self.method)], dim=1)  # [B, J, p]
        scales = torch.cat([self.scale[:, None], block_scales_from_frames(frames.double(), coeffs[:, 1:])], dim=1)
        # Predict every sample of those blocks (from block `first`'s start), then keep n+1 .. n+L.
        blocks = last - first + 1
        base = first * R - p - start  # >= W - R + 1 > 0: the past of block `first` is in the history
        segment = F.pad(full[:, base:], (0, max(0, blocks * R + p - (full.shape[1] - base))))
        index = torch.arange(blocks, device=values.device)[:, None] * R + torch.arange(p + R, device=values.device)
        predictions = _filter_blocks(segment[:, index].double(), coeffs, residual=False).reshape(B, -1)
        offset = n + 1 - first * R
        mean = predictions[:, offset : offset + L]
        scale = scales.repeat_interleave(R, dim=1)[:, offset : offset + L]
        self.history = full[:, -(W + p):]
        self.n = n + L
        self.coeffs, self.scale = coeffs[:, -1], scales[:, -1]
        return mean, scale

    def predict(self, values: Tensor) -> Tensor:
        """Append Tensor[B, n] samples; return the predictions of the sample after each, Tensor[B, n] float32.

        Column ``i`` equals ``lpc_predict(all samples so far)[:, m + 1]`` for the sample at index ``m``.
        """
        return self.predictive(values)[0].float()


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


def log_logistic_mass(lo: Tensor, hi: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """log P(lo <= X < hi) for X ~ Logistic(mean, scale), stable in both tails (use float64: see the callers)."""
    a, b = (lo - mean) / scale, (hi - mean) / scale
    # σ(b) - σ(a) = σ(-a) - σ(-b): evaluate on the side where both ends are in the lower tail.
    flip = (a + b) > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = F.logsigmoid(b), F.logsigmoid(a)
    diff = (log_lo - log_hi).clamp_max(-torch.finfo(lo.dtype).tiny)
    # log(1 - e^d), accurate for d near 0 and for d very negative.
    log1mexp = torch.where(diff > -math.log(2), torch.log(-torch.expm1(diff)), torch.log1p(-torch.exp(diff)))
    return log_hi + log1mexp


# A share of the probability spread evenly over every bin. A fit on near-silence is a very narrow
# logistic, and the onset after it (which no backward-adaptive fit can foresee) would cost thousands
# of bits per sample under the logistic's exponential tails; with this share it costs at most
# -log2(UNIFORM_SHARE / bins) (18 bits for μ-law 256), and anything else at most 0.0015 bits more.
UNIFORM_SHARE = 1e-3


@dataclass
class LPCBaseline:
    """The order-p backward-adaptive predictor with a logistic residual (defaults: 32, 1024, 256, autocorrelation)."""

    order: int = DEFAULT_ORDER
    window: int = DEFAULT_WINDOW
    refit: int = DEFAULT_REFIT
    method: str = "autocorrelation"

    def predictive(self, signal: Tensor) -> tuple[Tensor, Tensor]:
        """signal: Tensor[B, T] (already quantised) -> (mean Tensor[B, T], logistic scale Tensor[B, T]), float64.

        The scale of block ``j`` comes from the residuals of its own coefficients over its
        fitting frame ``signal[j·refit - window : j·refit]`` (past samples only).
        """
        x = signal.detach().float()
        T = x.shape[-1]
        # Each block's fitting frame with `order` samples of past before it, cut once: the fit reads
        # the frame, the scale the block's residuals over it.
        ext = _block_frames(x, self.window, self.order, self.refit, T)  # [B, J, order + window]
        coeffs = fit_lpc(ext[..., self.order:], self.order, self.method)  # [B, J, p]
        mean = block_predictions(x, coeffs, self.refit, T)
        scale = block_scales_from_frames(ext, coeffs)
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
        log_mass = log_logistic_mass(lo, hi, mean, scale)
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
