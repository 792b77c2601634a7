"""Fused inference ops shared by every autoregressive decoder and the vocoder.

Each op has a pure-PyTorch reference (:mod:`wavegen.kernels.reference`) that
defines its meaning; compiled C++ (CPU) and CUDA (GPU) versions are chosen by
device when they can be built, and fall back to the reference otherwise.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from wavegen.kernels import reference
from wavegen.kernels.reference import PackedWaveNet

BACKENDS = ("auto", "reference")


def wavenet_generate(
    w: PackedWaveNet,
    queues: Tensor,
    t0: int,
    next_input: Tensor,
    bias: Tensor,
    frame_index: Tensor,
    uniforms: Tensor,
    forced: Optional[Tensor] = None,
    temperature: float = 1.0,
    return_logits: bool = False,
    backend: str = "auto",
) -> tuple[Tensor, Optional[Tensor]]:
    """Advance a WaveNet by ``len(frame_index)`` samples; see :func:`reference.wavenet_generate`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose one of {BACKENDS}")
    return reference.wavenet_generate(
        w, queues, t0, next_input, bias, frame_index, uniforms, forced, temperature, return_logits
    )


def film_leaky_relu(x: Tensor, scale: Tensor, shift: Tensor, negative_slope: float = 0.2) -> Tensor:
    """``leaky_relu(scale * x + shift)``; see :func:`reference.film_leaky_relu`."""
    return reference.film_leaky_relu(x, scale, shift, negative_slope)


def diffusion_update(y: Tensor, eps: Tensor, noise: Optional[Tensor], c1: float, c2: float, sigma: float,
                     clamp: bool = True) -> Tensor:
    """One reverse-diffusion step; see :func:`reference.diffusion_update`."""
    return reference.diffusion_update(y, eps, noise, c1, c2, sigma, clamp)
