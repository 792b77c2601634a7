"""Autoregressive sampling through the shared step API, chunk by chunk.

Works for any model that exposes ``init_state``, ``frame_bias`` and ``step``
(:class:`~wavegen.models.wavenet.WaveNet` and everything built on it). Memory
is bounded by the chunk size: conditioning is turned into per-layer biases one
chunk of frames at a time, never for the whole clip.
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import Tensor


def _chunk_conditioning(model, batch: int, t: int, n: int, local: Optional[Tensor], global_ids: Optional[Tensor]):
    """Bias rows and per-step frame indices for samples ``t .. t+n-1``."""
    device = next(model.parameters()).device
    if local is None:
        bias = model.frame_bias(batch, None, global_ids)
        return bias, torch.zeros(n, dtype=torch.long, device=device)
    hop = model.cfg.local_hop
    first, last = t // hop, (t + n - 1) // hop
    if last >= local.shape[-1]:
        raise ValueError(f"conditioning has {local.shape[-1]} frames; sample {t + n - 1} needs frame {last}")
    bias = model.frame_bias(batch, local, global_ids, start=first, stop=last + 1)
    frame_index = torch.arange(t, t + n, device=device) // hop - first
    return bias, frame_index


@torch.no_grad()
def prime(model, state, prompt_tokens: Tensor, local: Optional[Tensor] = None, global_ids: Optional[Tensor] = None,
          chunk_size: int = 4096, backend: str = "auto") -> None:
    """Feed known tokens Tensor[B, P] into ``state`` (teacher forcing), e.g. an audio prompt."""
    batch, length = prompt_tokens.shape
    done = 0
    while done < length:
        n = min(chunk_size, length - done)
        bias, frame_index = _chunk_conditioning(model, batch, state.t, n, local, global_ids)
        uniforms = torch.zeros(n, batch, 2, device=prompt_tokens.device)
        model.step(state, bias, frame_index, uniforms, forced=prompt_tokens[:, done : done + n], backend=backend)
        done += n


@torch.no_grad()
def generate_tokens(
    model,
    num_samples: int,
    batch_size: int = 1,
    local: Optional[Tensor] = None,
    global_ids: Optional[Tensor] = None,
    prompt_tokens: Optional[Tensor] = None,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
    chunk_size: int = 4096,
    backend: str = "auto",
    state=None,
) -> Iterator[Tensor]:
    """Yield generated tokens in chunks, Tensor[B, <=chunk_size], ``num_samples`` in all.

    local: Tensor[B, C, F] conditioning frames covering the prompt and the generated part.
    prompt_tokens: Tensor[B, P] fed first (they are not yielded again).
    generator: seeds the uniforms every sample is drawn from, so runs are reproducible.
    """
    device = next(model.parameters()).device
    if state is None:
        state = model.init_state(batch_size, device)
    if prompt_tokens is not None:
        prime(model, state, prompt_tokens, local, global_ids, chunk_size, backend)
    produced = 0
    while produced < num_samples:
        n = min(chunk_size, num_samples - produced)
        bias, frame_index = _chunk_conditioning(model, batch_size, state.t, n, local, global_ids)
        uniforms = torch.rand(n, batch_size, 2, generator=generator, device="cpu").to(device)
        tokens, _ = model.step(state, bias, frame_index, uniforms, temperature=temperature, backend=backend)
        produced += n
        yield tokens


def generate_audio(model, num_samples: int, **kwargs) -> Iterator[Tensor]:
    """Like :func:`generate_tokens` but yields audio chunks Tensor[B, n] in [-1, 1]."""
    for tokens in generate_tokens(model, num_samples, **kwargs):
        yield model.head.decode(tokens).float()
