"""A WaveNet autoencoder with scalar-quantised, slowly varying codes.

::

    audio Tensor[B, T]
      -> Encoder (non-causal, strided)           pre-activations Tensor[B, C, F], F = ceil(T / hop)
      -> ScalarQuantiser (C channels, L_c levels) indices LongTensor[B, C, F], grid values in [-1, 1]
      -> decoder, by ``decoder_kind``:
         wavenet: a WaveNet locally conditioned on the grid values (local_channels = C, local_hop = hop)
                  -> logits Tensor[B, A, T] for every next sample (teacher-forced training)
         mel:     :class:`~wavegen.models.codes_to_mel.CodesToMel` on the grid values
                  -> log-mel Tensor[B, n_mels, T // mel_hop + 1], turned into audio by the
                     shipped vocoder named in ``vocoder`` (see :mod:`wavegen.api`)

Training minimises the decoder's loss (the WaveNet's NLL, or the L1 distance of the
predicted log-mel to the audio's) plus a slowness penalty on the code values (its
weight steered by :class:`~wavegen.codes.slowness.RateController` to a target event
rate) plus an optional margin penalty. The WaveNet kind generates through the
decoder's step API (:func:`wavegen.generate.sampling.generate_audio`), so the fused
kernels behind :meth:`WaveNet.step` speed decoding up without any change here. The
mel kind decodes in one parallel pass and leaves the vocoder to the caller: a
vocoder is larger than this model and ships on its own.

The API other stages build on::

    model.encode(audio)          -> indices LongTensor[B, C, F]
    model.decode_codes(indices)  -> local features Tensor[B, C, F] (what the decoder is conditioned on)
    wavegen.generate.autoencoder.decode(model, indices, n) -> audio Tensor[B, n], sampled (wavenet kind;
                                    the sampling loop lives with the other sampling code, not in models/)
    model.decode_mel(indices, n) -> log-mel Tensor[B, n_mels, ceil(n / mel_hop) + 1] (mel kind)
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
from wavegen.models.codes_to_mel import CodesToMel, CodesToMelConfig
from wavegen.models.encoder import Encoder, EncoderConfig
from wavegen.models.wavenet import WaveNet, WaveNetConfig, without_off_options
from wavegen.options import dataclass_from, plain

DECODER_KINDS = ("wavenet", "mel")
# Decoder options the autoencoder sets itself, per kind (the codes' channels, hop and rate).
_OWNED = {"wavenet": ("local_channels", "local_hop"), "mel": ("levels", "hop", "sample_rate")}


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
    decoder_kind: str = "wavenet"  # wavenet (samples audio) | mel (predicts the log-mel; a vocoder makes audio)
    vocoder: Optional[str] = None  # mel kind: the shipped vocoder (wavegen.pretrained name) trained on that mel
    # A WaveNetConfig for the wavenet kind, a CodesToMelConfig for the mel kind.
    decoder: WaveNetConfig | CodesToMelConfig = field(default_factory=WaveNetConfig)

    @classmethod
    def from_mapping(cls, cfg) -> "AutoencoderConfig":
        """Build from a plain or OmegaConf mapping; unknown keys are a one-line error."""
        from wavegen.errors import WavegenError

        top = plain(cfg)
        top.pop("family", None)
        top.pop("name", None)
        encoder = dataclass_from(EncoderConfig, top.pop("encoder", {}), "encoder")
        slowness = dataclass_from(SlownessConfig, top.pop("slowness", {}), "slowness")
        decoder_map = dict(top.pop("decoder", {}) or {})
        kind = top.get("decoder_kind", "wavenet")
        if kind not in DECODER_KINDS:
            raise WavegenError(f"unknown decoder_kind {kind!r}; choose one of {DECODER_KINDS}")
        for owned in _OWNED[kind]:
            if owned in decoder_map:
                raise WavegenError(f"decoder.{owned} is set by the autoencoder (levels, hop, sample_rate); remove it")
        if kind == "wavenet":
            decoder = WaveNetConfig.from_mapping(decoder_map)
        else:  # the owned keys get placeholders here; decoder_config() fills in the real ones
            decoder = CodesToMelConfig.from_mapping({**decoder_map, "hop": decoder_map.get("mel_hop", 256)})
        result = dataclass_from(cls, top, "autoencoder", encoder=encoder, slowness=slowness, decoder=decoder)
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
        if self.encoder.input == "mel":
            if self.hop % self.encoder.mel_hop:
                raise WavegenError(f"a mel-input encoder needs the hop {self.hop} to be a multiple of "
                                   f"encoder.mel_hop {self.encoder.mel_hop}")
            if self.encoder.strides and math.prod(self.encoder.strides) * self.encoder.mel_hop != self.hop:
                raise WavegenError(f"encoder.strides {self.encoder.strides} times encoder.mel_hop "
                                   f"{self.encoder.mel_hop} must equal the hop {self.hop}")
        elif self.encoder.strides and math.prod(self.encoder.strides) != self.hop:
            raise WavegenError(f"encoder.strides {self.encoder.strides} must multiply to the hop {self.hop}")
        if self.decoder_kind not in DECODER_KINDS:
            raise WavegenError(f"unknown decoder_kind {self.decoder_kind!r}; choose one of {DECODER_KINDS}")
        if self.decoder_kind == "mel":
            mel_hop = self.decoder.mel_hop
            if mel_hop % self.hop and self.hop % mel_hop:
                raise WavegenError(f"the mel decoder needs decoder.mel_hop {mel_hop} and the hop {self.hop} "
                                   "to divide one another")

    def decoder_config(self) -> WaveNetConfig | CodesToMelConfig:
        """The decoder's config, reading C channels at one frame per hop."""
        if self.decoder_kind == "mel":
            return CodesToMelConfig(**{**self.decoder.to_dict(), "levels": list(self.levels), "hop": self.hop,
                                       "sample_rate": self.sample_rate})
        return WaveNetConfig(**{**self.decoder.to_dict(), "local_channels": len(self.levels), "local_hop": self.hop})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder"] = self.encoder.to_dict()
        d["decoder"] = {k: v for k, v in d["decoder"].items() if k not in _OWNED[self.decoder_kind]}
        if self.decoder_kind == "wavenet":
            d["decoder"] = without_off_options(d["decoder"])
            # Left out so that a WaveNet autoencoder's config, and with it the fingerprint its
            # code files carry, stays what it was before the mel kind existed.
            del d["decoder_kind"], d["vocoder"]
        return d


