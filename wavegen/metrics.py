"""Objective audio metrics that need no downloaded model (lower is better for all).

- :func:`log_mel_l1`: mean |log mel(ref) - log mel(est)| with the shared mel settings;
- :func:`multi_resolution_stft_distance`: spectral convergence + log-magnitude L1,
  averaged over FFT sizes 512, 1024 and 2048;
- :func:`log_spectral_distance`: RMS difference of the power spectra in dB, per
  frame, averaged over frames;
- :func:`real_time_factor` / :func:`measure_real_time_factor`: seconds of compute per
  second of audio (below 1 is faster than real time).

Every metric takes Tensor[T] or Tensor[B, T] clips of equal length and is
differentiable, so the distillation can use them as losses.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_spectrogram

STFT_FFT_SIZES = (512, 1024, 2048)
_EPS = 1e-7


def _pair(reference: Tensor, estimate: Tensor) -> tuple[Tensor, Tensor]:
    if reference.shape != estimate.shape:
        raise ValueError(f"metric inputs differ in shape: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    if reference.dim() == 1:
        reference, estimate = reference[None], estimate[None]
    return reference.float(), estimate.float()


def log_mel_l1(reference: Tensor, estimate: Tensor, cfg: AudioConfig) -> Tensor:
    """Mean absolute difference of natural-log mel spectrograms (a scalar Tensor)."""
    reference, estimate = _pair(reference, estimate)
    return (mel_spectrogram(reference, cfg) - mel_spectrogram(estimate, cfg)).abs().mean()


def _magnitude(audio: Tensor, n_fft: int) -> Tensor:
    """Tensor[B, T] -> Tensor[B, n_fft/2 + 1, frames] STFT magnitude (Hann window, hop n_fft/4)."""
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    # Zero padding (not reflection) at the edges, so clips shorter than half a window work.
    spec = torch.stft(audio, n_fft, hop_length=n_fft // 4, window=window, center=True, pad_mode="constant",
                      return_complex=True)
    return spec.abs()


def multi_resolution_stft_distance(reference: Tensor, estimate: Tensor,
                                   fft_sizes: Sequence[int] = STFT_FFT_SIZES) -> Tensor:
    """Mean over FFT sizes of spectral convergence ``‖|S|-|Ŝ|‖_F / ‖|S|‖_F`` plus mean |log|S| - log|Ŝ||."""
    reference, estimate = _pair(reference, estimate)
    total = reference.new_zeros(())
    for n_fft in fft_sizes:
        ref, est = _magnitude(reference, n_fft), _magnitude(estimate, n_fft)
        convergence = torch.linalg.vector_norm(ref - est, dim=(1, 2)) / torch.linalg.vector_norm(ref, dim=(1, 2)).clamp_min(_EPS)
        log_l1 = (torch.log(ref.clamp_min(1e-5)) - torch.log(est.clamp_min(1e-5))).abs().mean(dim=(1, 2))
        total = total + (convergence + log_l1).mean()
    return total / len(fft_sizes)


def log_spectral_distance(reference: Tensor, estimate: Tensor, n_fft: int = 2048) -> Tensor:
    """Per frame ``√(mean_f (10·log10 P_ref/P_est)²)`` in dB, averaged over frames and clips."""
    reference, estimate = _pair(reference, estimate)
    ref = _magnitude(reference, n_fft).pow(2).clamp_min(1e-10)
    est = _magnitude(estimate, n_fft).pow(2).clamp_min(1e-10)
    diff = 10.0 * (torch.log10(ref) - torch.log10(est))
    return diff.pow(2).mean(dim=1).sqrt().mean()


def real_time_factor(compute_seconds: float, num_samples: int, sample_rate: int) -> float:
    """Seconds of compute per second of audio produced."""
    return compute_seconds / (num_samples / sample_rate)


def measure_real_time_factor(fn: Callable[[], Tensor], num_samples: int, sample_rate: int,
                             repeats: int = 3, warmup: int = 1) -> float:
    """Median real-time factor of ``fn()`` (which produces ``num_samples`` samples) over ``repeats`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return real_time_factor(times[len(times) // 2], num_samples, sample_rate)
