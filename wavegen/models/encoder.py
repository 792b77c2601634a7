"""The autoencoder's encoder: audio -> C slowly varying channels at one frame per ``hop`` samples.

A non-causal convolution stack (it may look ahead: encoding happens before decoding)::

    audio Tensor[B, T]
      -> μ-law companding (optional, see ``input``)      quiet piano tails matter as much as attacks
      -> conv k=7                                        Tensor[B, w_0, T]
      -> per stage s (stride r_s):
           residual units, dilations e.g. 1, 3, 9       non-causal, kernel 3, same length
           strided conv k=2·r_s, stride r_s              Tensor[B, w_{s+1}, T / (r_0···r_s)]
      -> residual units at the frame rate               context across frames (helps slow codes)
      -> 1x1 conv to C channels                         Tensor[B, C, F], F = T / hop

``hop`` is the product of the strides. The input is raw audio (μ-law companded
by default); a log-mel front end was not used: the strided stack learns its
own filterbank and keeps the encoder free of STFT framing, so every frame sees
exactly the samples its hop covers and chunked encoding stays exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODER_INPUTS = ("mulaw", "linear")


def default_strides(hop: int) -> list[int]:
    """Split ``hop`` into downsampling factors of at most 4 where it can (64 -> [4, 4, 4]).

    Primes larger than 4 (5, 7, ...) become strides of their own (300 -> [4, 3, 5, 5]).
    """
    if hop < 1:
        raise ValueError(f"hop must be at least 1, got {hop}")
    primes, n, p = [], hop, 2
    while n > 1:
        while n % p == 0:
            primes.append(p)
            n //= p
        p += 1
    strides, current = [], 1
    for prime in primes:
        if current * prime <= 4:
            current *= prime
        else:
            strides.append(current)
            current = prime
    if current > 1:
        strides.append(current)
    return strides


def compand(audio: Tensor, mu: int = 255) -> Tensor:
    """Continuous μ-law: sign(x)·log(1 + μ|x|)/log(1 + μ), Tensor in [-1, 1] -> [-1, 1]."""
    return torch.sign(audio) * torch.log1p(mu * audio.abs()) / math.log1p(mu)


@dataclass
class EncoderConfig:
    strides: Optional[list[int]] = None  # downsampling factors; None: derived from the hop
    base_channels: int = 32  # width at the sample rate
    max_channels: int = 128  # widths double per stage up to this
    dilations: list[int] = field(default_factory=lambda: [1, 3, 9])  # residual units per stage
    frame_dilations: list[int] = field(default_factory=lambda: [1, 2, 4])  # residual units at the frame rate
    kernel_size: int = 3
    input: str = "mulaw"  # mulaw | linear

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualUnit(nn.Module):
    """x + 1x1(act(dilated conv(act(x)))): non-causal, centred, length-preserving."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"encoder kernel_size must be odd (centred), got {kernel_size}")
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2))
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(F.silu(self.conv(F.silu(x))))


class Encoder(nn.Module):
    """Tensor[B, T] audio (T a multiple of ``hop``) -> Tensor[B, channels, T / hop] pre-activations."""

    def __init__(self, cfg: EncoderConfig, channels: int, hop: int):
        super().__init__()
        strides = list(cfg.strides) if cfg.strides else default_strides(hop)
        if math.prod(strides) != hop:
            raise ValueError(f"encoder strides {strides} multiply to {math.prod(strides)}, not the hop {hop}")
        if cfg.input not in ENCODER_INPUTS:
            raise ValueError(f"unknown encoder input {cfg.input!r}; choose one of {ENCODER_INPUTS}")
        self.cfg = cfg
        self.hop = hop
        self.strides = strides
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(len(strides) + 1)]
        k = cfg.kernel_size
        self.input_conv = nn.Conv1d(1, widths[0], 7, padding=3)
        self.stages = nn.ModuleList()
        for i, stride in enumerate(strides):
            units = [ResidualUnit(widths[i], k, d) for d in cfg.dilations]
            # kernel 2r, stride r, padding ceil(r/2): exactly T/r outputs for T divisible by r.
            down = nn.Conv1d(widths[i], widths[i + 1], 2 * stride, stride=stride, padding=(stride + 1) // 2)
            self.stages.append(nn.Sequential(*units, nn.SiLU(), down))
        self.frame_units = nn.Sequential(*[ResidualUnit(widths[-1], k, d) for d in cfg.frame_dilations])
        self.output = nn.Conv1d(widths[-1], channels, 1)
        self.context = self._context_samples(widths)
        self._initialise()

    def _initialise(self) -> None:
        """Start with codes that follow the audio.

        PyTorch's default init shrinks a signal at every conv and adds a random bias, so
        through this stack the output came out nearly constant (std 0.003 against a bias of
        0.05 on piano audio): every frame rounded to the same level, the decoder learnt to
        ignore the codes and the codes never came alive. Here every conv is He-initialised
        without bias and each residual unit starts as the identity (its last conv is zero):
        on the embedded piano set the initial pre-activations then spread 0.15-0.5 grid
        units, over several levels, and change from frame to frame with the audio.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, ResidualUnit):
                nn.init.zeros_(module.mix.weight)

    def _context_samples(self, widths) -> int:
        """Samples on either side of a frame that can influence it (a safe upper bound).

        Chunked encoding reads this much extra audio around each chunk so that its
        frames equal those of encoding the whole clip at once.
        """
        k = self.cfg.kernel_size
        span = 6  # the input conv, kernel 7
        scale = 1
        for stride in self.strides:
            span += sum((k - 1) * d for d in self.cfg.dilations) * scale
            span += (2 * stride - 1) * scale
            scale *= stride
        span += sum((k - 1) * d for d in self.cfg.frame_dilations) * scale
        return span

    def forward(self, audio: Tensor) -> Tensor:
        if audio.shape[-1] % self.hop:
            raise ValueError(f"encoder input length {audio.shape[-1]} is not a multiple of the hop {self.hop}")
        x = audio.unsqueeze(1)  # [B, 1, T]
        if self.cfg.input == "mulaw":
            x = compand(x)
        h = self.input_conv(x)
        for stage in self.stages:
            h = stage(h)
        return self.output(F.silu(self.frame_units(h)))
