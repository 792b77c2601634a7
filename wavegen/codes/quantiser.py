"""Bounded scalar quantisation: a few channels, each rounded to a handful of levels.

No codebook is learnt (finite scalar quantisation, FSQ, arXiv 2309.15505). Each
channel ``c`` with ``L_c`` levels is squashed into a bounded interval, rounded to
the nearest integer with a straight-through gradient, and the integer is mapped
to an index in ``0 .. L_c-1`` and to a grid value in [-1, 1]::

    index  i in {0, ..., L-1}
    value  v = 2·i / (L-1) - 1        (L evenly spaced points from -1 to 1)

Two bounds are offered:

- ``"tanh"`` (FSQ): ``b = h·tanh(u + s) - o`` with half-width ``h = (L-1)/2·(1-ε)``.
  For an even ``L`` the reachable integers are not symmetric around zero
  (``-L/2 .. L/2-1``), so FSQ shifts the output by ``o = 1/2``; the input shift
  ``s = atanh(o/h)`` keeps ``u = 0`` mapped to ``b = 0``. For an odd ``L``, ``o = s = 0``.
- ``"clip"`` (Piano Genie, arXiv 1810.05246): the pre-activation is read in grid
  units and clipped to [-1, 1] with a straight-through gradient; the margin penalty
  ``mean(max(|u| - 1, 0)²)`` pulls values back into range, since the clip itself
  passes gradient that would otherwise let them drift away.

The margin penalty is returned for both bounds (for ``"tanh"`` it keeps the
pre-activations out of the saturated part of the tanh, where gradients vanish).

The shipped configs use ``"clip"``: with the tanh bound, our unnormalised encoder
trained with Adam pushed its pre-activations past the saturation within a few
steps, after which the vanishing tanh gradient could not pull them back (|u| grew
to ~1000 in 40 steps and the codes froze). The clip's straight-through gradient
never vanishes, and the margin penalty holds the values in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

# FSQ shrinks the tanh range slightly so that the extreme levels are reachable
# by rounding but never sit exactly on the asymptote.
_BOUND_EPS = 1e-3

BOUNDS = ("tanh", "clip")


def round_straight_through(x: Tensor) -> Tensor:
    """Round to the nearest integer in the forward pass; identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def clip_straight_through(x: Tensor, lo: float | Tensor, hi: float | Tensor) -> Tensor:
    """Clamp in the forward pass; identity gradient in the backward pass."""
    return x + (torch.clamp(x, lo, hi) - x).detach()


def margin_penalty(u: Tensor) -> Tensor:
    """Piano Genie's range penalty ``mean(max(|u| - 1, 0)²)`` for values meant to lie in [-1, 1]."""
    return torch.relu(u.abs() - 1.0).pow(2).mean()


@dataclass
class Quantised:
    """The quantiser's outputs for a Tensor[B, C, F] of pre-activations.

    indices: LongTensor[B, C, F] in ``0 .. levels[c]-1``.
    values: Tensor[B, C, F] grid values in [-1, 1] (gradient passes straight through the rounding).
    continuous: Tensor[B, C, F] the bounded values before rounding, in grid units (for the slowness penalty).
    margin: scalar margin penalty of the pre-activations.
    """

    indices: Tensor
    values: Tensor
    continuous: Tensor
    margin: Tensor


