"""Noise schedules, samplers (determinism, chunking, memory), schedule search and distillation."""

import math

import pytest
import torch

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.noise import BLOCK, PositionalNoise
from wavegen.diffusion.samplers import sample, start_std, vocode, vocode_stream
from wavegen.diffusion.schedules import (
    DIFFWAVE_FAST_6,
    WAVEGRAD_6,
    NoiseSchedule,
    default_schedule,
    sample_training_levels,
    training_level_bounds,
    training_schedule,
)
from wavegen.diffusion.search import grid_values, log_mel_score, search_schedule
from wavegen.errors import WavegenError
from wavegen.models.vocoder import VocoderConfig, WaveGradVocoder

AUDIO = AudioConfig()
TINY = dict(upsample_channels=[16, 16, 8, 8, 8], downsample_channels=[4, 8, 8, 8, 16], mel_channels=16)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0) -> WaveGradVocoder:
    torch.manual_seed(seed)
    return WaveGradVocoder(VocoderConfig(**TINY)).eval()


def random_mel(frames: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, AUDIO.n_mels, frames, generator=g) * 2 - 6


# ----------------------------------------------------------------------------- schedules


def test_training_schedule_matches_wavegrad():
    s = training_schedule()
    assert len(s) == 1000 and s.betas[0] == pytest.approx(1e-6) and s.betas[-1] == pytest.approx(0.01)
    expected_last = math.exp(sum(math.log1p(-b) for b in s.betas))
    assert s.alpha_bars[-1] == pytest.approx(expected_last, rel=1e-9)
    levels = s.noise_levels
    assert all(a > b for a, b in zip(levels, levels[1:]))


def test_training_levels_fall_between_adjacent_levels():
    bounds = training_level_bounds()
    levels = sample_training_levels(5000, torch.Generator().manual_seed(0)).double()
    assert levels.min() >= bounds[-1] - 1e-6 and levels.max() <= 1.0
    # Uniform over steps, not over levels: about half the draws fall in the first 500 intervals.
    share = (levels >= bounds[500]).double().mean().item()
    assert 0.45 < share < 0.55


def test_step_coefficients():
    s = NoiseSchedule(WAVEGRAD_6)
    c1, c2, sigma = s.step_coefficients(1)
    assert c1 == pytest.approx(1 / math.sqrt(1 - 1e-6)) and sigma == 0.0
    c1, c2, sigma = s.step_coefficients(6)
    ab = s.alpha_bars
    assert c2 == pytest.approx(0.06 / math.sqrt(1 - ab[5]))
    assert sigma == pytest.approx(math.sqrt(0.06 * (1 - ab[4]) / (1 - ab[5])))


@pytest.mark.parametrize("betas", [(), (0.0, 0.1), (0.5, 1.0), (float("nan"),)])
def test_bad_schedules_are_refused(betas):
    with pytest.raises(WavegenError):
        NoiseSchedule(betas)


def test_default_schedules():
    assert default_schedule(6).betas == WAVEGRAD_6
    for n in (1, 2, 3, 25, 50, 1000):
        s = default_schedule(n)
        assert len(s) == n and list(s.betas) == sorted(s.betas)
    assert start_std(default_schedule(1000)) == pytest.approx(1.0, abs=0.01)


# ----------------------------------------------------------------------------- noise and samplers


def test_positional_noise_does_not_depend_on_the_window():
    noise = PositionalNoise(7, batch=2)
    whole = noise.window(3, 0, 3 * BLOCK)
    assert torch.equal(noise.window(3, BLOCK - 100, 700), whole[:, BLOCK - 100 : BLOCK + 600])
    assert not torch.equal(noise.window(2, 0, 100), whole[:, :100])
    assert abs(whole.std().item() - 1) < 0.05


def test_sampler_is_deterministic_for_a_generator():
    model, mel = tiny_model(), random_mel(6)
    schedule = NoiseSchedule(DIFFWAVE_FAST_6)
    a = sample(model, mel, schedule, torch.Generator().manual_seed(3))
    b = sample(model, mel, schedule, torch.Generator().manual_seed(3))
    c = sample(model, mel, schedule, torch.Generator().manual_seed(4))
    assert a.shape == (1, 6 * 256)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not any(p.grad is not None for p in model.parameters())


def test_chunked_vocoding_matches_one_pass():
    """Same noise at every sample; only the network's view near chunk edges differs."""
    model, mel = tiny_model(), random_mel(40, seed=1)
    schedule = NoiseSchedule((1e-4, 0.01, 0.1))
    whole = sample(model, mel, schedule, torch.Generator().manual_seed(0))[:, : 39 * 256]
    chunked = vocode(model, mel, schedule, torch.Generator().manual_seed(0), chunk_frames=16, overlap_frames=8)
    assert chunked.shape == whole.shape
    err = (chunked - whole).abs().max().item()
    print(f"chunked vs one pass: max abs difference {err:.2e}")
    assert err < 0.01 * whole.abs().max().item(), err
    # Far from any seam the chunk saw what the one pass saw: equal up to float rounding.
    assert torch.allclose(chunked[:, :256], whole[:, :256], atol=1e-5)


