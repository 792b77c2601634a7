"""Causal dilated convolutions."""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution whose output at ``t`` sees inputs at ``t, t-d, ..., t-(k-1)d`` only.

    Left zero padding of ``(k-1)·d`` keeps the length: Tensor[B, C_in, T] -> Tensor[B, C_out, T].
    The zero padding is what an all-zero incremental queue reproduces at generation time.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


def receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
    """Samples a stack of causal convolutions sees, the current one included: ``(k-1)·Σd + 1``."""
    return (kernel_size - 1) * sum(dilations) + 1
