"""Objective audio metrics that need no downloaded model (lower is better for all).

- :func:`log_mel_l1`: mean |log mel(ref) - log mel(est)| with the shared mel settings;
- :func:`multi_resolution_stft_distance`: spectral convergence + log-magnitude L1,
  averaged over three resolutions (FFT 512/1024/2048, hops 50/120/240, Hann windows
  240/600/1200; magnitudes floored at 1e-7);
- :func:`log_spectral_distance`: RMS difference of the power spectra in dB, per
  frame, averaged over frames;
- :func:`peak_energy_share`: the share of spectral energy in narrow peaks (pitched
  sound scores near 1, noise of any colour near 0);
- :func:`chroma_entropy`: entropy of the frame-normalised chroma, in bits (12 equal
  pitch classes: log2 12 ≈ 3.58);
- :func:`real_time_factor` / :func:`measure_real_time_factor`: seconds of compute per
  second of audio (below 1 is faster than real time);
- :func:`rms_dbfs`: a clip's RMS level in dBFS;
- :func:`copies_prompt`: the largest normalised cross-correlation of any window of a
  continuation against its prompt (>= 0.9: the continuation copies the prompt).

The distances take Tensor[T] or Tensor[B, T] clips of equal length and are
differentiable, so training can use them as losses. These are the only definitions:
evaluation, benchmarks, training losses and tests all call them.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_spectrogram

# (FFT size, hop, window length) of each resolution of the MR-STFT distance.
STFT_RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
STFT_FFT_SIZES = tuple(r[0] for r in STFT_RESOLUTIONS)
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


def _magnitude(audio: Tensor, n_fft: int, hop: int | None = None, window_length: int | None = None) -> Tensor:
    """Tensor[B, T] -> Tensor[B, n_fft/2 + 1, frames] STFT magnitude (Hann window, default hop n_fft/4)."""
    window_length = window_length or n_fft
    window = torch.hann_window(window_length, device=audio.device, dtype=audio.dtype)
    # Zero padding (not reflection) at the edges, so clips shorter than half a window work.
    spec = torch.stft(audio, n_fft, hop_length=hop or n_fft // 4, win_length=window_length, window=window,
                      center=True, pad_mode="constant", return_complex=True)
    return spec.abs()


def multi_resolution_stft_distance(reference: Tensor, estimate: Tensor,
                                   resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS) -> Tensor:
    """Mean over resolutions of spectral convergence ``‖|S|-|Ŝ|‖_F / ‖|S|‖_F`` plus mean |log|S| - log|Ŝ||.

    Magnitudes are floored at 1e-7 before the log, so a noise floor where the
    reference is silent costs as much as a missing partial.
    """
    reference, estimate = _pair(reference, estimate)
    total = reference.new_zeros(())
    for n_fft, hop, window_length in resolutions:
        ref, est = _magnitude(reference, n_fft, hop, window_length), _magnitude(estimate, n_fft, hop, window_length)
        convergence = torch.linalg.vector_norm(ref - est, dim=(1, 2)) / torch.linalg.vector_norm(ref, dim=(1, 2)).clamp_min(_EPS)
        log_l1 = (torch.log(ref.clamp_min(_EPS)) - torch.log(est.clamp_min(_EPS))).abs().mean(dim=(1, 2))
        total = total + (convergence + log_l1).mean()
    return total / len(resolutions)


def log_spectral_distance(reference: Tensor, estimate: Tensor, n_fft: int = 2048) -> Tensor:
    """Per frame ``√(mean_f (10·log10 P_ref/P_est)²)`` in dB, averaged over frames and clips."""
    reference, estimate = _pair(reference, estimate)
    ref = _magnitude(reference, n_fft).pow(2).clamp_min(1e-10)
    est = _magnitude(estimate, n_fft).pow(2).clamp_min(1e-10)
    diff = 10.0 * (torch.log10(ref) - torch.log10(est))
    return diff.pow(2).mean(dim=1).sqrt().mean()


def peak_mask(power: np.ndarray) -> np.ndarray:
    """Power spectrogram [bins, frames] -> bool [bins, frames]: the bins :func:`peak_energy_share` counts.

    A bin is a peak when it is the largest of its ±2 neighbours and stands 10 dB above the median of its
    ±24 neighbours; the mask holds every peak and its ±1 bins.
    """
    from scipy.ndimage import maximum_filter1d, median_filter

    db = 10.0 * np.log10(power + 1e-20)
    is_max = db >= maximum_filter1d(db, size=5, axis=0, mode="nearest")
    prominent = db >= median_filter(db, size=(49, 1), mode="nearest") + 10.0
    peaks = is_max & prominent
    with_neighbours = peaks.copy()
    with_neighbours[1:] |= peaks[:-1]
    with_neighbours[:-1] |= peaks[1:]
    return with_neighbours


def power_spectrogram(audio: Tensor, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Tensor[T] -> float [n_fft/2 + 1, frames]: the Hann STFT power the tonality figures read."""
    audio = audio.detach().float().reshape(-1).cpu()
    return _magnitude(audio[None], n_fft, hop)[0].pow(2).numpy()