def test_chunked_memory_does_not_grow_with_length():
    model = tiny_model()
    seen = []
    forward = model.forward

    def recording_forward(noisy, log_mel, level):
        seen.append(noisy.shape[-1])
        return forward(noisy, log_mel, level)

    model.forward = recording_forward
    schedule = NoiseSchedule((0.01, 0.1))
    for frames in (30, 90):
        seen.clear()
        pieces = list(vocode_stream(model, random_mel(frames), schedule, torch.Generator().manual_seed(0),
                                    chunk_frames=12, overlap_frames=4))
        assert sum(p.shape[1] for p in pieces) == (frames - 1) * 256
        assert max(seen) == 12 * 256  # the network never sees more than one chunk
        assert max(p.shape[1] for p in pieces) <= 12 * 256


@pytest.mark.parametrize("frames,chunk,overlap", [(50, 16, 8), (50, 16, 0), (17, 16, 8), (10, 16, 4), (33, 9, 3)])
def test_crossfade_reassembles_a_signal_exactly(frames, chunk, overlap):
    """When every chunk agrees with one global signal, the stitched stream is that signal."""
    from wavegen.diffusion.samplers import crossfade_chunks

    hop = 4
    signal = torch.randn(2, frames * hop, generator=torch.Generator().manual_seed(0))
    windows = []

    def run(start, end):
        windows.append((start, end))
        return signal[:, start * hop : end * hop].clone()

    out = torch.cat(list(crossfade_chunks(run, frames, (frames - 1) * hop, hop, chunk, overlap)), dim=1)
    assert torch.allclose(out, signal[:, : (frames - 1) * hop], atol=1e-6)
    assert all(end - start <= chunk for start, end in windows)
    assert [s for s, _ in windows] == sorted(s for s, _ in windows)


def test_bad_chunking_is_refused():
    with pytest.raises(WavegenError, match="overlap_frames"):
        list(vocode_stream(tiny_model(), random_mel(10), NoiseSchedule((0.1,)), chunk_frames=8, overlap_frames=6))


# ----------------------------------------------------------------------------- schedule search


def test_grid_is_one_to_nine_times_powers_of_ten():
    grid = grid_values(1e-3, 0.05)
    assert grid[:10] == [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3, 9e-3, 1e-2]
    assert grid[-1] == 5e-2


def test_search_finds_the_optimum_of_a_smooth_score():
    target = [1e-5, 3e-3, 0.2]

    def score(s: NoiseSchedule) -> float:
        return sum((math.log10(b) - math.log10(t)) ** 2 for b, t in zip(s.betas, target))

    result = search_schedule(score, NoiseSchedule((1e-6, 1e-4, 1e-2)), max_evaluations=500)
    assert list(result.schedule.betas) == pytest.approx(target)
    assert result.score < result.start_score


def test_search_is_no_worse_than_its_start_with_the_real_score():
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    t = torch.arange(4 * 256) / AUDIO.sample_rate
    clips = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0)])
    clips = clips + 0.01 * torch.randn(clips.shape, generator=g)
    score = log_mel_score(model, clips, AUDIO, seed=0)
    start = NoiseSchedule((1e-4, 1e-2))
    result = search_schedule(score, start, max_evaluations=8)
    assert result.evaluations <= 8
    assert list(result.schedule.betas) == sorted(result.schedule.betas)
    assert score(result.schedule) == pytest.approx(result.score)
    assert score(result.schedule) <= score(start)


# ----------------------------------------------------------------------------- distillation


def test_distillation_moves_the_student_towards_the_teacher():
    from wavegen.diffusion.distill import DistillSettings, distill, distillation_loss

    teacher = tiny_model(1)
    teacher_schedule, student_schedule = NoiseSchedule((1e-4, 1e-2, 0.1)), NoiseSchedule((0.3,))
    t = torch.arange(4 * 256) / AUDIO.sample_rate
    audio = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 440.0)])

    def batches():
        while True:
            yield audio

    from wavegen.diffusion.training import aligned_pair

    _, mel = aligned_pair(audio, AUDIO)
    before = distillation_loss(teacher, teacher, mel, student_schedule, teacher_schedule, seed=99).item()
    student, losses = distill(teacher, teacher_schedule, student_schedule, batches(), AUDIO,
                              DistillSettings(iterations=20, lr=1e-2))
    after = distillation_loss(student, teacher, mel, student_schedule, teacher_schedule, seed=99).item()
    assert len(losses) == 20
    # Measured: 1.42 -> about 0.7 on this held-out seed.
    assert after < 0.75 * before, (before, after)
    assert all(not p.requires_grad for p in teacher.parameters())
