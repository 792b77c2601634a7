"""A diffusion vocoder whose denoiser works on the noisy waveform's STFT.

Why: piano partials sit tens of Hz apart and decay for seconds. A waveform network must
learn, from samples, filters that resolve them; the STFT (n_fft 1024: 15.6 Hz bins at
16 kHz) resolves them for free, and at the low noise levels that decide log-spectral
quality, denoising becomes per-bin gain: keep the bins where the signal stands above the
known noise, silence the rest. Processing runs at the frame rate (62.5 frames/s), so
the network is cheap to train and to run on a CPU.

The pipeline for a noisy input ``y = a·x + s·ε`` with ``ε`` from the spectral prior:

1. ``Y = STFT(y) / g``: the prior's own gain ``g`` (the mel's spectral envelope per bin
   and frame) whitens it, so prior noise has unit size in every bin and the clean
   signal is measured against the noise it competes with.
2. Per frame, the network reads the a-posteriori SNR ``log|Y| - log s`` of every bin,
   its phase (cos, sin), and the normalised mel; ConvNeXt blocks (arXiv 2201.03545)
   mix frames over time, modulated by the noise level (adaptive LayerNorm).
3. It outputs, per bin, a logit ``o`` for a real gain and a complex correction ``r``
   expressed in the bin's own phase. The logit's skip path is the Wiener rule
   ``log ξ`` with ``ξ = |Y|²/s² - 1`` (spectral subtraction), so an untrained network
   already denoises like a classical filter and training learns what the rule misses.
4. The clean estimate is ``X̂ = sigmoid(o)/a · Y + s · r·Y/|Y|`` (whitened), and the
   network's output in v-prediction form follows algebraically (see
   :meth:`SpectralVocoder.velocity`) without dividing anything by a small number.

The interface is :class:`~wavegen.models.vocoder.base.DiffusionVocoder`'s, shared with the
waveform-domain :class:`~wavegen.models.vocoder.wavegrad.WaveGradVocoder`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.diffusion.priors import NoisePrior
from wavegen.errors import WavegenError
from wavegen.models.vocoder.base import DiffusionVocoder
from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.vocoder.layers import noise_level_encoding

# Whitened magnitudes below this are treated as zero (a bin the input leaves empty).
_TINY = 1e-6


class ConvNeXtBlock(nn.Module):
    """Tensor[B, C, F] -> Tensor[B, C, F]: depthwise conv over frames, then a 4× pointwise MLP.

    The noise level enters as a per-channel scale and shift after the normalisation
    (adaptive LayerNorm), the way image diffusion models condition ConvNeXt/DiT blocks.
    """

    def __init__(self, channels: int, kernel: int, level_dim: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)
        self.modulation = nn.Linear(level_dim, 2 * channels)
        self.up = nn.Linear(channels, 4 * channels)
        self.down = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: Tensor, level: Tensor) -> Tensor:
        h = self.depthwise(x).transpose(1, 2)  # [B, F, C]
        scale, shift = self.modulation(level)[:, None, :].chunk(2, dim=-1)
        h = self.norm(h) * (1.0 + scale) + shift
        h = self.down(F.gelu(self.up(h))) * self.gamma
        return x + h.transpose(1, 2)


class SpectralVocoder(DiffusionVocoder):
    """The STFT-domain denoiser (interface: :class:`~wavegen.models.vocoder.base.DiffusionVocoder`).

    Works only with the spectral prior, whose gain it uses to whiten its input.
    """

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        cfg.validate()
        if cfg.prior != "spectral":
            raise WavegenError(f"the spectral vocoder needs prior=spectral (it whitens by that prior), got {cfg.prior!r}")
        self.cfg = cfg
        self.prior = NoisePrior(cfg.prior, cfg.audio())
        bins = cfg.n_fft // 2 + 1
        C = cfg.spectral_channels
        level_dim = 128
        self.level_mlp = nn.Sequential(nn.Linear(level_dim, level_dim), nn.GELU())
        self.inp = nn.Conv1d(3 * bins + cfg.n_mels, C, 1)  # time context comes from the blocks
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(C, cfg.spectral_kernel, level_dim, 1.0 / cfg.spectral_blocks)
            for _ in range(cfg.spectral_blocks)
        )
        self.norm = nn.LayerNorm(C)
        self.out = nn.Conv1d(C, 3 * bins, 1)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    def _stft(self, x: Tensor) -> Tensor:
        cfg = self.cfg
        return torch.stft(x.float(), cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=True,
                          return_complex=True)

    def _istft(self, spec: Tensor, length: int) -> Tensor:
        cfg = self.cfg
        return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=True, length=length)

    def velocity(self, noisy: Tensor, log_mel: Tensor, noise_level: Tensor) -> Tensor:
        """The v-prediction Tensor[B, T]: ``v = (x̂ - a·y) / s``, formed without that division.

        With ``X̂ = m/a · Y + s·R`` (whitened), ``(X̂ - a·Y)/s = (m - a²)/(a·s) · Y + R``, and
        ``m - a² = s² - sigmoid(-o)`` since ``1 - a² = s²``: both terms stay finite as
        ``s → 0`` and the gain's precision near 1 is kept by computing ``sigmoid(-o)``.
        """
        self._check(noisy, log_mel)
        B, T = noisy.shape
        a = torch.as_tensor(noise_level, dtype=torch.float32, device=noisy.device).reshape(-1).expand(B)
        a = a.clamp(1e-4, 1.0 - 1e-7)
        s = (1.0 - a * a).sqrt()
        gain = self.prior.expected_magnitude(log_mel)  # Tensor[B, K, F+1]
        Y = self._stft(noisy)
        frames = min(Y.shape[-1], gain.shape[-1])
        Y, gain = Y[..., :frames], gain[..., :frames]
        Yw = Y / gain
        magnitude = Yw.abs()
        phase = Yw / magnitude.clamp_min(_TINY)
        snr = torch.log(magnitude.clamp_min(_TINY)) - torch.log(s)[:, None, None]  # [B, K, F+1]

        mel = (log_mel.float() - self.cfg.mel_mean) / self.cfg.mel_std
        mel = torch.cat([mel, mel[..., -1:]], dim=-1)[..., :frames]
        features = torch.cat([snr.clamp(-10.0, 20.0) / 5.0, phase.real, phase.imag, mel], dim=1)
        level = self.level_mlp(noise_level_encoding(a, 128))
        h = self.inp(features)
        for block in self.blocks:
            h = block(h, level)
        h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        o, r_re, r_im = self.out(h).chunk(3, dim=1)
        # The Wiener rule as the skip path: gain ξ/(1+ξ) with the a-priori SNR estimated by
        # spectral subtraction, ξ = |Y|²/s² - 1 (prior noise has unit power per whitened bin),
        # so a bin holding only noise starts near gain 0, not the 1/2 that |Y|²/s² alone gives.
        xi = (2.0 * snr.clamp(max=20.0)).exp() - 1.0
        o = o + torch.log(xi.clamp_min(0.0) + 1e-3)

        a3, s3 = a[:, None, None], s[:, None, None]
        coefficient = (s3 * s3 - torch.sigmoid(-o)) / (a3 * s3)
        Vw = coefficient * Yw + torch.complex(r_re, r_im) * phase
        v = self._istft(Vw * gain, T)
        return v.to(noisy.dtype)
