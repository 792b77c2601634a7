"""Conditioning frames that arrive as a stream: a sliding buffer, and local conditioning read from it.

The hierarchy decodes level by level in bounded memory: a level's conditioning is the
level above's output, produced chunk by chunk. :class:`StreamedLocal` lets the one
sampling loop (:func:`wavegen.generate.sampling.generate_tokens`) read such a stream
as it would a whole Tensor[B, C, F]: each chunk's per-layer bias is computed from the
frames it needs plus the frame-rate network's context either side, cut from a
:class:`FrameBuffer` that forgets frames no later chunk reads.
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


class StreamedLocal:
    """Local conditioning pulled from an iterator of Tensor[B, C, n] frame chunks, ``total_frames`` in all."""

    def __init__(self, chunks: Iterable[Tensor], total_frames: int):
        self.buffer = FrameBuffer(chunks)
        self.total_frames = total_frames

    def chunk_bias(self, model, batch: int, t: int, n: int, global_ids: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Bias rows Tensor[B, F, L, G] and per-step frame indices LongTensor[n] for samples ``t .. t+n-1``."""
        hop, ctx = model.cfg.local_hop, model.cfg.local_kernel // 2
        device = next(model.parameters()).device
        first, stop = t // hop, (t + n - 1) // hop + 1
        need = min(stop + ctx, self.total_frames)
        self.buffer.drop_before(first - ctx)  # chunks only move forward
        self.buffer.fill_to(need)
        lo = max(0, first - ctx)
        window = self.buffer.window(lo, need).to(device)
        # A window edge is padded with zeros only where it is the clip's real edge (lo == 0 or
        # need == total_frames): elsewhere it holds the real neighbouring frames.
        bias = model.frame_bias(batch, window, global_ids, start=first - lo, stop=stop - lo)
        return bias, torch.arange(t, t + n, device=device) // hop - first
