"""Gaussian noise as a pure function of (seed, step, sample position).

Chunked vocoding must draw, at every sample, the same noise an unchunked pass
would draw there, or chunk seams would differ from the one-pass result. So noise
is cut into fixed blocks of ``BLOCK`` samples; block ``b`` of step ``n`` comes
from its own generator seeded by ``(seed, n, b)``. Any window is then cheap to
draw and independent of how the signal was cut, and memory stays O(window).
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 4096
_MASK = (1 << 63) - 1


def _block_seed(seed: int, step: int, block: int) -> int:
    # A fixed mix (splitmix64-style multipliers) keeps nearby (step, block) pairs unrelated.
    x = (seed * 0x9E3779B97F4A7C15 + step * 0xBF58476D1CE4E5B9 + block * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return (x * 0xD6E8FEB86659FD93) & _MASK


class PositionalNoise:
    """Draw Tensor[B, length] standard normal noise for samples ``start .. start+length-1`` of step ``step``."""

    def __init__(self, seed: int, batch: int, device=None, dtype: torch.dtype = torch.float32):
        self.seed = int(seed)
        self.batch = batch
        self.device = device
        self.dtype = dtype

    @classmethod
    def from_generator(cls, generator: torch.Generator | None, batch: int, device=None,
                       dtype: torch.dtype = torch.float32) -> "PositionalNoise":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        return cls(seed, batch, device, dtype)

    def window(self, step: int, start: int, length: int) -> Tensor:
        if length <= 0:
            return torch.zeros(self.batch, 0, device=self.device, dtype=self.dtype)
        first, last = start // BLOCK, (start + length - 1) // BLOCK
        pieces = []
        gen = torch.Generator()
        for b in range(first, last + 1):
            gen.manual_seed(_block_seed(self.seed, step, b))
            pieces.append(torch.randn(self.batch, BLOCK, generator=gen))
        noise = torch.cat(pieces, dim=1)[:, start - first * BLOCK : start - first * BLOCK + length]
        return noise.to(device=self.device, dtype=self.dtype)