def peak_energy_share(audio: Tensor, n_fft: int = 2048, hop: int = 512) -> float:
    """Share of a clip's spectral energy that lies in narrow peaks (:func:`peak_mask`): Tensor[T] -> float in [0, 1].

    STFT 2048/512 (Hann). Piano scores about 0.9, white or coloured noise near 0.
    """
    if audio.numel() == 0:
        return 0.0
    power = power_spectrogram(audio, n_fft, hop)
    total = float(power.sum())
    if total <= 0:
        return 0.0
    return float(power[peak_mask(power)].sum() / total)


_LIBROSA_READY = False


def _librosa():
    """librosa, its numba functions (chroma, pitch tracking) compiled or loaded from numba's cache, the
    first time in a process, under a machine-wide lock. Why: numba writes that cache unguarded, and two
    processes that compiled them at the same moment left a cache on which every later chroma call
    segfaulted; one at a time, the second finds the first's cache whole."""
    global _LIBROSA_READY
    import librosa

    if not _LIBROSA_READY:
        import fcntl
        import tempfile
        from pathlib import Path

        with open(Path(tempfile.gettempdir()) / "wavegen-librosa-numba.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            noise = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
            librosa.feature.chroma_stft(y=noise, sr=16000)
        _LIBROSA_READY = True
    return librosa


def chroma_entropy(audio: Tensor, sample_rate: int) -> float:
    """Mean over frames of the entropy (bits) of librosa's chroma, each frame normalised to sum 1.

    Tensor[T] -> float. Silent frames (no chroma energy) are skipped. A single pitch
    class scores 0, an even spread over all 12 scores log2 12 ≈ 3.58.
    """
    librosa = _librosa()
    y = audio.detach().float().reshape(-1).cpu().numpy()
    if y.size == 0:
        return float("nan")
    entropy = chroma_frame_entropy(librosa.feature.chroma_stft(y=y, sr=sample_rate, norm=None))
    return float(entropy.mean()) if entropy.size else float("nan")


def chroma_frame_entropy(chroma: np.ndarray) -> np.ndarray:
    """Unnormalised chroma [12, frames] -> float [kept frames]: each frame's entropy in bits, frames with
    no chroma energy left out (:func:`chroma_entropy` is their mean)."""
    sums = chroma.sum(axis=0)
    keep = sums > 1e-10
    p = chroma[:, keep] / sums[keep]
    return -(p * np.log2(np.clip(p, 1e-12, None))).sum(axis=0)


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


def rms_dbfs(audio: Tensor) -> float:
    """Root-mean-square level in dB relative to full scale (a full-scale square wave is 0 dBFS).

    Tensor[T] -> float; digital silence returns -200 (a finite floor, so it fits in JSON).
    """
    audio = audio.detach().double().reshape(-1).cpu()
    if audio.numel() == 0:
        return -200.0
    rms = float(audio.pow(2).mean().sqrt())
    return max(20.0 * float(np.log10(rms)) if rms > 0 else -200.0, -200.0)


COPY_THRESHOLD = 0.9  # copies_prompt at or above this: the continuation repeats its prompt


def copies_prompt(continuation: Tensor, prompt: Tensor, sample_rate: int, window_s: float = 0.25,
                  hop_s: float | None = None, silence_rms: float = 1e-4) -> float:
    """How closely the continuation repeats its prompt: Tensor[T], Tensor[P] -> float in [0, 1].

    Every ``window_s`` window of the continuation (hop ``hop_s``, default a quarter
    window) is compared with the prompt at every offset by normalised cross-correlation
    ``Σ w·x / (‖w‖·‖x_τ‖)`` (no mean removal; a gain change does not matter), computed
    with FFTs. Returns the largest value over windows and offsets; ``>= 0.9``
    (:data:`COPY_THRESHOLD`) means copying. Windows quieter than ``silence_rms`` are
    skipped (silence matches anything); 0.0 if no window is left or the prompt is
    shorter than a window.
    """
    x = prompt.detach().double().reshape(-1).cpu()
    y = continuation.detach().double().reshape(-1).cpu()
    n = int(round(window_s * sample_rate))
    hop = max(1, int(round((hop_s if hop_s is not None else window_s / 4) * sample_rate)))
    if n < 1 or x.numel() < n or y.numel() < n:
        return 0.0
    windows = y.unfold(0, n, hop)  # [K, n]
    loud = windows.pow(2).mean(dim=1).sqrt() >= silence_rms
    windows = windows[loud]
    if windows.shape[0] == 0:
        return 0.0
    size = 1 << (x.numel() + n - 1).bit_length()
    spectrum = torch.fft.rfft(x, size)
    offsets = x.numel() - n + 1
    # ‖x_τ‖ for every offset from a running sum of squares.
    energy = torch.cat([x.new_zeros(1), x.pow(2).cumsum(0)])
    norms = (energy[n:] - energy[:-n]).clamp_min(0).sqrt()[:offsets]
    best = 0.0
    for chunk in windows.split(64):  # bounded memory for long continuations
        # Correlation c[τ] = Σ_i w[i] x[τ + i]: the spectrum of x times the conjugate spectrum of w.
        corr = torch.fft.irfft(spectrum * torch.fft.rfft(chunk, size).conj(), size)[:, :offsets]
        scores = corr / (chunk.norm(dim=1, keepdim=True) * norms.clamp_min(_EPS))
        # Where the prompt is near-silent the ratio is meaningless: require comparable energy.
        scores = torch.where(norms >= silence_rms * n**0.5, scores, torch.zeros_like(scores))
        best = max(best, float(scores.max()))
    return min(max(best, 0.0), 1.0)


def tonality_figures(audio: Tensor, sample_rate: int, prompt: Tensor | None = None, window_s: float = 0.25) -> dict:
    """Tensor[T] audio (and the Tensor[P] prompt it continues, same rate) -> the figures that tell pitched
    sound from noise: ``peak_energy_share``, ``chroma_entropy``, ``rms_dbfs``, and with a prompt
    ``copy_score`` (:func:`copies_prompt`) and ``copies`` (at least :data:`COPY_THRESHOLD`)."""
    row = {
        "seconds": audio.numel() / sample_rate,
        "peak_energy_share": peak_energy_share(audio),
        "chroma_entropy": chroma_entropy(audio, sample_rate),
        "rms_dbfs": rms_dbfs(audio),
    }
    if prompt is not None:
        score = copies_prompt(audio, prompt, sample_rate, window_s)
        row.update(copy_score=score, copies=score >= COPY_THRESHOLD)
    return row
