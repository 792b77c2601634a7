"""Onset strength: where notes are struck, one value per block of samples (torch only).

A struck note brings new partials (and a broadband hammer transient): spectral bins whose
level rises above what they held just before. The feature is the *spectral flux* of the
log spectrum, in the robust form that ignores beating and slow decays:

    D[f, k] = 20·log10(|STFT[f, k]| + floor)        (a 512-sample Hann frame ending at block f's end)
    flux[f] = mean over k of max(0, D[f, k] - max(D[f-2, k-1 .. k+1]))
    s[f]    = log(1 + flux[f])

Block ``f`` covers samples ``f·hop .. f·hop + hop - 1``; its frame ends with it, so the value
reads no sample after the block (causal over blocks). Measured on the embedded set's
training pieces at hop 64: about 0.02-0.1 between onsets, 1-3 over the first four or five blocks
of a struck chord (its frames fill with the new partials).
It reads nothing but the audio, so it is defined for recordings as for rendered clips.

:func:`sounding_chroma` says which pitch classes sound in each block (a struck note's classes
rise over the frame after its onset): a strike told with it can play notes, not only noise.

Used as a WaveNet's own conditioning stream (``local_source: onsets`` or ``onsets_chroma``,
:mod:`wavegen.models.wavenet`): trained on the onsets of the clip it learns, and at
sampling time given the onsets wanted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

N_FFT = 512  # 32 ms at 16 kHz: resolves a chord's partials, short enough to place its onset
LAG = 2  # compare with the frame two blocks back: an onset spread over two blocks still counts once
FLOOR_DB = -40.0  # |STFT| floor: about -82 dBFS for a sine, below which level changes are noise
# sounding_chroma's bins: above CHROMA_LOW_HZ a 31 Hz bin is half a semitone (a semitone is 6% of the
# frequency); above CHROMA_HIGH_HZ a piano holds little but its hammer's noise. Below CHROMA_FLOOR_DB
# (a frame's power in those bins, as a sine's level) a frame holds no pitch worth telling.
CHROMA_LOW_HZ = 1000.0
CHROMA_HIGH_HZ = 5000.0
CHROMA_FLOOR_DB = -60.0


def _spectra(audio: Tensor, hop: int) -> Tensor:
    """Tensor[B, T] audio -> Tensor[B, F, K] |rfft| of the Hann frame of N_FFT samples ending with each block."""
    B, T = audio.shape
    frames = -(-T // hop)
    padded = F.pad(audio.float(), (N_FFT - hop, frames * hop - T))
    windows = padded.unfold(-1, N_FFT, hop)[:, :frames]  # [B, F, N]: frame f ends where block f does
    return torch.fft.rfft(windows * torch.hann_window(N_FFT, device=audio.device), dim=-1).abs()


def _rise(value: Tensor, floor: float) -> Tensor:
    """Tensor[B, F, K] -> each bin's rise over the maximum of its neighbours (±1 bin) ``LAG`` blocks back."""
    B, frames, K = value.shape
    # Against the neighbours' maximum: a partial that wobbles by a bin is no onset.
    reference = F.max_pool1d(value.reshape(B * frames, 1, K), 3, 1, 1).reshape(value.shape)
    before = torch.cat([torch.full_like(reference[:, :LAG], floor), reference[:, :-LAG]], dim=1)[:, :frames]
    return (value - before).clamp_min(0.0)


def onset_strength(audio: Tensor, hop: int) -> Tensor:
    """Tensor[B, T] audio -> Tensor[B, F] onset strength per block of ``hop`` samples, F = ceil(T / hop)
    (see the module docstring). Digital silence before the clip."""
    level = (20.0 * torch.log10(_spectra(audio, hop) + 1e-6)).clamp_min(FLOOR_DB)
    return torch.log1p(_rise(level, FLOOR_DB).mean(-1))


def pitch_classes(sample_rate: int, low_hz: float = CHROMA_LOW_HZ, high_hz: float = CHROMA_HIGH_HZ) -> Tensor:
    """LongTensor[K]: each rfft bin's pitch class (0 = A, equal temperament at A4 = 440 Hz), -1 outside
    [low_hz, high_hz]."""
    freqs = torch.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    classes = torch.round(12 * torch.log2(freqs.clamp_min(1.0) / 440.0)).long() % 12
    return torch.where((freqs >= low_hz) & (freqs <= high_hz), classes, torch.full_like(classes, -1))


def sounding_chroma(audio: Tensor, hop: int, sample_rate: int) -> Tensor:
    """Tensor[B, T] audio -> Tensor[B, 12, F]: which pitch classes sound in each block, F = ceil(T / hop).

    The power of the frame ending with the block (the onset strength's frame) in each class's bins
    (:func:`pitch_classes`), as a share of the frame's power there plus a floor of :data:`CHROMA_FLOOR_DB`
    dBFS: the 12 shares add up to about 1 where the frame is well above the floor and fall to 0 in
    silence. Where a note is struck, the share moves to its classes over the next N_FFT samples.
    """
    power = _spectra(audio, hop).pow(2)
    classes = pitch_classes(sample_rate).to(audio.device)
    inside = classes >= 0
    per_class = power[..., inside] @ F.one_hot(classes[inside], 12).to(power.dtype)  # [B, F, 12]
    # A full-scale sine's peak bin holds (N_FFT/4)^2 under a Hann window: the floor in those units.
    floor = (N_FFT / 4) ** 2 * 10 ** (CHROMA_FLOOR_DB / 10)
    return (per_class / (per_class.sum(-1, keepdim=True) + floor)).transpose(1, 2)
