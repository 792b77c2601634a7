"""Training windows of run-length events for the event Transformer prior.

Every code sequence of a code set becomes events (joint value, run length <= max_run),
preceded by a start event (value = number of classes, run 0). ``batch(step)`` returns
``{"values": LongTensor[B, T+1], "runs": LongTensor[B, T+1], "mask": BoolTensor[B, T]}``:
the model reads events 0..T-1 and predicts events 1..T; ``mask`` is False where a window
ran past the end of a short sequence (padding, left out of the loss). Like the frame
sampler, it is a pure function of (seed, step, rank).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.codes.events import codes_to_events
from wavegen.errors import WavegenError
from wavegen.codes.joint import joint_classes, to_joint


class EventSampler:
    def __init__(self, sequences: Sequence[Tensor], levels: Sequence[int], max_run: int, window: int,
                 batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if not sequences:
            raise WavegenError("the code set split is empty")
        self.window, self.batch_size = int(window), int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        start = joint_classes(levels)
        self.values, self.runs = [], []
        for codes in sequences:
            events = codes_to_events(codes.long(), max_run)
            joint = to_joint(events.values.T, levels)
            self.values.append(torch.cat([torch.tensor([start]), joint]))
            self.runs.append(torch.cat([torch.tensor([0]), events.lengths]))
        lengths = np.array([v.numel() for v in self.values], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.start = start
        self.events = int(sum(v.numel() - 1 for v in self.values))
        self.frames = int(sum(int(c.shape[-1]) for c in sequences))

    def _window(self, index: int, offset: int) -> tuple[Tensor, Tensor, Tensor]:
        n = self.window + 1
        values = self.values[index][offset : offset + n]
        runs = self.runs[index][offset : offset + n]
        mask = torch.ones(n - 1, dtype=torch.bool)
        if values.numel() < n:
            pad = n - values.numel()
            mask[values.numel() - 1 :] = False
            values = torch.cat([values, torch.full((pad,), self.start)])
            runs = torch.cat([runs, torch.zeros(pad, dtype=torch.long)])
        return values, runs, mask

    def _collate(self, picks) -> dict[str, Tensor]:
        parts = [self._window(i, o) for i, o in picks]
        return {"values": torch.stack([p[0] for p in parts]), "runs": torch.stack([p[1] for p in parts]),
                "mask": torch.stack([p[2] for p in parts])}

    def batch(self, step: int) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.seed, int(step), self.rank, self.world_size])
        picks = []
        for _ in range(self.batch_size):
            index = int(rng.choice(len(self.values), p=self.weights))
            span = max(1, self.values[index].numel() - self.window)
            picks.append((index, int(rng.integers(0, span))))
        return self._collate(picks)

    def validation_batches(self, n: Optional[int] = None) -> list[dict[str, Tensor]]:
        picks = []
        for index, values in enumerate(self.values):
            span = max(1, values.numel() - self.window)
            picks.extend((index, o) for o in range(0, span, max(self.window, span // 4)))
        batches = [self._collate(picks[i : i + self.batch_size]) for i in range(0, len(picks), self.batch_size)]
        return batches[:n] if n else batches
