"""The training objective: predict the noise at a continuous noise level (L1)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_spectrogram
from wavegen.diffusion.schedules import sample_training_levels


def aligned_pair(audio: Tensor, cfg: AudioConfig) -> tuple[Tensor, Tensor]:
    """Tensor[B, T] -> (audio Tensor[B, N·hop], log mel Tensor[B, n_mels, N]) with N = T // hop.

    Crops to whole hops and keeps the first N of the N+1 centred frames, so frame
    ``f`` pairs with samples ``f·hop .. (f+1)·hop - 1`` (the vocoder's convention).
    """
    hop = cfg.hop_length
    frames = audio.shape[-1] // hop
    if frames < 1:
        raise ValueError(f"a training segment needs at least one hop ({hop} samples), got {audio.shape[-1]}")
    audio = audio[..., : frames * hop]
    with torch.no_grad():
        log_mel = mel_spectrogram(audio, cfg, log=True)[..., :frames]
    return audio, log_mel


def noise_prediction_loss(model, audio: Tensor, log_mel: Tensor,
                          generator: Optional[torch.Generator] = None) -> Tensor:
    """L1 between the true and predicted noise; audio Tensor[B, F·hop], log_mel Tensor[B, n_mels, F].

    Each clip gets its own level √ᾱ drawn as in :func:`sample_training_levels`, and is
    noised as ``√ᾱ · x + √(1-ᾱ) · ε``.
    """
    B = audio.shape[0]
    level = sample_training_levels(B, generator, device=audio.device).to(audio.dtype)
    eps = torch.randn(audio.shape, generator=generator).to(audio.device, audio.dtype)
    noisy = level[:, None] * audio + (1 - level[:, None] ** 2).sqrt() * eps
    return (model(noisy, log_mel, level) - eps).abs().mean()
