"""Sampling a WaveNet autoencoder's decoder: codes in, audio out (the ``wavenet`` decoder kind).

The model (:mod:`wavegen.models.autoencoder`) maps codes to the decoder's conditioning
(``decode_codes``); drawing audio from the decoder is sampling, so it runs here through
the one sampling loop (:func:`wavegen.generate.sampling.generate_audio`).
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import Tensor

from wavegen.generate.sampling import generate_audio


@torch.no_grad()
def decode_stream(autoencoder, indices: Tensor, num_samples: Optional[int] = None, temperature: float = 1.0,
                  generator: Optional[torch.Generator] = None, chunk_size: int = 4096,
                  backend: str = "auto") -> Iterator[Tensor]:
    """Sample audio for codes LongTensor[B, C, F]; yields chunks Tensor[B, <=chunk_size].

    ``num_samples`` defaults to F·hop and must not exceed it.
    """
    if indices.dim() != 3:
        raise ValueError(f"expected code indices Tensor[B, C, F], got shape {tuple(indices.shape)}")
    if autoencoder.decoder_kind == "mel":
        raise ValueError("this autoencoder decodes to a log-mel (decode_mel), which its vocoder "
                         f"{autoencoder.cfg.vocoder!r} turns into audio: use wavegen.load(...).decode or "
                         "`wavegen decode`")
    num_samples = autoencoder.check_length(indices, num_samples)
    local = autoencoder.decode_codes(indices)
    yield from generate_audio(autoencoder.decoder, num_samples, batch_size=indices.shape[0], local=local,
                              temperature=temperature, generator=generator, chunk_size=chunk_size, backend=backend)


@torch.no_grad()
def decode(autoencoder, indices: Tensor, num_samples: Optional[int] = None, **kwargs) -> Tensor:
    """Codes LongTensor[B, C, F] -> sampled audio Tensor[B, num_samples] (default F·hop); see :func:`decode_stream`."""
    return torch.cat(list(decode_stream(autoencoder, indices, num_samples, **kwargs)), dim=1)
