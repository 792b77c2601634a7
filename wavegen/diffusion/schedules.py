"""Noise schedules: β sequences, their ᾱ products, and the continuous noise levels.

Conventions (WaveGrad, arXiv 2009.00713): a schedule is ``β_1 .. β_N``;
``α_n = 1 - β_n``; ``ᾱ_n = α_1 ··· α_n``; the *noise level* the network is told
is ``√ᾱ_n``, the signal's share of ``y_n = √ᾱ_n · x + √(1 - ᾱ_n) · ε``.
Sampling runs n = N .. 1 starting from ``y_N ~ N(0, I)``.
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

# Published few-step schedules, the starting points of the schedule search.
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

    def step_coefficients(self, n: int) -> tuple[float, float, float]:
        """(c1, c2, σ) of the reverse step from ``y_n`` to ``y_{n-1}`` (n = 1 .. N).

        ``y_{n-1} = c1 · (y_n - c2 · ε̂) + σ · z`` with ``c1 = 1/√α_n``,
        ``c2 = β_n / √(1 - ᾱ_n)`` and σ the posterior standard deviation
        ``√(β_n (1 - ᾱ_{n-1}) / (1 - ᾱ_n))``, which is 0 for the last step (n = 1).
        """
        beta = self.betas[n - 1]
        alpha_bar = self.alpha_bars[n - 1]
        prev = self.alpha_bars[n - 2] if n > 1 else 1.0
        c1 = 1.0 / math.sqrt(1.0 - beta)
        c2 = beta / math.sqrt(1.0 - alpha_bar)
        sigma = math.sqrt(beta * (1.0 - prev) / (1.0 - alpha_bar)) if n > 1 else 0.0
        return c1, c2, sigma

    def to_list(self) -> list[float]:
        return list(self.betas)


def training_schedule() -> NoiseSchedule:
    return NoiseSchedule.linear(TRAIN_STEPS, TRAIN_BETA_START, TRAIN_BETA_END)


def training_level_bounds(schedule: NoiseSchedule | None = None) -> Tensor:
    """Tensor[N + 1] of √ᾱ_0 = 1, √ᾱ_1, ..., √ᾱ_N: the edges of the training intervals."""
    schedule = schedule or training_schedule()
    return torch.tensor([1.0, *schedule.noise_levels], dtype=torch.float64)


def sample_training_levels(batch: int, generator: torch.Generator | None = None,
                           bounds: Tensor | None = None, device=None) -> Tensor:
    """Tensor[batch] continuous noise levels for training (WaveGrad's recipe).

    Pick a step ``s`` uniformly from 1..N, then a level uniformly between the
    adjacent levels ``√ᾱ_s`` and ``√ᾱ_{s-1}``: the network learns every level in
    [√ᾱ_N, 1], not only N discrete ones, so any inference schedule can use it.
    """
    bounds = training_level_bounds() if bounds is None else bounds
    steps = len(bounds) - 1
    s = torch.randint(1, steps + 1, (batch,), generator=generator)
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    hi, lo = bounds[s - 1], bounds[s]
    return (lo + u * (hi - lo)).float().to(device)


def default_schedule(steps: int) -> NoiseSchedule:
    """A reasonable schedule for ``steps`` steps when none was searched or stored.

    6 steps: WaveGrad's published schedule. 1000: the training schedule. Otherwise a
    geometric run from 1e-6 towards a final β that leaves about as much noise as the
    6-step schedule at its start (fewer steps need a larger final β), or the linear
    training schedule's spacing for many steps.
    """
    if steps < 1:
        raise WavegenError(f"the number of diffusion steps must be positive, got {steps}")
    if steps == 6:
        return NoiseSchedule(WAVEGRAD_6)
    if steps >= 50:
        return NoiseSchedule.linear(steps, TRAIN_BETA_START, TRAIN_BETA_END * TRAIN_STEPS / steps)
    if steps == 1:
        return NoiseSchedule((0.5,))
    return NoiseSchedule.geometric(steps, 1e-6 if steps > 2 else 1e-3, 0.06 if steps >= 6 else 0.3)


def schedule_from(betas: Sequence[float] | NoiseSchedule) -> NoiseSchedule:
    return betas if isinstance(betas, NoiseSchedule) else NoiseSchedule(tuple(betas))
