"""A WaveNet autoencoder with scalar-quantised, slowly varying codes.

::

    audio Tensor[B, T]
      -> Encoder (non-causal, strided)           pre-activations Tensor[B, C, F], F = ceil(T / hop)
      -> ScalarQuantiser (C channels, L_c levels) indices LongTensor[B, C, F], grid values in [-1, 1]
      -> WaveNet decoder, locally conditioned on the grid values (local_channels = C, local_hop = hop)
      -> logits Tensor[B, A, T] for every next sample (teacher-forced training)

Training minimises the decoder's NLL plus a slowness penalty on the code values
(its weight steered by :class:`~wavegen.codes.slowness.RateController` to a target
event rate) plus an optional margin penalty. Generation goes through the decoder's
step API (:func:`wavegen.generate.sampling.generate_audio`), so the fused kernels
behind :meth:`WaveNet.step` speed decoding up without any change here.

The API other stages build on::

    model.encode(audio)          -> indices LongTensor[B, C, F]
    model.decode_codes(indices)  -> local features Tensor[B, C, F] (what the decoder is conditioned on)
    model.decode(indices, n)     -> audio Tensor[B, n], sampled
    model.fingerprint()          -> 16 bytes identifying these weights (stored in code files)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.codes.quantiser import Quantised, ScalarQuantiser
from wavegen.codes.slowness import SLOWNESS_KINDS, RateController
from wavegen.models.encoder import Encoder, EncoderConfig
from wavegen.models.wavenet import WaveNet, WaveNetConfig


@dataclass
class SlownessConfig:
    kind: str = "group"  # group | l1 | l2 (see wavegen.codes.slowness)
    values: str = "quantised"  # penalise the quantised values (straight-through) | the continuous ones
    target_events_per_second: Optional[float] = 30.0  # None: no control, the weight stays fixed
    initial_weight: float = 1.0  # 0 with no target: slowness off (fixed-rate codes)
    gain: float = 0.005  # log-weight change per step per unit of relative rate error
    min_weight: float = 1e-4
    max_weight: float = 1e3
    warmup_steps: int = 0  # the weight ramps up from 0 and control starts after this many steps


@dataclass
class AutoencoderConfig:
    sample_rate: int = 16000
    hop: int = 64
    levels: list[int] = field(default_factory=lambda: [15, 15, 15, 15])
    bound: str = "tanh"  # tanh (FSQ) | clip (Piano Genie, pair with margin_weight > 0)
    margin_weight: float = 0.0
    noise_substitution: bool = True  # train the decoder on continuous codes + one level of uniform noise
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    slowness: SlownessConfig = field(default_factory=SlownessConfig)
    decoder: WaveNetConfig = field(default_factory=WaveNetConfig)

    @classmethod
    def from_mapping(cls, cfg) -> "AutoencoderConfig":
        """Build from a plain or OmegaConf mapping; unknown keys are a one-line error."""
        from wavegen.errors import WavegenError

        cfg = _plain(cfg)
        top = dict(cfg)
        top.pop("family", None)
        top.pop("name", None)
        encoder = _dataclass_from(EncoderConfig, top.pop("encoder", {}) or {}, "encoder")
        slowness = _dataclass_from(SlownessConfig, top.pop("slowness", {}) or {}, "slowness")
        decoder_map = dict(top.pop("decoder", {}) or {})
        for owned in ("local_channels", "local_hop"):
            if owned in decoder_map:
                raise WavegenError(f"decoder.{owned} is set by the autoencoder (levels and hop); remove it")
        decoder = WaveNetConfig.from_mapping(decoder_map)
        result = _dataclass_from(cls, top, "autoencoder", encoder=encoder, slowness=slowness, decoder=decoder)
        result.levels = [int(v) for v in result.levels]
        result.check()
        return result

    def check(self) -> None:
        from wavegen.errors import WavegenError

        if self.hop < 1:
            raise WavegenError(f"autoencoder hop must be at least 1, got {self.hop}")
        if not self.levels or any(not 2 <= v <= 255 for v in self.levels):
            raise WavegenError(f"autoencoder levels must be 2..255 per channel, got {self.levels}")
        if self.slowness.kind not in SLOWNESS_KINDS:
            raise WavegenError(f"unknown slowness kind {self.slowness.kind!r}; choose one of {SLOWNESS_KINDS}")
        if self.slowness.values not in ("quantised", "continuous"):
            raise WavegenError(f"slowness.values must be 'quantised' or 'continuous', not {self.slowness.values!r}")
        if self.encoder.strides and math.prod(self.encoder.strides) != self.hop:
            raise WavegenError(f"encoder.strides {self.encoder.strides} must multiply to the hop {self.hop}")

    def decoder_config(self) -> WaveNetConfig:
        """The decoder WaveNet's config: conditioned on C channels at one frame per hop."""
        return WaveNetConfig(**{**self.decoder.to_dict(), "local_channels": len(self.levels), "local_hop": self.hop})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder"] = {k: v for k, v in d["decoder"].items() if k not in ("local_channels", "local_hop")}
        return d


