"""Inputs for one call of the fused WaveNet step: shared by the CPU and the CUDA kernel tests."""

from __future__ import annotations

import torch

from wavegen.models.wavenet import WaveNet

# A start time past every ring buffer's length and a multiple of none of them.
T0 = 3001


def step_inputs(model: WaveNet, batch: int, n: int, conditioned: bool, seed: int = 1):
    """Random queues (a state in mid-stream), per-frame bias and frame indices, uniforms.

    Returns ``(queues, t0, next_input, bias, frame_index, uniforms)`` for ``n`` steps.
    """
    g = torch.Generator().manual_seed(seed)
    state = model.init_state(batch)
    state.queues.copy_(torch.randn(state.queues.shape, generator=g) * 0.5)
    if conditioned:
        frames = 9
        local = torch.randn(batch, 5, frames, generator=g)
        ids = torch.randint(0, 4, (batch,), generator=g)
        bias = model.frame_bias(batch, local, ids)
        frame_index = torch.randint(0, frames, (n,), generator=g).sort().values
    else:
        bias = model.frame_bias(batch)
        frame_index = torch.zeros(n, dtype=torch.long)
    uniforms = torch.rand(n, batch, 2, generator=g)
    if model.cfg.head == "categorical":
        next_input = torch.randint(0, model.cfg.classes, (batch,), generator=g)
    else:
        next_input = torch.rand(batch, generator=g) * 2 - 1
    return state.queues, T0, next_input, bias, frame_index, uniforms
