"""WaveGrad-style diffusion vocoder: predicts the noise in a noisy waveform given its mel.

Time alignment (the convention used everywhere in wavegen's vocoder): mel frame
``f`` drives output samples ``f·hop .. (f+1)·hop - 1``. A clip of ``T = N·hop``
samples has ``N + 1`` centred mel frames (:func:`wavegen.audio.dsp.mel_frames`);
training uses the first ``N``, and vocoding ``F`` frames produces ``F·hop``
samples of which the first ``(F-1)·hop`` are the clip (see
:func:`wavegen.audio.dsp.frames_to_samples`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wavegen.audio.dsp import mel_level
from wavegen.diffusion.priors import NoisePrior
from wavegen.models.vocoder.base import DiffusionVocoder
from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.vocoder.layers import DBlock, FiLM, UBlock, conv3


class WaveGradVocoder(DiffusionVocoder):
    """The waveform-domain denoiser (interface: :class:`~wavegen.models.vocoder.base.DiffusionVocoder`).

    At low noise its clean estimate is the input plus a small correction, at high noise the
    network's own output.
    """

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
