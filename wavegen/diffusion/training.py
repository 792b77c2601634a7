"""The vocoder's training objective: denoise at a continuous noise level drawn log-uniformly in σ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_level, mel_spectrogram
from wavegen.diffusion.schedules import default_schedule, sample_training_levels
from wavegen.options import dataclass_from, plain
from wavegen.audio.metrics import multi_resolution_stft_distance


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


@dataclass
class Objective:
    """Weights of the vocoder's training losses (the ``objective`` config block).

    - ``v_weight``: L1 between the network's output and its target, divided by the mel's
      level so quiet passages count as much as loud ones (PriorGrad's Σ⁻¹ weighting);
    - ``stft_weight``: the MR-STFT distance between the clean estimate x̂ and the clean
      audio: the evaluation's own metric, phase-free, so at high noise the network learns
      a plausible spectrum instead of the blurred mean an L1 would ask for;
    - ``chain_weight``: every ``chain_every`` steps, the MR-STFT distance of the whole
      ``chain_steps``-step sampler's output (differentiable; InferGrad, arXiv 2202.03751),
      so training sees what sampling does.
    """

    v_weight: float = 1.0
    stft_weight: float = 1.0
    chain_weight: float = 0.0
    chain_steps: int = 6
    chain_every: int = 4
    chain_eta: float = 1.0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> "Objective":
        return dataclass_from(cls, plain(cfg or {}), "objective")


def noised(model, audio: Tensor, log_mel: Tensor, generator: Optional[torch.Generator] = None):
    """Draw levels and prior noise: -> (y, level a, noise ε), y = a·x + √(1-a²)·ε, each clip its own level."""
    B = audio.shape[0]
    level = sample_training_levels(B, generator, device=audio.device).to(audio.dtype)
    z = torch.randn(audio.shape, generator=generator).to(audio.device, audio.dtype)
    eps = model.prior.shape(z, log_mel)
    a = level[:, None]
    return a * audio + (1 - a * a).sqrt() * eps, level, eps


def vocoder_loss(model, audio: Tensor, log_mel: Tensor, objective: Objective = Objective(),
                 generator: Optional[torch.Generator] = None, step: int = 0) -> tuple[Tensor, dict]:
    """-> (scalar loss, {name: float}) for audio Tensor[B, F·hop] and its log mel Tensor[B, n_mels, F].

    ``model`` may be wrapped (DDP); its core must provide ``velocity`` and ``prior``.
    """
    core = model.module if hasattr(model, "module") else model
    y, level, eps = noised(core, audio, log_mel, generator)
    a = level[:, None]
    s = (1 - a * a).sqrt()
    v = model(y, log_mel, level, output="v")  # through the wrapper's forward, so DDP syncs gradients
    target = s * audio - a * eps
    weight = 1.0 / mel_level(log_mel, core.cfg.audio(), audio.shape[-1]).to(audio.dtype)
    terms = {"v_l1": ((v - target).abs() * weight).mean()}
    x_hat = a * y + s * v
    total = objective.v_weight * terms["v_l1"]
    if objective.stft_weight:
        terms["stft"] = multi_resolution_stft_distance(audio, x_hat)
        total = total + objective.stft_weight * terms["stft"]
    if objective.chain_weight and step % max(objective.chain_every, 1) == 0:
        from wavegen.diffusion.noise import PositionalNoise
        from wavegen.diffusion.samplers import reverse_process

        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        out = reverse_process(core, log_mel, default_schedule(objective.chain_steps),
                              PositionalNoise(seed, audio.shape[0], audio.device, audio.dtype), eta=objective.chain_eta)
        terms["chain_stft"] = multi_resolution_stft_distance(audio, out)
        total = total + objective.chain_weight * terms["chain_stft"]
    return total, {k: float(v.detach()) for k, v in terms.items()}
