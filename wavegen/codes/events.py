"""Run-length events: code frames <-> (value tuple, run length) pairs, exactly.

A code sequence Tensor[C, F] of integer indices changes only now and then when
the slowness penalty does its job. Its events are the maximal runs of frames
whose C-tuple of values is the same::

    frames  (3,1) (3,1) (3,1) (2,1) (2,1) (0,4)
    events  ((3,1), 3)  ((2,1), 2)  ((0,4), 1)

Decoding repeats each tuple for its run length, so the round trip is exact. The
first frame of every sequence starts an event; every later event starts where
at least one channel changes. ``max_run`` optionally splits longer runs, so a
run length always fits a fixed number of bits (the split events repeat their
predecessor's values, which decoding handles like any other event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Events:
    """The run-length events of one code sequence.

    values: LongTensor[E, C] the code tuple of each event.
    lengths: LongTensor[E] its run length in frames (>= 1); ``lengths.sum()`` is the frame count.
    """

    values: Tensor
    lengths: Tensor

    def __len__(self) -> int:
        return int(self.lengths.numel())

    @property
    def channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def frames(self) -> int:
        return int(self.lengths.sum())

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Events)
            and torch.equal(self.values, other.values)
            and torch.equal(self.lengths, other.lengths)
        )


def change_mask(indices: Tensor) -> Tensor:
    """LongTensor[..., C, F] -> BoolTensor[..., F]: True where a frame starts a new event.

    Frame 0 always starts one; frame ``f > 0`` does when any channel differs from frame ``f-1``.
    """
    if indices.dim() < 2:
        raise ValueError(f"expected code indices Tensor[..., C, F], got shape {tuple(indices.shape)}")
    if indices.shape[-1] == 0:
        return torch.zeros(indices.shape[:-2] + (0,), dtype=torch.bool, device=indices.device)
    changed = (indices[..., 1:] != indices[..., :-1]).any(dim=-2)
    first = torch.ones(indices.shape[:-2] + (1,), dtype=torch.bool, device=indices.device)
    return torch.cat([first, changed], dim=-1)


def count_events(indices: Tensor) -> Tensor:
    """LongTensor[..., C, F] -> LongTensor[...]: events per sequence (1 + number of changes)."""
    return change_mask(indices).sum(dim=-1)


def count_changes(indices: Tensor) -> Tensor:
    """LongTensor[..., C, F] -> LongTensor[...]: frames where any channel changes.

    On a segment cut from a longer stream this is the unbiased count of events
    inside it; :func:`count_events` adds the one event every sequence starts with.
    """
    if indices.shape[-1] == 0:
        return torch.zeros(indices.shape[:-2], dtype=torch.long, device=indices.device)
    return (indices[..., 1:] != indices[..., :-1]).any(dim=-2).sum(dim=-1)


def codes_to_events(indices: Tensor, max_run: Optional[int] = None) -> Events:
    """LongTensor[C, F] code indices -> :class:`Events` (maximal runs, optionally split at ``max_run``)."""
    if indices.dim() != 2:
        raise ValueError(f"expected one code sequence Tensor[C, F], got shape {tuple(indices.shape)}")
    if indices.dtype.is_floating_point:
        raise ValueError(f"code indices must be integers, got {indices.dtype}")
    if max_run is not None and max_run < 1:
        raise ValueError(f"max_run must be at least 1, got {max_run}")
    indices = indices.long()
    channels, frames = indices.shape
    if frames == 0:
        empty = torch.zeros(0, dtype=torch.long, device=indices.device)
        return Events(values=empty.reshape(0, channels), lengths=empty)
    starts = torch.nonzero(change_mask(indices), as_tuple=False)[:, 0]
    ends = torch.cat([starts[1:], torch.tensor([frames], device=indices.device)])
    lengths = ends - starts
    values = indices[:, starts].T.contiguous()  # [E, C]
    if max_run is not None and int(lengths.max()) > max_run:
        pieces = (lengths + max_run - 1) // max_run  # events each run becomes
        values = values.repeat_interleave(pieces, dim=0)
        # Every piece holds max_run frames except the last of each run, which holds the rest.
        split = torch.full((int(pieces.sum()),), max_run, dtype=torch.long, device=indices.device)
        last = pieces.cumsum(0) - 1
        split[last] = lengths - (pieces - 1) * max_run
        lengths = split
    return Events(values=values, lengths=lengths)


def events_to_codes(events: Events) -> Tensor:
    """:class:`Events` -> LongTensor[C, F]: each event's values repeated for its run length."""
    values, lengths = events.values, events.lengths
    if values.dim() != 2 or lengths.dim() != 1 or values.shape[0] != lengths.shape[0]:
        raise ValueError(
            f"events need values Tensor[E, C] and lengths Tensor[E], got {tuple(values.shape)} and {tuple(lengths.shape)}"
        )
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError("every event must last at least one frame")
    return values.long().repeat_interleave(lengths.long(), dim=0).T.contiguous()


def batch_to_events(indices: Tensor, max_run: Optional[int] = None) -> list[Events]:
    """LongTensor[B, C, F] -> one :class:`Events` per sequence."""
    if indices.dim() != 3:
        raise ValueError(f"expected a batch of code sequences Tensor[B, C, F], got shape {tuple(indices.shape)}")
    return [codes_to_events(sequence, max_run) for sequence in indices]


def events_to_batch(events: list[Events]) -> Tensor:
    """Equal-length :class:`Events` -> LongTensor[B, C, F]."""
    codes = [events_to_codes(e) for e in events]
    if len({c.shape for c in codes}) > 1:
        raise ValueError(f"sequences differ in shape: {sorted({tuple(c.shape) for c in codes})}")
    return torch.stack(codes)
