"""Codes -> mel: a small non-causal conv net predicting the log-mel of the audio from level-1 codes.

The fast way down to audio: instead of sampling the level-1 WaveNet decoder one
sample at a time, predict the audio's log-mel from its codes in one parallel pass
and hand it to the diffusion vocoder::

    level-1 code indices LongTensor[B, C, F]   (F = ceil(T / hop))
      -> grid values Tensor[B, C, F]
      -> conv k=3, residual units (dilated, non-causal), 1x1     Tensor[B, n_mels, F], one prediction per code frame
      -> mel frame m reads code frame min(m·mel_hop // hop, F-1)  Tensor[B, n_mels, M]

Mel frames are centred (frame ``m`` around sample ``m·mel_hop``), which falls in code
frame ``m·mel_hop // hop``; the residual units' context covers the rest of the window.
Either hop may be the longer one (4 code frames per mel frame for hop 64 and mel hop 256;
2 mel frames per code frame for hop 512), as long as one divides the other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.codes.quantiser import ScalarQuantiser
from wavegen.models.encoder import ResidualUnit
from wavegen.options import dataclass_from, plain


@dataclass
class CodesToMelConfig:
    levels: list[int] = field(default_factory=lambda: [5, 5, 5])  # level-1 codes (must match the autoencoder)
    hop: int = 64  # audio samples per code frame
    sample_rate: int = 16000
    n_mels: int = 80
    mel_hop: int = 256
    width: int = 64
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 1, 2, 4, 8])
    mel_mean: float = -6.0  # the output starts near the data's mean log-mel

    @classmethod
    def from_mapping(cls, cfg) -> "CodesToMelConfig":
        from wavegen.errors import WavegenError
        result = dataclass_from(cls, plain(cfg), "codes_to_mel", ignore=("family", "name"))
        result.levels = [int(v) for v in result.levels]
        if result.mel_hop % result.hop and result.hop % result.mel_hop:
            raise WavegenError(f"codes_to_mel needs mel_hop {result.mel_hop} and the code hop {result.hop} "
                               "to divide one another")
        return result

    def to_dict(self) -> dict:
        return asdict(self)


class CodesToMel(nn.Module):
    def __init__(self, cfg: CodesToMelConfig):
        super().__init__()
        self.cfg = cfg
        self.quantiser = ScalarQuantiser(cfg.levels)  # index -> grid value only
        self.input = nn.Conv1d(len(cfg.levels), cfg.width, 3, padding=1)
        self.units = nn.Sequential(*[ResidualUnit(cfg.width, 3, d) for d in cfg.dilations])
        self.output = nn.Conv1d(cfg.width, cfg.n_mels, 1)

    def code_frame_of(self, mel_frames: Tensor) -> Tensor:
        """LongTensor[M] mel frame numbers -> the code frame each one's centre falls in."""
        return mel_frames * self.cfg.mel_hop // self.cfg.hop

    def mel_frames_before(self, code_frame: int) -> int:
        """How many mel frames read code frames before ``code_frame``."""
        return -(-code_frame * self.cfg.hop // self.cfg.mel_hop)

    @property
    def context(self) -> int:
        """Code frames on either side that influence one output frame."""
        return 1 + sum(self.cfg.dilations)

    def num_code_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.cfg.hop)

    def num_mel_frames(self, num_samples: int) -> int:
        """Mel frames whose vocoded audio, (M-1)·mel_hop samples, covers ``num_samples``."""
        from wavegen.audio.dsp import covering_mel_frames

        return covering_mel_frames(num_samples, self.cfg.mel_hop)

    def code_values(self, indices: Tensor) -> Tensor:
        """LongTensor[B, C, F] -> grid values Tensor[B, C, F]."""
        self.quantiser.check_indices(indices)
        return self.quantiser.indices_to_values(indices).to(self.output.weight.dtype)

    def per_frame(self, values: Tensor) -> Tensor:
        """Tensor[B, C, F] code values -> Tensor[B, n_mels, F] log-mel predicted at every code frame."""
        h = self.units(self.input(values))
        return self.output(F.silu(h)) + self.cfg.mel_mean

    def forward(self, indices: Tensor, mel_frames: int) -> Tensor:
        """LongTensor[B, C, F] -> Tensor[B, n_mels, mel_frames] (frame m from code frame min(m·mel_hop // hop, F-1))."""
        return self.from_values(self.code_values(indices), mel_frames)

    def from_values(self, values: Tensor, mel_frames: int) -> Tensor:
        """Code values Tensor[B, C, F] (grid values, or the continuous ones while training) ->
        Tensor[B, n_mels, mel_frames], as :meth:`forward`."""
        out = self.per_frame(values.to(self.output.weight.dtype))
        picks = torch.clamp(self.code_frame_of(torch.arange(mel_frames, device=out.device)), max=out.shape[-1] - 1)
        return out[..., picks]
