"""Objective audio metrics: zero on identical audio, exact values on known changes, differentiable."""

import math

import pytest
import torch

from wavegen.audio.dsp import AudioConfig
from wavegen.audio.metrics import (
    STFT_FFT_SIZES,
    log_mel_l1,
    log_spectral_distance,
    measure_real_time_factor,
    multi_resolution_stft_distance,
    real_time_factor,
)

AUDIO = AudioConfig()


def tone(seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * AUDIO.sample_rate)) / AUDIO.sample_rate
    # Harmonics plus a little noise, so no STFT bin falls to the numerical floor.
    return 0.2 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.sin(2 * math.pi * 1320 * t) + 0.01 * torch.randn(
        t.shape, generator=g
    )


def test_identical_audio_scores_zero():
    x = tone()
    assert log_mel_l1(x, x, AUDIO).item() == 0.0
    assert multi_resolution_stft_distance(x, x).item() == 0.0
    assert log_spectral_distance(x, x).item() == 0.0


def test_doubling_the_amplitude_gives_known_distances():
    x = tone()
    # Power ratio 4 in every bin: 10·log10(4) dB per bin, so the per-frame RMS is the same.
    assert log_spectral_distance(x, 2 * x).item() == pytest.approx(10 * math.log10(4), rel=1e-4)
    assert log_mel_l1(x, 2 * x, AUDIO).item() == pytest.approx(math.log(2), rel=1e-3)
    # Spectral convergence |S - 2S| / |S| = 1 and log-magnitude L1 = log 2 at every resolution.
    assert multi_resolution_stft_distance(x, 2 * x).item() == pytest.approx(1 + math.log(2), rel=1e-3)
    assert STFT_FFT_SIZES == (512, 1024, 2048)


def test_distances_grow_with_the_difference():
    x = tone()
    noise = tone(seed=1) - tone(seed=2)
    small, large = x + 0.1 * noise, x + 1.0 * noise
    for metric in (lambda a, b: log_mel_l1(a, b, AUDIO), multi_resolution_stft_distance, log_spectral_distance):
        assert 0 < metric(x, small).item() < metric(x, large).item()


def test_batches_and_short_clips():
    x = torch.stack([tone(0.05), tone(0.05, seed=3)])  # 800 samples: shorter than the 2048 window
    assert multi_resolution_stft_distance(x, x.flip(0)).item() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        log_mel_l1(x, x[:, :-1], AUDIO)


def test_metrics_are_differentiable():
    x = tone()
    y = (x + 0.05 * tone(seed=4)).requires_grad_(True)
    (multi_resolution_stft_distance(x, y) + log_mel_l1(x, y, AUDIO)).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_real_time_factor():
    assert real_time_factor(0.5, 16000, 16000) == 0.5
    calls = []
    rtf = measure_real_time_factor(lambda: calls.append(1), num_samples=16000, sample_rate=16000, repeats=3)
    assert len(calls) == 4 and 0 <= rtf < 0.1  # warm-up + 3 timed runs of a no-op


@pytest.mark.slow
def test_two_first_chroma_calls_at_once_leave_a_cache_the_next_process_can_use(tmp_path):
    """numba's cache of librosa's chroma functions, written by two processes at the same moment, made the
    next process segfault in about half the tries here; the first call of each process now compiles
    under a lock. Three tries, each with an empty cache, the two first calls started at one instant."""
    import os
    import subprocess
    import sys
    import time

    for attempt in range(3):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / f"numba{attempt}")}  # an empty cache
        start = time.time() + 15  # after both have imported torch and librosa
        code = ("import time, torch, librosa; from wavegen.audio.metrics import chroma_entropy; "
                f"time.sleep(max(0.0, {start} - time.time())); "
                "print(chroma_entropy(torch.randn(32000, generator=torch.Generator().manual_seed(1)), 16000))")
        run = [sys.executable, "-c", code]
        both = [subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [p.communicate() for p in both]
        third = subprocess.run(run, env=env, capture_output=True)
        codes = [p.returncode for p in both] + [third.returncode]
        assert codes == [0, 0, 0], (attempt, codes, third.stderr[-300:])
        values = {float(out) for out, _ in outputs} | {float(third.stdout)}
        assert len(values) == 1  # the same figure from a fresh compile and from the cache
        assert any((tmp_path / f"numba{attempt}").rglob("*.nbi"))  # the cache was written where the test put it
