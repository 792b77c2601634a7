"""Priors over code frames: categorical WaveNets whose classes are joint code indices.

Two models, both built on :class:`~wavegen.models.wavenet.WaveNet` (``companding: none``),
so they sample through the shared step API and the fused kernels:

- :class:`CodePrior` - the top of a hierarchy: an unconditional WaveNet over the
  joint index of the top level's codes (e.g. 2 channels x 5 levels = 25 classes)::

      joint codes LongTensor[B, T] -> logits Tensor[B, K, T] for the next frame

- :class:`CodeAutoencoder` - a level-2 autoencoder *on level-1 codes*: a non-causal
  encoder squeezes level-1 code values Tensor[B, C1, F1] into slower scalar-quantised
  codes Tensor[B, C2, F1 / stride]; its decoder is a WaveNet over level-1 joint indices
  locally conditioned on them (``local_hop = stride``). At generation time the decoder
  alone turns top codes into level-1 codes.

Config sketch (``conf/model/prior/*.yaml``, ``family: prior``)::

    levels: [5, 5]      # the modelled codes' levels (joint classes = product)
    hop: 256            # audio samples per modelled frame (rates, seconds)
    sample_rate: 16000
    wavenet: {layers: ..., residual_channels: ...}   # head/classes/companding are set here
    upper: null         # or {levels: [5, 5], stride: 4, encoder: {...}}: a level-2 autoencoder
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.codes.quantiser import ScalarQuantiser
from wavegen.codes.joint import MAX_JOINT_CLASSES, joint_classes, to_joint
from wavegen.models.encoder import ResidualUnit
from wavegen.models.wavenet import WaveNet, WaveNetConfig, without_off_options
from wavegen.options import dataclass_from, plain

UPPER_INPUTS = ("codes", "audio")

# WaveNet options the prior decides itself: the head is a plain softmax over joint classes.
_OWNED = ("head", "classes", "companding", "local_channels", "local_hop")


@dataclass
class UpperCodesConfig:
    """The slower codes a level-2 autoencoder learns from the modelled codes."""

    levels: list[int] = field(default_factory=lambda: [5, 5])
    stride: int = 4  # modelled frames per upper frame
    width: int = 64  # encoder channels
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4])  # residual units before the downsampling
    frame_dilations: list[int] = field(default_factory=lambda: [1, 2])  # and after it, at the upper rate
    input: str = "codes"  # codes: encode level-1 code values | audio: encode the audio at hop x stride
    audio_encoder: dict = field(default_factory=dict)  # EncoderConfig options when input is audio


@dataclass
class PriorConfig:
    levels: list[int] = field(default_factory=lambda: [5, 5])
    hop: int = 256
    sample_rate: int = 16000
    wavenet: WaveNetConfig = field(default_factory=WaveNetConfig)
    upper: Optional[UpperCodesConfig] = None

    @classmethod
    def from_mapping(cls, cfg) -> "PriorConfig":
        from wavegen.errors import WavegenError
        top = plain(cfg)
        top.pop("family", None)
        top.pop("name", None)
        net = dict(top.pop("wavenet", {}) or {})
        for owned in _OWNED:
            if owned in net:
                raise WavegenError(f"prior wavenet.{owned} is set by the prior (from levels and upper); remove it")
        upper = top.pop("upper", None)
        upper_cfg = dataclass_from(UpperCodesConfig, upper, "prior upper") if upper else None
        result = dataclass_from(cls, top, "prior", wavenet=WaveNetConfig.from_mapping(net), upper=upper_cfg)
        result.levels = [int(v) for v in result.levels]
        if upper_cfg is not None:
            upper_cfg.levels = [int(v) for v in upper_cfg.levels]
        result.check()
        return result

    def check(self) -> None:
        from wavegen.errors import WavegenError

        k = joint_classes(self.levels)
        if not self.levels or any(not 2 <= v <= 255 for v in self.levels) or k > MAX_JOINT_CLASSES:
            raise WavegenError(f"prior levels {self.levels} give {k} joint classes; use 2..255 levels per channel "
                               f"and at most {MAX_JOINT_CLASSES} classes (fewer channels or levels)")
        if self.hop < 1:
            raise WavegenError(f"prior hop must be at least 1, got {self.hop}")
        if self.upper is not None:
            if self.upper.stride < 1 or any(not 2 <= v <= 255 for v in self.upper.levels):
                raise WavegenError(f"upper codes need stride >= 1 and 2..255 levels, got {self.upper}")
            if self.upper.input not in UPPER_INPUTS:
                raise WavegenError(f"unknown upper.input {self.upper.input!r}; choose one of {UPPER_INPUTS}")

    @property
    def classes(self) -> int:
        return joint_classes(self.levels)

    def wavenet_config(self) -> WaveNetConfig:
        extra = {"head": "categorical", "classes": self.classes, "companding": "none"}
        if self.upper is not None:
            extra.update(local_channels=len(self.upper.levels), local_hop=self.upper.stride)
        else:
            extra.update(local_channels=0, local_hop=1)
        return WaveNetConfig(**{**self.wavenet.to_dict(), **extra})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wavenet"] = without_off_options({k: v for k, v in d["wavenet"].items() if k not in _OWNED})
        return d


class CodePrior(nn.Module):
    """An unconditional WaveNet over joint code indices (the top of a hierarchy)."""

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.cfg = cfg
        self.net = WaveNet(cfg.wavenet_config())

    @property
    def levels(self) -> list[int]:
        return list(self.cfg.levels)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def forward(self, tokens: Tensor) -> Tensor:
        """LongTensor[B, T] joint indices -> Tensor[B, K, T] logits for frames 1..T."""
        return self.net(tokens)

    def fingerprint(self) -> bytes:
        return _fingerprint(self)


class CodeEncoder(nn.Module):
    """Code values Tensor[B, C1, F] (F a multiple of ``stride``) -> pre-activations Tensor[B, C2, F / stride].

    Non-causal, like the audio encoder: residual units at the input rate, a strided
    conv (kernel 2·stride), residual units at the output rate, a 1x1 projection.
    """

    def __init__(self, in_channels: int, cfg: UpperCodesConfig):
        super().__init__()
        s, w = cfg.stride, cfg.width
        self.stride = s
        self.input = nn.Conv1d(in_channels, w, 3, padding=1)
        self.units = nn.Sequential(*[ResidualUnit(w, 3, d) for d in cfg.dilations])
        self.down = nn.Conv1d(w, w, 2 * s, stride=s, padding=(s + 1) // 2) if s > 1 else nn.Identity()
        self.frame_units = nn.Sequential(*[ResidualUnit(w, 3, d) for d in cfg.frame_dilations])
        self.output = nn.Conv1d(w, len(cfg.levels), 1)

    def forward(self, values: Tensor) -> Tensor:
        if values.shape[-1] % self.stride:
            raise ValueError(f"code encoder input length {values.shape[-1]} is not a multiple of {self.stride}")
        h = self.units(self.input(values))
        h = self.down(F.silu(h))
        return self.output(F.silu(self.frame_units(h)))


class CodeAutoencoder(nn.Module):
    """A level-2 autoencoder on level-1 codes (see the module docstring).

    ``encode(indices) -> upper indices``; ``decoder`` (a WaveNet) samples level-1 joint
    indices given upper code values (``upper_values``) through the step API.
    """

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        if cfg.upper is None:
            raise ValueError("a CodeAutoencoder needs an 'upper' codes config")
        self.cfg = cfg
        self.lower_quantiser = ScalarQuantiser(cfg.levels)  # only for index -> grid value
        if cfg.upper.input == "audio":
            from wavegen.models.encoder import Encoder, EncoderConfig

            enc = EncoderConfig(**dict(cfg.upper.audio_encoder or {}))
            self.encoder = Encoder(enc, len(cfg.upper.levels), cfg.hop * cfg.upper.stride)
        else:
            self.encoder = CodeEncoder(len(cfg.levels), cfg.upper)
        self.quantiser = ScalarQuantiser(cfg.upper.levels)
        self.net = WaveNet(cfg.wavenet_config())

    @property
    def levels(self) -> list[int]:
        """The modelled (level-1) codes' levels."""
        return list(self.cfg.levels)

    @property
    def upper_levels(self) -> list[int]:
        return list(self.cfg.upper.levels)

    @property
    def stride(self) -> int:
        return self.cfg.upper.stride

    @property
    def hop(self) -> int:
        """Audio samples per *upper* frame."""
        return self.cfg.hop * self.stride

    def _pad(self, indices: Tensor) -> Tensor:
        """Repeat the last frame up to a multiple of the stride (a held code, not silence)."""
        extra = -indices.shape[-1] % self.stride
        return torch.cat([indices, indices[..., -1:].expand(*indices.shape[:-1], extra)], dim=-1) if extra else indices

    @property
    def reads_audio(self) -> bool:
        return self.cfg.upper.input == "audio"

    def quantise(self, source: Tensor):
        """Upper codes (with gradients) from level-1 codes LongTensor[B, C1, F] or, for
        ``input: audio``, from audio Tensor[B, T] -> :class:`~wavegen.codes.quantiser.Quantised`."""
        if self.reads_audio:
            extra = -source.shape[-1] % self.hop
            audio = F.pad(source.float(), (0, extra)) if extra else source.float()
            return self.quantiser(self.encoder(audio))
        values = self.lower_quantiser.indices_to_values(self._pad(source)).float()
        return self.quantiser(self.encoder(values))

    @torch.no_grad()
    def encode(self, source: Tensor) -> Tensor:
        """Level-1 codes LongTensor[B, C1, F] (or [C1, F]), or audio Tensor[B, T] (or [T]) for
        ``input: audio`` -> upper codes LongTensor[B, C2, F2] (or [C2, F2]), F2 = ceil(F / stride)."""
        squeeze = source.dim() == (1 if self.reads_audio else 2)
        out = self.quantise(source[None] if squeeze else source).indices
        return out[0] if squeeze else out

    def upper_values(self, upper_indices: Tensor) -> Tensor:
        """LongTensor[B, C2, F2] -> grid values Tensor[B, C2, F2] (the decoder's conditioning)."""
        return self.quantiser.indices_to_values(upper_indices).to(next(self.parameters()).dtype)

    def forward(self, tokens: Tensor, codes: Tensor, audio: Optional[Tensor] = None) -> Tensor:
        """Teacher forcing. tokens: LongTensor[B, T+1] joint level-1 indices; codes: LongTensor[B, C1, T+1];
        audio: Tensor[B, T·hop] under frames 1..T (``input: audio`` only).

        The upper codes are computed from frames 1..T (the ones predicted); returns logits
        Tensor[B, K, T] for those frames given the frames before them and the upper codes.
        """
        source = audio if self.reads_audio else codes[..., 1:]
        upper = self.quantise(source).values.to(self.net.embed.weight.dtype)
        return self.net(tokens[:, :-1], local=upper)

    def fingerprint(self) -> bytes:
        return _fingerprint(self)


def _fingerprint(model: nn.Module) -> bytes:
    """16 bytes identifying the config and weights (stored with the codes a model writes)."""
    digest = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()[:16]


def build_prior(cfg: PriorConfig) -> nn.Module:
    return CodeAutoencoder(cfg) if cfg.upper is not None else CodePrior(cfg)
