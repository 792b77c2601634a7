"""The slowness penalty and the controller that steers its weight to a target event rate.

Run-length codes are cheap only when the codes change rarely. The penalty
charges for change between consecutive frames of the (bounded, pre-rounding)
code values z: Tensor[B, C, F]. Three kinds, each averaged over frame pairs:

- ``group``: Σ_t ||z_t − z_{t−1}||_2, group-sparse over the channel vector: it
  favours frames where *no* channel moves, which is exactly what shortens the
  event list (an event ends when any channel changes). It worked best in
  "Variable-rate discrete representation learning" (arXiv 2103.06089);
- ``l1``: Σ_t Σ_c |z_{t,c} − z_{t−1,c}|, sparse per channel;
- ``l2``: Σ_t Σ_c (z_{t,c} − z_{t−1,c})², smooth rather than sparse.

Which weight gives a wanted event rate depends on the data, the model and the
training stage, so :class:`RateController` adjusts it every step: an integral
controller in log space that multiplies the weight by ``exp(gain · e)`` with the
relative error ``e = (measured − target) / target`` (at least -1; capped at 10 so a
freak batch cannot jump the weight). Working on
the log keeps the weight positive and makes the step relative, so one gain suits
weights that span orders of magnitude. The error is linear in the rate (not its
log) so that the weight settles where the *arithmetic* mean of the noisy per-batch
rates meets the target, which is what an average event rate means. Its state lives
in buffers, so checkpoints resume it exactly.

Early in training the decoder does not use the codes yet; they then change rarely
whatever the weight, and a controller would wind the weight down for nothing (and
overshoot once the codes come alive). ``warmup`` handles that: the weight ramps up
linearly from 0 over that many steps, and control starts when the ramp ends.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

SLOWNESS_KINDS = ("group", "l1", "l2")
_MAX_ERROR = 10.0


def slowness_penalty(z: Tensor, kind: str = "group") -> Tensor:
    """z: Tensor[B, C, F] code values -> scalar penalty, mean over the B·(F-1) frame pairs."""
    if kind not in SLOWNESS_KINDS:
        raise ValueError(f"unknown slowness penalty {kind!r}; choose one of {SLOWNESS_KINDS}")
    if z.shape[-1] < 2:
        return z.sum() * 0.0
    diff = z[..., 1:] - z[..., :-1]  # [B, C, F-1]
    if kind == "group":
        squared = diff.pow(2).sum(dim=1)
        moved = squared > 0
        # sqrt has an infinite slope at 0: take it only where something moved (gradient 0 elsewhere).
        per_pair = torch.where(moved, torch.sqrt(torch.where(moved, squared, torch.ones_like(squared))), 0.0)
    elif kind == "l1":
        per_pair = diff.abs().sum(dim=1)
    else:
        per_pair = diff.pow(2).sum(dim=1)
    return per_pair.mean()


class RateController(nn.Module):
    """Steers the slowness weight so the measured event rate approaches ``target`` events/s.

    ``target=None`` switches control off: the weight stays at ``initial_weight``
    (use ``initial_weight=0`` for fixed-rate codes without any slowness penalty).

    Buffers (saved with the model): ``log_weight`` (the controlled variable),
    ``rate_ema`` (a smoothed measured rate, for logs and tests) and ``updates``.
    """

    def __init__(
        self,
        target: Optional[float],
        initial_weight: float = 1.0,
        gain: float = 0.02,
        min_weight: float = 1e-4,
        max_weight: float = 1e3,
        warmup: int = 0,
        rate_smoothing: float = 0.98,
    ):
        super().__init__()
        if target is not None and target <= 0:
            raise ValueError(f"the target event rate must be positive, got {target}")
        if initial_weight < 0:
            raise ValueError(f"the slowness weight must not be negative, got {initial_weight}")
        if target is not None and not 0 < min_weight <= initial_weight <= max_weight:
            raise ValueError(
                f"the initial slowness weight {initial_weight} must lie in [{min_weight}, {max_weight}]"
            )
        self.target = None if target is None else float(target)
        self.penalised = target is not None or initial_weight > 0
        self.gain = float(gain)
        self.min_weight = float(min_weight)
        self.max_weight = float(max_weight)
        if warmup < 0:
            raise ValueError(f"the controller warm-up must not be negative, got {warmup}")
        self.warmup = int(warmup)
        self.rate_smoothing = float(rate_smoothing)
        # float64: thousands of small relative steps must not drift through rounding.
        initial_log = math.log(initial_weight) if initial_weight > 0 else 0.0
        self.register_buffer("log_weight", torch.tensor(initial_log, dtype=torch.float64))
        self.register_buffer("rate_ema", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.long))

    @property
    def enabled(self) -> bool:
        return self.target is not None

    @property
    def ramp(self) -> float:
        """Warm-up factor: rises linearly from 0 to 1 over the first ``warmup`` updates."""
        return min(1.0, int(self.updates) / self.warmup) if self.warmup else 1.0

    @property
    def weight(self) -> float:
        """The current slowness weight (0 when the penalty is off)."""
        return self.ramp * float(torch.exp(self.log_weight)) if self.penalised else 0.0

    @torch.no_grad()
    def update(self, measured_rate: float) -> float:
        """Record one training step's measured event rate (events/s); returns the new weight."""
        measured_rate = float(measured_rate)
        beta = self.rate_smoothing if int(self.updates) > 0 else 0.0
        self.rate_ema.mul_(beta).add_((1 - beta) * measured_rate)
        self.updates.add_(1)
        # No control during the warm-up: codes that the decoder does not use yet change rarely
        # whatever the weight, and integrating that error would wind the weight down for nothing.
        if self.enabled and int(self.updates) > self.warmup:
            # The relative error is at least -1 (no events at all); above, it is capped only
            # loosely, as a cap biases the settled mean rate upwards whenever it bites.
            error = min((measured_rate - self.target) / self.target, _MAX_ERROR)
            new_log = float(self.log_weight) + self.gain * error
            self.log_weight.fill_(min(max(new_log, math.log(self.min_weight)), math.log(self.max_weight)))
        return self.weight

    def extra_repr(self) -> str:
        return (f"target={self.target}, gain={self.gain}, weight range=[{self.min_weight}, {self.max_weight}], "
                f"warmup={self.warmup}")
