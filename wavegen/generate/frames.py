"""Conditioning frames that arrive as a stream: a sliding buffer, and local conditioning read from it.

The hierarchy decodes level by level in bounded memory: a level's conditioning is the
level above's output, produced chunk by chunk. :class:`StreamedLocal` lets the one
sampling loop (:func:`wavegen.generate.sampling.generate_tokens`) read such a stream
as it would a whole Tensor[B, C, F]: each chunk's per-layer bias is computed from the
frames it needs plus the frame-rate network's context either side, cut from a
:class:`~wavegen.frames.FrameBuffer` that forgets frames no later chunk reads.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import Tensor

from wavegen.frames import FrameBuffer


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