@dataclass
class AutoencoderOutput:
    """A training pass and its codes. WaveNet kind: logits Tensor[B, A, T] for targets Tensor[B, T]
    (teacher-forced). Mel kind: mel Tensor[B, n_mels, T // mel_hop + 1], the predicted log-mel."""

    codes: Quantised
    logits: Optional[Tensor] = None
    targets: Optional[Tensor] = None
    mel: Optional[Tensor] = None


class WaveNetAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder, len(cfg.levels), cfg.hop, cfg.sample_rate)
        self.quantiser = ScalarQuantiser(cfg.levels, cfg.bound)
        s = cfg.slowness
        self.controller = RateController(s.target_events_per_second, s.initial_weight, s.gain, s.min_weight,
                                         s.max_weight, s.warmup_steps)
        self.decoder = CodesToMel(cfg.decoder_config()) if cfg.decoder_kind == "mel" else WaveNet(cfg.decoder_config())

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

    @property
    def decoder_kind(self) -> str:
        return self.cfg.decoder_kind

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
        """Training pass over Tensor[B, T] audio: the WaveNet's teacher-forced logits for every sample
        given the ones before, or the mel decoder's log-mel (frames centred on 0, mel_hop, ... as
        :func:`wavegen.audio.dsp.mel_spectrogram` makes them)."""
        codes = self.quantise(audio)
        local = codes.values
        if self.training and self.cfg.noise_substitution:
            local = self.quantiser.noisy_values(codes.continuous)
        if self.decoder_kind == "mel":
            mel_frames = audio.shape[-1] // self.decoder.cfg.mel_hop + 1
            return AutoencoderOutput(codes=codes, mel=self.decoder.from_values(local, mel_frames))
        head = self.decoder.head
        targets = head.encode(audio)
        silence = head.silence(audio.shape[0], audio.device).to(targets.dtype)
        inputs = torch.cat([silence[:, None], targets[:, :-1]], dim=1)
        logits = self.decoder(inputs, local=local.to(audio.dtype))
        return AutoencoderOutput(logits=logits, targets=targets, codes=codes)

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def check_length(self, indices: Tensor, num_samples: Optional[int]) -> int:
        """How many samples to decode from codes LongTensor[B, C, F]: ``num_samples`` (default F·hop), at most F·hop."""
        capacity = indices.shape[-1] * self.hop
        num_samples = capacity if num_samples is None else int(num_samples)
        if not 0 < num_samples <= capacity:
            raise ValueError(f"{indices.shape[-1]} frames hold 1..{capacity} samples, asked for {num_samples}")
        return num_samples

    @torch.no_grad()
    def decode_mel(self, indices: Tensor, num_samples: Optional[int] = None) -> Tensor:
        """Mel kind: codes LongTensor[B, C, F] -> log-mel Tensor[B, n_mels, ceil(n / mel_hop) + 1].

        That many frames vocode to at least ``num_samples`` (default F·hop) samples: a vocoder
        makes (M-1)·mel_hop samples from M frames.
        """
        if self.decoder_kind != "mel":
            raise ValueError("decode_mel needs an autoencoder with decoder_kind 'mel'")
        if indices.dim() != 3:
            raise ValueError(f"expected code indices Tensor[B, C, F], got shape {tuple(indices.shape)}")
        num_samples = self.check_length(indices, num_samples)
        return self.decoder(indices, self.decoder.num_mel_frames(num_samples)).float()

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
