"""Noise schedules: β sequences, their ᾱ products, and the continuous noise levels.

Conventions (WaveGrad, arXiv 2009.00713): a schedule is ``β_1 .. β_N``;
``α_n = 1 - β_n``; ``ᾱ_n = α_1 ··· α_n``; the *noise level* the network is told
is ``√ᾱ_n``, the signal's share of ``y_n = √ᾱ_n · x + √(1 - ᾱ_n) · ε``.
Sampling runs n = N .. 1 starting from ``y_N`` drawn from the noise prior.

The same level is also described by its noise-to-signal ratio
``σ = √(1 - ᾱ) / √ᾱ``: training draws ``log σ`` uniformly over the whole range any
sampler visits (EDM practice, arXiv 2206.00364), and schedules are built from σ
values, which is how they are easiest to read (σ = 0.01 is 40 dB SNR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from wavegen.errors import WavegenError

# The training schedule: 1000 linear steps from 1e-6 to 0.01 (WaveGrad).
TRAIN_STEPS = 1000
TRAIN_BETA_START = 1e-6
TRAIN_BETA_END = 0.01

# Training draws log σ uniformly in [log SIGMA_MIN, log SIGMA_MAX]: from 60 dB SNR (finer
# than any schedule's last step needs) to -26 dB (where y is prior noise for any purpose).
SIGMA_MIN = 1e-3
SIGMA_MAX = 20.0
# Default few-step schedules span σ from DEFAULT_SIGMA_LOW to DEFAULT_SIGMA_HIGH geometrically.
DEFAULT_SIGMA_LOW = 0.02
DEFAULT_SIGMA_HIGH = 10.0

# Published few-step schedules (white-noise WaveGrad/DiffWave), kept as search starting points.
WAVEGRAD_6 = (1e-6, 1.8929e-5, 1.1943e-4, 1.0048e-3, 1.1094e-2, 6.0e-2)
DIFFWAVE_FAST_6 = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)


@dataclass(frozen=True)
class NoiseSchedule:
    """An inference (or training) schedule ``β_1 .. β_N``, all derived quantities cached."""

    betas: tuple[float, ...]

    def __post_init__(self):
        betas = tuple(float(b) for b in self.betas)
        if not betas:
            raise WavegenError("a noise schedule needs at least one step")
        if not all(math.isfinite(b) and 0.0 < b < 1.0 for b in betas):
            raise WavegenError(f"noise schedule betas must lie in (0, 1), got {list(betas)}")
        object.__setattr__(self, "betas", betas)

    @classmethod
    def linear(cls, steps: int, start: float, end: float) -> "NoiseSchedule":
        if steps == 1:
            return cls((float(end),))
        return cls(tuple(start + (end - start) * i / (steps - 1) for i in range(steps)))

    @classmethod
    def geometric(cls, steps: int, start: float, end: float) -> "NoiseSchedule":
        """``steps`` betas evenly spaced in log between ``start`` and ``end``."""
        if steps == 1:
            return cls((float(end),))
        ratio = (end / start) ** (1.0 / (steps - 1))
        return cls(tuple(start * ratio**i for i in range(steps)))

    @classmethod
    def from_sigmas(cls, sigmas: Sequence[float]) -> "NoiseSchedule":
        """A schedule whose levels have noise-to-signal ratios ``σ_1 < ... < σ_N``."""
        sigmas = [float(x) for x in sigmas]
        if not sigmas or any(not (x > 0 and math.isfinite(x)) for x in sigmas):
            raise WavegenError(f"schedule sigmas must be positive and finite, got {sigmas}")
        if any(b <= a for a, b in zip(sigmas, sigmas[1:])):
            raise WavegenError(f"schedule sigmas must increase, got {sigmas}")
        alpha_bars = [1.0 / (1.0 + x * x) for x in sigmas]
        betas, prev = [], 1.0
        for ab in alpha_bars:
            betas.append(1.0 - ab / prev)
            prev = ab
        return cls(tuple(betas))

    @property
    def sigmas(self) -> list[float]:
        """σ_1 .. σ_N = √(1-ᾱ_n)/√ᾱ_n (increasing)."""
        return [math.sqrt((1.0 - a) / a) for a in self.alpha_bars]

    def __len__(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> list[float]:
        return [1.0 - b for b in self.betas]

    @property
    def alpha_bars(self) -> list[float]:
        """ᾱ_1 .. ᾱ_N, computed in float64 (products of 1000 factors near 1)."""
        out, acc = [], 1.0
        for a in self.alphas:
            acc *= a
            out.append(acc)
        return out

    @property
    def noise_levels(self) -> list[float]:
        """√ᾱ_1 .. √ᾱ_N: what the network is told at each step (decreasing)."""
        return [math.sqrt(a) for a in self.alpha_bars]

    def step_coefficients(self, n: int, eta: float = 1.0) -> tuple[float, float, float]:
        """(c1, c2, σ) of the reverse step from ``y_n`` to ``y_{n-1}`` (n = 1 .. N).

        ``y_{n-1} = c1 · (y_n - c2 · ε̂) + σ · z``. The step is DDIM's (arXiv 2010.02502)
        with stochasticity ``eta``: ``x̂ = (y_n - s_n ε̂)/a_n``, then
        ``y_{n-1} = a_{n-1} x̂ + √(s_{n-1}² - σ²) ε̂ + σ z`` with ``σ = eta ·`` the DDPM
        posterior deviation ``√(β_n (1 - ᾱ_{n-1}) / (1 - ᾱ_n))``. ``eta = 1`` is exactly
        the DDPM ancestral step, ``eta = 0`` the deterministic one. The last step (n = 1)
        returns ``x̂`` itself (σ = 0), so a perfect noise estimate gives back the signal.
        """
        if not 0.0 <= eta <= 1.0:
            raise WavegenError(f"eta must lie in [0, 1], got {eta}")
        beta = self.betas[n - 1]
        alpha_bar = self.alpha_bars[n - 1]
        prev = self.alpha_bars[n - 2] if n > 1 else 1.0
        a, s = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        a_prev, s_prev = math.sqrt(prev), math.sqrt(1.0 - prev)
        sigma = eta * math.sqrt(beta * (1.0 - prev) / (1.0 - alpha_bar)) if n > 1 else 0.0
        keep = math.sqrt(max(s_prev * s_prev - sigma * sigma, 0.0))
        c1 = a_prev / a
        c2 = s - keep * a / a_prev
        return c1, c2, sigma

    def to_list(self) -> list[float]:
        return list(self.betas)


def training_schedule() -> NoiseSchedule:
    return NoiseSchedule.linear(TRAIN_STEPS, TRAIN_BETA_START, TRAIN_BETA_END)


def level_from_sigma(sigma: Tensor) -> Tensor:
    """Noise-to-signal ratios σ -> noise levels √ᾱ = 1/√(1+σ²) (any shape)."""
    return torch.rsqrt(1.0 + sigma * sigma)


def sigma_from_level(level: Tensor) -> Tensor:
    """Noise levels √ᾱ -> σ = √(1-ᾱ)/√ᾱ (any shape); levels are kept inside (0, 1)."""
    level = level.clamp(1e-6, 1.0 - 1e-7)
    return torch.sqrt(1.0 - level * level) / level


def sample_training_levels(batch: int, generator: torch.Generator | None = None, device=None,
                           sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> Tensor:
    """Tensor[batch] continuous noise levels √ᾱ for training, log σ uniform in [log σ_min, log σ_max].

    Every sampler's levels lie in this range, and each decade of σ gets the same share
    of the training draws, so the last, hiss-removing steps are trained as much as the
    first (WaveGrad's linear-β draws put most of their mass at very low SNR).
    """
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    log_sigma = math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min))
    return level_from_sigma(log_sigma.exp()).float().to(device)


def default_schedule(steps: int) -> NoiseSchedule:
    """The schedule for ``steps`` steps when none was searched or stored: σ geometric
    from :data:`DEFAULT_SIGMA_LOW` to :data:`DEFAULT_SIGMA_HIGH` (one step: the high end)."""
    if steps < 1:
        raise WavegenError(f"the number of diffusion steps must be positive, got {steps}")
    if steps == 1:
        return NoiseSchedule.from_sigmas([DEFAULT_SIGMA_HIGH])
    ratio = (DEFAULT_SIGMA_HIGH / DEFAULT_SIGMA_LOW) ** (1.0 / (steps - 1))
    return NoiseSchedule.from_sigmas([DEFAULT_SIGMA_LOW * ratio**i for i in range(steps)])


def schedule_from(betas: Sequence[float] | NoiseSchedule) -> NoiseSchedule:
    return betas if isinstance(betas, NoiseSchedule) else NoiseSchedule(tuple(betas))