def _plain(cfg) -> dict:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # omegaconf is optional for the model itself
        pass
    return dict(cfg)


def _dataclass_from(cls, mapping: dict, where: str, **fixed):
    from wavegen.errors import WavegenError

    names = set(cls.__dataclass_fields__)
    unknown = set(mapping) - names
    if unknown:
        raise WavegenError(f"unknown {where} option(s) {sorted(unknown)}; valid options: {sorted(names)}")
    return cls(**{**{k: v for k, v in mapping.items() if k in names}, **fixed})


@dataclass
class AutoencoderOutput:
    """A teacher-forced pass: logits Tensor[B, A, T] for targets Tensor[B, T], and the codes."""

    logits: Tensor
    targets: Tensor
    codes: Quantised


class WaveNetAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder, len(cfg.levels), cfg.hop)
        self.quantiser = ScalarQuantiser(cfg.levels, cfg.bound)
        s = cfg.slowness
        self.controller = RateController(s.target_events_per_second, s.initial_weight, s.gain, s.min_weight,
                                         s.max_weight, s.warmup_steps)
        self.decoder = WaveNet(cfg.decoder_config())

    # ------------------------------------------------------------------ sizes

    @property
    def hop(self) -> int:
        return self.cfg.hop

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def levels(self) -> list[int]:
        return list(self.cfg.levels)

    @property
    def channels(self) -> int:
        return len(self.cfg.levels)

    def num_frames(self, num_samples: int) -> int:
        """Code frames for ``num_samples`` of audio: ceil(num_samples / hop)."""
        return -(-int(num_samples) // self.hop)

    def _pad_to_hop(self, audio: Tensor) -> Tensor:
        """Tensor[B, T] -> Tensor[B, F·hop], zero-padded on the right (silence)."""
        extra = self.num_frames(audio.shape[-1]) * self.hop - audio.shape[-1]
        return F.pad(audio, (0, extra)) if extra else audio

    # ------------------------------------------------------------------ encoding

    def quantise(self, audio: Tensor) -> Quantised:
        """Tensor[B, T] in [-1, 1] -> :class:`Quantised` codes with gradients (training path)."""
        return self.quantiser(self.encoder(self._pad_to_hop(audio.float())))

    @torch.no_grad()
    def encode(self, audio: Tensor, chunk_frames: Optional[int] = None) -> Tensor:
        """Tensor[B, T] (or [T]) in [-1, 1] -> code indices LongTensor[B, C, ceil(T / hop)] (or [C, F]).

        ``chunk_frames`` bounds memory on long audio: frames are computed that many at a
        time from windows with enough context on both sides to equal whole-clip encoding.
        """
        squeeze = audio.dim() == 1
        audio = self._pad_to_hop(audio[None] if squeeze else audio)
        if chunk_frames is None:
            indices = self.quantiser(self.encoder(audio.float())).indices
        else:
            indices = torch.cat(list(self._encode_chunks(audio, chunk_frames)), dim=-1)
        return indices[0] if squeeze else indices

    def _encode_chunks(self, audio: Tensor, chunk_frames: int) -> Iterator[Tensor]:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
        hop = self.hop
        frames = audio.shape[-1] // hop
        margin = -(-self.encoder.context // hop) + 1  # frames of context on either side
        for first in range(0, frames, chunk_frames):
            last = min(first + chunk_frames, frames)
            lo, hi = max(0, first - margin), min(frames, last + margin)
            pre = self.encoder(audio[:, lo * hop : hi * hop].float())
            yield self.quantiser(pre[..., first - lo : last - lo]).indices

    def decode_codes(self, indices: Tensor) -> Tensor:
        """Code indices LongTensor[B, C, F] -> local features Tensor[B, C, F] for the decoder (grid values)."""
        self.quantiser.check_indices(indices)
        return self.quantiser.indices_to_values(indices).to(next(self.parameters()).dtype)

    # ------------------------------------------------------------------ training

    def forward(self, audio: Tensor) -> AutoencoderOutput:
        """Teacher-forced pass over Tensor[B, T] audio: logits for every sample given the ones before."""
        codes = self.quantise(audio)
        local = codes.values
        if self.training and self.cfg.noise_substitution:
            local = self.quantiser.noisy_values(codes.continuous)
        head = self.decoder.head
        targets = head.encode(audio)
        silence = head.silence(audio.shape[0], audio.device).to(targets.dtype)
        inputs = torch.cat([silence[:, None], targets[:, :-1]], dim=1)
        logits = self.decoder(inputs, local=local.to(audio.dtype))
        return AutoencoderOutput(logits=logits, targets=targets, codes=codes)

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def decode_stream(
        self,
        indices: Tensor,
        num_samples: Optional[int] = None,
        temperature: float = 1.0,
        generator: Optional[torch.Generator] = None,
        chunk_size: int = 4096,
        backend: str = "auto",
    ) -> Iterator[Tensor]:
        """Sample audio for codes LongTensor[B, C, F]; yields chunks Tensor[B, <=chunk_size].

        ``num_samples`` defaults to F·hop and must not exceed it.
        """
        from wavegen.generate.sampling import generate_audio

        if indices.dim() != 3:
            raise ValueError(f"expected code indices Tensor[B, C, F], got shape {tuple(indices.shape)}")
        capacity = indices.shape[-1] * self.hop
        num_samples = capacity if num_samples is None else int(num_samples)
        if not 0 < num_samples <= capacity:
            raise ValueError(f"{indices.shape[-1]} frames hold 1..{capacity} samples, asked for {num_samples}")
        local = self.decode_codes(indices)
        yield from generate_audio(self.decoder, num_samples, batch_size=indices.shape[0], local=local,
                                  temperature=temperature, generator=generator, chunk_size=chunk_size,
                                  backend=backend)

    @torch.no_grad()
    def decode(self, indices: Tensor, num_samples: Optional[int] = None, **kwargs) -> Tensor:
        """Codes LongTensor[B, C, F] -> sampled audio Tensor[B, num_samples] (default F·hop)."""
        return torch.cat(list(self.decode_stream(indices, num_samples, **kwargs)), dim=1)

    # ------------------------------------------------------------------ identity

    def fingerprint(self) -> bytes:
        """16 bytes that change with the config or any weight that gives codes their meaning.

        The rate controller's buffers are left out: they steer training, not decoding.
        """
        digest = hashlib.sha256(json.dumps(self.cfg.to_dict(), sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            if name.startswith("controller."):
                continue
            t = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.digest()[:16]
