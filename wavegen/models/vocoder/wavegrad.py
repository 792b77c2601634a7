"""WaveGrad-style diffusion vocoder: predicts the noise in a noisy waveform given its mel.

Time alignment (the convention used everywhere in wavegen's vocoder): mel frame
``f`` drives output samples ``f·hop .. (f+1)·hop - 1``. A clip of ``T = N·hop``
samples has ``N + 1`` centred mel frames (:func:`wavegen.audio.dsp.mel_frames`);
training uses the first ``N``, and vocoding ``F`` frames produces ``F·hop``
samples of which the first ``(F-1)·hop`` are the clip (see
:func:`wavegen.models.vocoder.frames_to_samples`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wavegen.audio.dsp import mel_level
from wavegen.diffusion.priors import NoisePrior
from wavegen.errors import WavegenError
from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.vocoder.layers import DBlock, FiLM, UBlock, conv3


class WaveGradVocoder(nn.Module):
    """``forward(noisy Tensor[B, T], log_mel Tensor[B, n_mels, F], noise_level Tensor[B]) -> ε̂ Tensor[B, T]``.

    ``T`` must equal ``F · hop``; ``noise_level`` is ``a = √ᾱ``, the signal's share of the
    noisy input ``y = a·x + s·ε`` (``s = √(1-a²)``, ε drawn from the noise prior).

    The network's raw output ``v`` is read as a "v-prediction" (arXiv 2202.00512):
    ``x̂ = a·y + s·v`` and ``ε̂ = s·y - a·v``. At low noise the clean estimate is the input
    plus a small correction, at high noise the network's own output; neither estimate
    ever divides by a small number, and a perfect ``v`` gives both exactly.
    """

    family = "vocoder"

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.prior = NoisePrior(cfg.prior, cfg.audio())
        slope = cfg.negative_slope
        ups, downs, factors = cfg.upsample_channels, cfg.downsample_channels, cfg.upsample_factors
        K = len(factors)

        self.mel_in = conv3(cfg.n_mels, cfg.mel_channels)
        in_channels = [cfg.mel_channels, *ups[:-1]]
        self.ublocks = nn.ModuleList(UBlock(in_channels[k], ups[k], factors[k], slope) for k in range(K))
        self.out = conv3(ups[-1], 1)

        # Waveform path: a stem at the sample rate, then DBlocks undoing the UBlock
        # factors from the last to the second. After j DBlocks the features sit at the
        # rate of UBlock K-1-j's output, so FiLM j modulates that UBlock.
        self.stem = nn.Conv1d(1, downs[0], 5, padding=2)
        self.dblocks = nn.ModuleList(
            DBlock(downs[j], downs[j + 1], factors[K - 1 - j], slope) for j in range(K - 1)
        )
        self.films = nn.ModuleList(FiLM(downs[j], ups[K - 1 - j], slope) for j in range(K))

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    def normalise_mel(self, log_mel: Tensor) -> Tensor:
        return (log_mel - self.cfg.mel_mean) / self.cfg.mel_std

    def film_parameters(self, noisy: Tensor, noise_level: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Tensor[B, T], Tensor[B] -> one (scale, shift) pair per UBlock, mel side first."""
        h = self.stem(noisy[:, None])
        params = []
        for j, film in enumerate(self.films):
            params.append(film(h, noise_level))
            if j < len(self.dblocks):
                h = self.dblocks[j](h)
        return params[::-1]

    def _check(self, noisy: Tensor, log_mel: Tensor) -> None:
        frames = log_mel.shape[-1]
        if log_mel.dim() != 3 or log_mel.shape[1] != self.cfg.n_mels:
            raise WavegenError(f"vocoder expects a mel Tensor[B, {self.cfg.n_mels}, F], got {tuple(log_mel.shape)}")
        if noisy.shape[-1] != frames * self.hop_length:
            raise WavegenError(
                f"noisy waveform has {noisy.shape[-1]} samples but {frames} mel frames need "
                f"{frames * self.hop_length} (hop {self.hop_length})"
            )

    def velocity(self, noisy: Tensor, log_mel: Tensor, noise_level: Tensor) -> Tensor:
        """The network's raw output ``v`` Tensor[B, T] (see the class docstring)."""
        self._check(noisy, log_mel)
        B, T = noisy.shape
        noise_level = torch.as_tensor(noise_level, dtype=noisy.dtype, device=noisy.device).reshape(-1).expand(B)
        if self.cfg.level_normalise:
            level = mel_level(log_mel, self.cfg.audio(), T).to(noisy.dtype)
            noisy = noisy / level
        params = self.film_parameters(noisy, noise_level)
        x = self.mel_in(self.normalise_mel(log_mel))
        for block, (scale, shift) in zip(self.ublocks, params):
            x = block(x, scale, shift)
        v = self.out(x)[:, 0]
        return v * level if self.cfg.level_normalise else v

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
