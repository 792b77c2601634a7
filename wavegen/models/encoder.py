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
by default): the strided stack learns its own filterbank and keeps the encoder
free of STFT framing, so every frame sees exactly the samples its hop covers.

``input: mel`` swaps the sample-rate stages for a fixed log-mel front end (``mel_bands``
bands, one frame per ``mel_hop`` samples, centred, as :func:`wavegen.audio.dsp.mel_spectrogram`
makes them); the strides then only downsample mel frames (``hop = mel_hop · Π strides``).
It is for the mel-decoder autoencoder, whose loss is the log-mel: there the raw stack had
to learn that filterbank back and cost ~0.9 s a step of 4 x 2 s on one CPU thread
(see docs/piano_ae.md). Chunked encoding stays exact either way: ``context`` covers
the STFT window too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODER_INPUTS = ("mulaw", "linear", "mel")


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
    input: str = "mulaw"  # mulaw | linear | mel (a log-mel front end, see the module docstring)
    mel_bands: int = 80  # input: mel only
    mel_hop: int = 256  # input: mel only; n_fft = window = 4 · mel_hop, 0 Hz to Nyquist

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.input != "mel":  # left out, so the configs (and fingerprints) of audio-input encoders stay as they were
            del d["mel_bands"], d["mel_hop"]
        return d

    def mel_config(self, sample_rate: int):
        """The front end's :class:`~wavegen.audio.dsp.AudioConfig` (input: mel)."""
        from wavegen.audio.dsp import AudioConfig

        return AudioConfig(sample_rate=sample_rate, n_fft=4 * self.mel_hop, win_length=4 * self.mel_hop,
                           hop_length=self.mel_hop, n_mels=self.mel_bands, f_min=0.0, f_max=sample_rate / 2)


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

    def __init__(self, cfg: EncoderConfig, channels: int, hop: int, sample_rate: int = 16000):
        super().__init__()
        if cfg.input not in ENCODER_INPUTS:
            raise ValueError(f"unknown encoder input {cfg.input!r}; choose one of {ENCODER_INPUTS}")
        mel = cfg.input == "mel"
        if mel and hop % cfg.mel_hop:
            raise ValueError(f"a mel-input encoder needs the hop {hop} to be a multiple of mel_hop {cfg.mel_hop}")
        base_hop = hop // cfg.mel_hop if mel else hop  # what the strides cover
        strides = list(cfg.strides) if cfg.strides else default_strides(base_hop)
        if math.prod(strides) != base_hop:
            raise ValueError(f"encoder strides {strides} multiply to {math.prod(strides)}, not {base_hop} "
                             f"(the hop {hop}{f' / mel_hop {cfg.mel_hop}' if mel else ''})")
        self.cfg = cfg
        self.hop = hop
        self.strides = strides
        self.mel_config = cfg.mel_config(sample_rate) if mel else None
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(len(strides) + 1)]
        if mel:  # mel frames are already far from the sample rate: the full width from the start
            widths = [cfg.max_channels] * (len(strides) + 1)
        k = cfg.kernel_size
        self.input_conv = nn.Conv1d(cfg.mel_bands, widths[0], 3, padding=1) if mel else nn.Conv1d(1, widths[0], 7, padding=3)
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
        span, scale = 6, 1  # the input conv, kernel 7
        if self.mel_config is not None:  # the STFT window's half, then the input conv (kernel 3) in frames
            scale = self.cfg.mel_hop
            span = self.mel_config.n_fft // 2 + scale
        for stride in self.strides:
            span += sum((k - 1) * d for d in self.cfg.dilations) * scale
            span += (2 * stride - 1) * scale
            scale *= stride
        span += sum((k - 1) * d for d in self.cfg.frame_dilations) * scale
        return span

    def forward(self, audio: Tensor) -> Tensor:
        if audio.shape[-1] % self.hop:
            raise ValueError(f"encoder input length {audio.shape[-1]} is not a multiple of the hop {self.hop}")
        if self.mel_config is not None:
            from wavegen.audio.dsp import mel_spectrogram

            # Tensor[B, bands, T / mel_hop]: the last centred frame (at sample T) belongs to the next hop.
            x = mel_spectrogram(audio.float(), self.mel_config)[..., :-1]
            x = (x + 5.0) / 3.0  # natural-log magnitudes (floor -11.5) to roughly unit scale
        else:
            x = audio.unsqueeze(1)  # [B, 1, T]
        if self.cfg.input == "mulaw":
            x = compand(x)
        h = self.input_conv(x)
        for stage in self.stages:
            h = stage(h)
        return self.output(F.silu(self.frame_units(h)))
