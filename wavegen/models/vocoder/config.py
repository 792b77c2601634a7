"""The vocoder's hyper-parameters and the checks that tie them to the audio config."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from wavegen.errors import WavegenError
from wavegen.options import dataclass_from, plain

ARCHITECTURES = ("wavegrad", "spectral")


@dataclass
class VocoderConfig:
    """A WaveGrad-style vocoder: log mel Tensor[B, n_mels, F] -> waveform Tensor[B, F · hop].

    ``upsample_factors[k]`` and ``upsample_channels[k]`` describe UBlock ``k`` (mel side
    first). ``downsample_channels[j]`` is the width of the noisy-waveform path after ``j``
    DBlocks (entry 0 is the stem convolution at the full sample rate); the DBlocks
    downsample by the UBlock factors in reverse, so every UBlock meets a FiLM at its own
    time resolution.
    """

    # The denoiser: "wavegrad" (UBlocks/DBlocks on the waveform, wavegrad.py) or "spectral"
    # (ConvNeXt blocks on the noisy input's STFT, spectral.py; needs prior=spectral). The
    # upsample/downsample fields describe only the first, the spectral_* fields the second.
    architecture: str = "wavegrad"
    n_mels: int = 80
    hop_length: int = 256
    upsample_factors: list[int] = field(default_factory=lambda: [4, 4, 4, 2, 2])
    upsample_channels: list[int] = field(default_factory=lambda: [512, 512, 256, 128, 128])
    downsample_channels: list[int] = field(default_factory=lambda: [32, 128, 128, 256, 512])
    mel_channels: int = 768  # width of the convolution that reads the mel
    spectral_channels: int = 256
    spectral_blocks: int = 6
    spectral_kernel: int = 7  # frames each depthwise convolution sees (odd)
    negative_slope: float = 0.2  # leaky ReLU everywhere
    # The noise prior (wavegen.diffusion.priors): white | energy | spectral.
    prior: str = "spectral"
    # The network sees the noisy waveform divided by the level its mel implies
    # (wavegen.audio.dsp.mel_level) and its output is scaled back: a quiet decay and a
    # loud chord then look alike to it, so the 60 dB of a piano's dynamics cost no capacity.
    level_normalise: bool = True
    # The mel front-end (copied from the audio config): needed to read levels off a mel.
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    f_min: float = 0.0
    f_max: float = 8000.0
    # Fixed affine normalisation of the natural-log mel (its floor is log 1e-5 ≈ -11.5):
    # the network sees (log_mel - mel_mean) / mel_std, roughly zero-mean and unit-scale.
    mel_mean: float = -6.0
    mel_std: float = 3.0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "VocoderConfig":
        # "size" labelled the first checkpoints' configs (small, base), like family and name.
        cfg = dataclass_from(cls, plain(cfg), "vocoder", ignore=("family", "name", "size"))
        for key in ("upsample_factors", "upsample_channels", "downsample_channels"):
            setattr(cfg, key, [int(v) for v in getattr(cfg, key)])
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise a one-line :class:`WavegenError` if the sizes do not fit together."""
        factors, ups, downs = self.upsample_factors, self.upsample_channels, self.downsample_channels
        if not factors or any(int(f) < 1 for f in factors):
            raise WavegenError(f"vocoder upsample_factors must be positive integers, got {list(factors)}")
        if len(ups) != len(factors) or len(downs) != len(factors):
            raise WavegenError(
                f"vocoder needs one upsample channel and one downsample channel per upsample factor: "
                f"{len(factors)} factors, {len(ups)} upsample_channels, {len(downs)} downsample_channels"
            )
        if any(c < 1 for c in [*ups, *downs, self.mel_channels]):
            raise WavegenError("vocoder channel counts must be positive")
        product = math.prod(factors)
        if product != self.hop_length:
            raise WavegenError(
                f"vocoder upsample_factors {list(factors)} multiply to {product} but the mel hop is "
                f"{self.hop_length}; their product must equal audio.hop_length"
            )
        if self.architecture not in ARCHITECTURES:
            raise WavegenError(
                f"unknown vocoder architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}"
            )
        if self.architecture == "spectral":
            if self.spectral_channels < 1 or self.spectral_blocks < 1 or self.spectral_kernel < 1 or self.spectral_kernel % 2 == 0:
                raise WavegenError("spectral vocoder needs positive spectral_channels/spectral_blocks and an odd spectral_kernel")
            if self.prior != "spectral":
                raise WavegenError(f"the spectral vocoder needs prior=spectral (it whitens by that prior), got {self.prior!r}")
        from wavegen.diffusion.priors import PRIORS

        if self.prior not in PRIORS:
            raise WavegenError(f"unknown vocoder prior {self.prior!r}; choose one of {', '.join(PRIORS)}")
        if self.n_mels < 1:
            raise WavegenError(f"n_mels must be positive, got {self.n_mels}")

    def audio(self):
        """The :class:`~wavegen.audio.dsp.AudioConfig` of the mels this vocoder reads."""
        from wavegen.audio.dsp import AudioConfig

        return AudioConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                           hop_length=self.hop_length, n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max)

    def check_audio(self, audio: Mapping[str, Any]) -> None:
        """The vocoder only works with the mel settings it was built for."""
        mine = self.audio().to_dict()
        diffs = [f"{k} {mine[k]} (audio config: {audio[k]})" for k in
                 ("hop_length", "n_mels", "sample_rate", "n_fft", "win_length", "f_min", "f_max")
                 if k in audio and float(audio[k]) != float(mine[k])]
        if diffs:
            raise WavegenError(f"vocoder built for other mel settings: {', '.join(diffs)}")

    def to_dict(self) -> dict:
        return asdict(self)
