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

Used as a WaveNet's own conditioning stream (``local_source: onsets``,
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


def onset_strength(audio: Tensor, hop: int) -> Tensor:
    """Tensor[B, T] audio -> Tensor[B, F] onset strength per block of ``hop`` samples, F = ceil(T / hop)
    (see the module docstring). Digital silence before the clip."""
    B, T = audio.shape
    frames = -(-T // hop)
    padded = F.pad(audio.float(), (N_FFT - hop, frames * hop - T))
    windows = padded.unfold(-1, N_FFT, hop)[:, :frames]  # [B, F, N]: frame f ends where block f does
    spectrum = torch.fft.rfft(windows * torch.hann_window(N_FFT, device=audio.device), dim=-1)
    level = (20.0 * torch.log10(spectrum.abs() + 1e-6)).clamp_min(FLOOR_DB)  # [B, F, K]
    # Each bin against its neighbours' maximum two frames back: a partial that wobbles by a bin is no onset.
    reference = F.max_pool1d(level.reshape(B * frames, 1, -1), 3, 1, 1).reshape(level.shape)
    before = torch.cat([torch.full_like(reference[:, :LAG], FLOOR_DB), reference[:, :-LAG]], dim=1)[:, :frames]
    flux = (level - before).clamp_min(0.0).mean(-1)
    return torch.log1p(flux)
