"""The vocoder's hyper-parameters and the checks that tie them to the audio config."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from wavegen.errors import WavegenError


@dataclass
class VocoderConfig:
    """A WaveGrad-style vocoder: log mel Tensor[B, n_mels, F] -> waveform Tensor[B, F · hop].

    ``upsample_factors[k]`` and ``upsample_channels[k]`` describe UBlock ``k`` (mel side
    first). ``downsample_channels[j]`` is the width of the noisy-waveform path after ``j``
    DBlocks (entry 0 is the stem convolution at the full sample rate); the DBlocks
    downsample by the UBlock factors in reverse, so every UBlock meets a FiLM at its own
    time resolution.
    """

    n_mels: int = 80
    hop_length: int = 256
    upsample_factors: list[int] = field(default_factory=lambda: [4, 4, 4, 2, 2])
    upsample_channels: list[int] = field(default_factory=lambda: [512, 512, 256, 128, 128])
    downsample_channels: list[int] = field(default_factory=lambda: [32, 128, 128, 256, 512])
    mel_channels: int = 768  # width of the convolution that reads the mel
    negative_slope: float = 0.2  # leaky ReLU everywhere
    noise_level_scale: float = 5000.0  # √ᾱ ∈ [0, 1] is multiplied by this before the sinusoids
    # Fixed affine normalisation of the natural-log mel (its floor is log 1e-5 ≈ -11.5):
    # the network sees (log_mel - mel_mean) / mel_std, roughly zero-mean and unit-scale.
    mel_mean: float = -6.0
    mel_std: float = 3.0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "VocoderConfig":
        names = set(cls.__dataclass_fields__)
        data = dict(cfg)
        unknown = set(data) - names - {"family", "name", "size"}
        if unknown:
            raise WavegenError(f"unknown vocoder option(s) {sorted(unknown)}; valid options: {sorted(names)}")
        values = {k: v for k, v in data.items() if k in names}
        for key in ("upsample_factors", "upsample_channels", "downsample_channels"):
            if key in values:
                values[key] = [int(v) for v in values[key]]
        cfg = cls(**values)
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
        if self.n_mels < 1:
            raise WavegenError(f"n_mels must be positive, got {self.n_mels}")

    def check_audio(self, audio: Mapping[str, Any]) -> None:
        """The vocoder only works with the mel settings it was built for."""
        hop, n_mels = int(audio["hop_length"]), int(audio["n_mels"])
        if hop != self.hop_length or n_mels != self.n_mels:
            raise WavegenError(
                f"vocoder built for hop {self.hop_length} and {self.n_mels} mels, "
                f"but the audio config has hop {hop} and {n_mels} mels"
            )

    def to_dict(self) -> dict:
        return asdict(self)
