"""What every vocoder denoiser shares: its input checks and the estimates read off its v-prediction.

A denoiser subclasses :class:`DiffusionVocoder` and defines ``velocity(noisy, log_mel, noise_level)``;
samplers, training and evaluation use only ``forward``/``predict``/``velocity``, ``hop_length``,
``prior`` and ``cfg``, so they never know which denoiser they drive.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wavegen.errors import WavegenError


class DiffusionVocoder(nn.Module):
    """``forward(noisy Tensor[B, T], log_mel Tensor[B, n_mels, F], noise_level Tensor[B]) -> ε̂ Tensor[B, T]``.

    ``T`` must equal ``F · hop``; ``noise_level`` is ``a = √ᾱ``, the signal's share of the noisy
    input ``y = a·x + s·ε`` (``s = √(1-a²)``, ε drawn from the noise prior). The denoiser's raw
    output ``v`` is a v-prediction (arXiv 2202.00512): ``x̂ = a·y + s·v`` and ``ε̂ = s·y - a·v``,
    so neither estimate divides by a small number and a perfect ``v`` gives both exactly.
    """

    family = "vocoder"

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    def velocity(self, noisy: Tensor, log_mel: Tensor, noise_level: Tensor) -> Tensor:
        raise NotImplementedError

    def _check(self, noisy: Tensor, log_mel: Tensor) -> None:
        frames = log_mel.shape[-1]
        if log_mel.dim() != 3 or log_mel.shape[1] != self.cfg.n_mels:
            raise WavegenError(f"vocoder expects a mel Tensor[B, {self.cfg.n_mels}, F], got {tuple(log_mel.shape)}")
        if noisy.shape[-1] != frames * self.hop_length:
            raise WavegenError(
                f"noisy waveform has {noisy.shape[-1]} samples but {frames} mel frames need "
                f"{frames * self.hop_length} (hop {self.hop_length})"
            )

    def predict(self, noisy: Tensor, log_mel: Tensor, noise_level: Tensor) -> tuple[Tensor, Tensor]:
        """-> (ε̂, x̂), each Tensor[B, T]: the noise and the clean-signal estimates from one pass."""
        B = noisy.shape[0]
        a = torch.as_tensor(noise_level, dtype=noisy.dtype, device=noisy.device).reshape(-1).expand(B)[:, None]
        s = (1.0 - a * a).clamp_min(0.0).sqrt()
        v = self.velocity(noisy, log_mel, noise_level)
        return s * noisy - a * v, a * noisy + s * v

    def forward(self, noisy: Tensor, log_mel: Tensor, noise_level: Tensor, output: str = "eps") -> Tensor:
        """ε̂ (``output="eps"``, what samplers use) or the raw ``v`` (``"v"``, what training uses)."""
        if output == "v":
            return self.velocity(noisy, log_mel, noise_level)
        return self.predict(noisy, log_mel, noise_level)[0]
