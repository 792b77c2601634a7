"""A sliding window over a stream of Tensor[..., n] frame chunks (a base utility, imports torch only).

Streams of frames (codes, conditioning, mels) flow between the hierarchy's levels and into the
vocoder; each consumer pulls frames up to what its next chunk needs and forgets the ones no
later chunk reads, so memory does not grow with the duration.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import Tensor

from wavegen.errors import WavegenError


class FrameBuffer:
    """A sliding window over a stream of Tensor[B, C, n] chunks: frames ``start .. end-1`` are held."""

    def __init__(self, chunks: Iterable[Tensor]):
        self._chunks = iter(chunks)
        self._data: Optional[Tensor] = None
        self.start = 0  # absolute index of the first held frame

    @property
    def end(self) -> int:
        return self.start + (0 if self._data is None else self._data.shape[-1])

    def fill_to(self, frame: int) -> None:
        """Pull chunks until frames up to ``frame - 1`` are held."""
        while self.end < frame:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                raise WavegenError(f"the level above produced {self.end} frames; {frame} are needed") from None
            self._data = chunk if self._data is None else torch.cat([self._data, chunk], dim=-1)

    def window(self, lo: int, hi: int) -> Tensor:
        if lo < self.start or hi > self.end:
            raise ValueError(f"frames {lo}..{hi} are not held (holding {self.start}..{self.end})")
        return self._data[..., lo - self.start : hi - self.start]

    def drop_before(self, frame: int) -> None:
        """Forget frames before ``frame`` (what keeps memory bounded)."""
        cut = min(max(frame - self.start, 0), 0 if self._data is None else self._data.shape[-1])
        if cut:
            self._data = self._data[..., cut:]
            self.start += cut
