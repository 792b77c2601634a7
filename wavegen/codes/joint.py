"""Joint code indices: the C per-channel indices of one frame as a single class.

A frame with indices ``(i_0, ..., i_{C-1})`` and levels ``(L_0, ..., L_{C-1})`` maps to
the mixed-radix number ``i_0·L_1···L_{C-1} + ... + i_{C-1}``, a class in
``0 .. prod(L)-1``. A categorical WaveNet over these classes models every channel of a
frame jointly, which is why the levels of a modelled code must stay small
(2 channels x 5 levels = 25 classes, 3 x 5 = 125).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

# A softmax over more classes than this is slow and data-hungry on the tiny models.
MAX_JOINT_CLASSES = 4096


def joint_classes(levels: Sequence[int]) -> int:
    return int(math.prod(int(v) for v in levels))


def _radices(levels: Sequence[int], device=None) -> Tensor:
    """LongTensor[C]: the place value of every channel (the last channel varies fastest)."""
    places = [1] * len(levels)
    for c in range(len(levels) - 2, -1, -1):
        places[c] = places[c + 1] * int(levels[c + 1])
    return torch.tensor(places, dtype=torch.long, device=device)


def to_joint(indices: Tensor, levels: Sequence[int]) -> Tensor:
    """LongTensor[..., C, F] per-channel indices -> LongTensor[..., F] joint classes."""
    if indices.shape[-2] != len(levels):
        raise ValueError(f"codes have {indices.shape[-2]} channels but {len(levels)} levels were given")
    places = _radices(levels, indices.device)
    return (indices.long() * places[:, None]).sum(dim=-2)


def from_joint(joint: Tensor, levels: Sequence[int]) -> Tensor:
    """LongTensor[..., F] joint classes -> LongTensor[..., C, F] per-channel indices."""
    places = _radices(levels, joint.device)
    sizes = torch.tensor([int(v) for v in levels], dtype=torch.long, device=joint.device)
    return (joint.long().unsqueeze(-2) // places[:, None]) % sizes[:, None]