class ScalarQuantiser(nn.Module):
    """Per-channel bounded scalar quantisation, ``levels[c]`` levels for channel ``c``.

    Tensor[B, C, F] pre-activations -> :class:`Quantised` (indices, grid values, ...).
    Holds no parameters; ``levels`` is stored as a buffer so it travels with the weights.
    """

    def __init__(self, levels: Sequence[int], bound: str = "tanh"):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels:
            raise ValueError("the quantiser needs at least one channel")
        if any(level < 2 or level > 255 for level in levels):
            raise ValueError(f"levels per channel must lie in 2..255, got {levels}")
        if bound not in BOUNDS:
            raise ValueError(f"unknown quantiser bound {bound!r}; choose one of {BOUNDS}")
        self.bound = bound
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        # The tanh bound's per-channel constants (see the module docstring).
        half_widths = [(level - 1) / 2 * (1 - _BOUND_EPS) for level in levels]
        offsets = [0.5 if level % 2 == 0 else 0.0 for level in levels]
        # With L = 2 the half-width is just under the offset, and no shift can put u = 0 on a
        # level: leave it unshifted (u = 0 then sits on the boundary between the two levels).
        shifts = [math.atanh(o / h) if o < h else 0.0 for o, h in zip(offsets, half_widths)]
        for name, values in (("_half_width", half_widths), ("_offset", offsets), ("_shift", shifts)):
            self.register_buffer(name, torch.tensor(values).reshape(1, -1, 1), persistent=False)

    @property
    def channels(self) -> int:
        return int(self.levels.numel())

    @property
    def levels_list(self) -> list[int]:
        return [int(level) for level in self.levels.tolist()]

    @property
    def codebook_size(self) -> int:
        """Distinct code vectors, the product of the levels (implicit codebook)."""
        return math.prod(self.levels_list)

    @property
    def bits_per_frame(self) -> float:
        """log2 of the codebook size: bits a fixed-rate code spends on each frame."""
        return sum(math.log2(level) for level in self.levels_list)

    def _per_channel(self, x: Tensor) -> Tensor:
        """levels[C] reshaped to broadcast against Tensor[B, C, F]."""
        return x.to(torch.float32).reshape(1, -1, 1)

    def forward(self, u: Tensor) -> Quantised:
        """u: Tensor[B, C, F] unbounded pre-activations -> :class:`Quantised`."""
        if u.dim() != 3 or u.shape[1] != self.channels:
            raise ValueError(f"expected pre-activations Tensor[B, {self.channels}, F], got {tuple(u.shape)}")
        u = u.float()  # rounding to 15 levels needs more precision than bf16 autocast gives
        levels = self._per_channel(self.levels).to(u.device)
        top = levels - 1  # the largest index
        if self.bound == "tanh":
            # Reachable integers: -floor(L/2) .. floor((L-1)/2).
            bounded = torch.tanh(u + self._shift) * self._half_width - self._offset
            rounded = round_straight_through(bounded)
            index_float = rounded + torch.floor(levels / 2)
            continuous_index = bounded + torch.floor(levels / 2)
        else:  # clip: u is read in grid units, [-1, 1] spans the levels
            clipped = clip_straight_through(u, -1.0, 1.0)
            continuous_index = (clipped + 1) * top / 2
            index_float = round_straight_through(continuous_index)
        values = 2 * index_float / top - 1
        continuous = 2 * continuous_index / top - 1
        indices = index_float.detach().round().long()
        return Quantised(indices=indices, values=values, continuous=continuous, margin=margin_penalty(u))

    def noisy_values(self, continuous: Tensor) -> Tensor:
        """Noise substitution: Tensor[B, C, F] continuous values plus uniform noise one level wide.

        Used in place of the rounded values while training the decoder (the additive-noise
        stand-in for quantisation from learned compression). Rounding hides any variation
        smaller than a level, so an encoder whose outputs start small gets no signal that
        spreading them out would help, and the codes stay stuck on one level; with noise
        of a level's width, the decoder can read the values only as far as they rise above
        the noise, which rewards using the whole range. The rounding error at inference
        (at most half a level) lies inside the noise the decoder was trained on.
        """
        step = 2 / (self._per_channel(self.levels).to(continuous.device) - 1)
        return continuous + (torch.rand_like(continuous) - 0.5) * step

    def indices_to_values(self, indices: Tensor) -> Tensor:
        """LongTensor[B, C, F] (or [C, F]) indices -> Tensor of grid values in [-1, 1]."""
        squeeze = indices.dim() == 2
        if squeeze:
            indices = indices[None]
        top = self._per_channel(self.levels).to(indices.device) - 1
        values = 2 * indices.to(torch.float32) / top - 1
        return values[0] if squeeze else values

    def values_to_indices(self, values: Tensor) -> Tensor:
        """Tensor[B, C, F] grid values -> the nearest LongTensor indices (inverse of :meth:`indices_to_values`)."""
        squeeze = values.dim() == 2
        if squeeze:
            values = values[None]
        top = self._per_channel(self.levels).to(values.device) - 1
        indices = torch.round((values.float().clamp(-1, 1) + 1) * top / 2).long()
        return indices[0] if squeeze else indices

    def check_indices(self, indices: Tensor) -> None:
        """Raise ValueError unless LongTensor[..., C, F] holds valid indices for these levels."""
        if indices.dim() < 2 or indices.shape[-2] != self.channels:
            raise ValueError(f"expected code indices Tensor[..., {self.channels}, F], got {tuple(indices.shape)}")
        if indices.dtype.is_floating_point:
            raise ValueError(f"code indices must be integers, got {indices.dtype}")
        top = self.levels.to(indices.device).reshape(-1, 1)
        if bool((indices < 0).any()) or bool((indices >= top).any()):
            raise ValueError(f"code indices out of range for levels {self.levels_list}")

    def extra_repr(self) -> str:
        return f"levels={self.levels_list}, bound={self.bound!r}"
