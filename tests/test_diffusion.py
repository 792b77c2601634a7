"""Noise schedules, samplers (determinism, chunking, memory), schedule search and distillation."""

import math

import pytest
import torch

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.noise import BLOCK, PositionalNoise
from wavegen.diffusion.samplers import reverse_process, sample, vocode, vocode_stream
from wavegen.diffusion.schedules import (
    DEFAULT_SIGMA_HIGH,
    DEFAULT_SIGMA_LOW,
    DIFFWAVE_FAST_6,
    SIGMA_MAX,
    SIGMA_MIN,
    WAVEGRAD_6,
    NoiseSchedule,
    default_schedule,
    sample_training_levels,
    sigma_from_level,
    training_schedule,
)
from wavegen.diffusion.search import grid_values, log_mel_score, search_schedule
from wavegen.errors import WavegenError
from wavegen.models.vocoder import VocoderConfig, WaveGradVocoder

AUDIO = AudioConfig()
TINY = dict(upsample_channels=[16, 16, 8, 8, 8], downsample_channels=[4, 8, 8, 8, 16], mel_channels=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_training_levels_are_log_uniform_over_every_samplers_range():
    levels = sample_training_levels(20000, torch.Generator().manual_seed(0)).double()
    log_sigma = sigma_from_level(levels).log()
    lo, hi = math.log(SIGMA_MIN), math.log(SIGMA_MAX)
    # Levels are float32: near √ᾱ = 1 they resolve log σ to about 0.05.
    assert log_sigma.min() >= lo - 0.05 and log_sigma.max() <= hi + 0.05
    # Each tenth of the log-σ range gets a tenth of the draws (WaveGrad's linear-β draws put
    # over half of them below -20 dB SNR, and few inside a 6-step schedule's range).
    counts = torch.histc(log_sigma, bins=10, min=lo, max=hi) / len(levels)
    assert counts.min() > 0.08 and counts.max() < 0.12, counts
    for steps in (1, 2, 3, 6, 25, 50):
        sigmas = default_schedule(steps).sigmas
        assert SIGMA_MIN <= min(sigmas) and max(sigmas) <= SIGMA_MAX


def forward_chain_facts(betas, n: int) -> dict:
    """Facts about the forward chain ``y_k = √(1-β_k)·y_{k-1} + √β_k·ε_k`` from ``y_0 = x``,
    built one step at a time from the betas (not from the schedule's ᾱ): the mean factors
    (E[y_k | x] = m_k·x) and variances of y_{n-1} and y_n given x, and their covariance."""
    mean, var, facts = 1.0, 0.0, {}
    for k, beta in enumerate(betas[:n], start=1):
        if k == n:
            facts.update(m_prev=mean, v_prev=var, cov=math.sqrt(1 - beta) * var)
        mean, var = math.sqrt(1 - beta) * mean, (1 - beta) * var + beta
    facts.update(m=mean, v=var)
    return facts


def test_the_ancestral_step_is_the_gaussian_posterior_of_the_forward_chain():
    """eta = 1: fed the true noise, the step's mean and deviation are those of
    q(y_{n-1} | y_n, x), obtained by conditioning the chain's joint Gaussian."""
    s = NoiseSchedule(WAVEGRAD_6)
    for n in range(2, 7):
        f = forward_chain_facts(s.betas, n)
        c1, c2, sigma = s.step_coefficients(n, eta=1.0)
        for x, y in [(0.3, -0.7), (-1.0, 2.0), (0.0, 0.05)]:
            eps = (y - f["m"] * x) / math.sqrt(f["v"])  # the noise y_n actually holds
            posterior_mean = f["m_prev"] * x + f["cov"] / f["v"] * (y - f["m"] * x)
            assert c1 * (y - c2 * eps) == pytest.approx(posterior_mean, rel=1e-9, abs=1e-12), (n, x, y)
        posterior_var = f["v_prev"] - f["cov"] ** 2 / f["v"]
        assert sigma**2 == pytest.approx(posterior_var, rel=1e-6), n


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_every_step_keeps_the_forward_marginals(eta):
    """For any eta, y_n ~ q(y_n | x) stepped with its true noise gives y_{n-1} ~ q(y_{n-1} | x)
    (DDIM's defining property), its randomness is eta times the ancestral step's, and the
    last step returns x itself."""
    s = NoiseSchedule(DIFFWAVE_FAST_6)
    for n in range(2, 7):
        f = forward_chain_facts(s.betas, n)
        c1, c2, sigma = s.step_coefficients(n, eta)
        # y_{n-1} = c1·(y - c2·(y - m·x)/√v) + σ·z = gain·y + c1·c2·m/√v·x + σ·z
        gain = c1 * (1 - c2 / math.sqrt(f["v"]))
        assert gain * f["m"] + c1 * c2 * f["m"] / math.sqrt(f["v"]) == pytest.approx(f["m_prev"], rel=1e-9)
        assert gain**2 * f["v"] + sigma**2 == pytest.approx(f["v_prev"], rel=1e-6), (n, eta)
        assert sigma == pytest.approx(eta * s.step_coefficients(n, 1.0)[2], rel=1e-12)
    f = forward_chain_facts(s.betas, 1)
    c1, c2, sigma = s.step_coefficients(1, eta)
    x, y = 0.4, -0.9
    assert sigma == 0.0 and c1 * (y - c2 * (y - f["m"] * x) / math.sqrt(f["v"])) == pytest.approx(x, rel=1e-9)
    with pytest.raises(WavegenError, match="eta"):
        s.step_coefficients(2, eta=1.5)


def test_schedules_from_sigmas_round_trip():
    sigmas = [0.01, 0.1, 1.0, 10.0]
    assert NoiseSchedule.from_sigmas(sigmas).sigmas == pytest.approx(sigmas, rel=1e-9)
    with pytest.raises(WavegenError, match="increase"):
        NoiseSchedule.from_sigmas([0.1, 0.1])


@pytest.mark.parametrize("betas", [(), (0.0, 0.1), (0.5, 1.0), (float("nan"),)])
def test_bad_schedules_are_refused(betas):
    with pytest.raises(WavegenError):
        NoiseSchedule(betas)


def test_default_schedules():
    six = default_schedule(6).sigmas
    assert six[0] == pytest.approx(DEFAULT_SIGMA_LOW) and six[-1] == pytest.approx(DEFAULT_SIGMA_HIGH)
    ratios = [b / a for a, b in zip(six, six[1:])]
    assert ratios == pytest.approx([ratios[0]] * 5)  # geometric
    for n in (1, 2, 3, 25, 50):
        assert len(default_schedule(n)) == n
    assert default_schedule(1).sigmas == pytest.approx([DEFAULT_SIGMA_HIGH])


# ----------------------------------------------------------------------------- oracle, priors, encoding


def piano_like(seconds: float = 0.5) -> torch.Tensor:
    """Tensor[1, T]: decaying harmonics after a stretch of silence (T a multiple of the hop)."""
    T = int(seconds * AUDIO.sample_rate) // 256 * 256
    t = torch.arange(T) / AUDIO.sample_rate
    tone = sum(0.2 / k * torch.sin(2 * math.pi * 261.6 * k * t) for k in range(1, 6)) * torch.exp(-3 * t)
    return (tone * (t > 0.1)).unsqueeze(0)


class Oracle(torch.nn.Module):
    """A 'network' that knows the clean signal: its noise estimate is exact."""

    def __init__(self, clean: torch.Tensor, prior: str):
        super().__init__()
        base = WaveGradVocoder(VocoderConfig(**TINY, prior=prior))
        self.prior, self.hop_length, self.clean = base.prior, base.hop_length, clean
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, noisy, log_mel, level):
        a = level[:, None]
        return (noisy - a * self.clean) / (1 - a * a).sqrt()


@pytest.mark.parametrize("prior", ["white", "energy", "spectral"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_a_perfect_noise_estimate_gives_back_the_signal(prior, eta):
    from wavegen.diffusion.training import aligned_pair

    clean, mel = aligned_pair(piano_like(), AUDIO)
    oracle = Oracle(clean, prior)
    for schedule in (default_schedule(1), default_schedule(2), default_schedule(6), default_schedule(50),
                     NoiseSchedule(WAVEGRAD_6), NoiseSchedule(DIFFWAVE_FAST_6)):
        out = reverse_process(oracle, mel, schedule, PositionalNoise(3, 1), eta=eta)
        err = (out - clean).abs().max().item() / clean.abs().max().item()
        # float32: a step at σ = 1e-3 (WaveGrad's first) divides by s ≈ 1e-3, so ~1e-4 relative.
        assert err < 2e-3, (prior, eta, len(schedule), err)


def test_states_are_not_clipped():
    """An intermediate state outside [-1, 1] must survive: clipping breaks the step algebra."""
    from wavegen.diffusion.training import aligned_pair

    clean, mel = aligned_pair(8.0 * piano_like(), AUDIO)  # peaks near 1.9
    out = reverse_process(Oracle(clean, "white"), mel, default_schedule(6), PositionalNoise(0, 1))
    assert out.abs().max().item() > 1.5 and (out - clean).abs().max().item() < 1e-4


def test_noise_level_encoding_separates_every_level_a_schedule_visits():
    from wavegen.diffusion.schedules import level_from_sigma
    from wavegen.models.vocoder.layers import noise_level_encoding

    for steps in (2, 6, 25):
        levels = torch.tensor(default_schedule(steps).noise_levels)
        enc = noise_level_encoding(levels, 64)
        gaps = (enc[1:] - enc[:-1]).norm(dim=1) / enc.norm(dim=1)[1:]
        assert gaps.min() > 0.3, (steps, gaps)
    # The last, hiss-removing levels: noise std 0.001 vs 0.0045 (the old encoding: 0.05 apart).
    enc = noise_level_encoding(level_from_sigma(torch.tensor([0.001, 0.0045])), 64)
    assert ((enc[0] - enc[1]).norm() / enc[0].norm()).item() > 0.5


def test_spectral_prior_follows_the_mel_and_white_does_not():
    from wavegen.audio.dsp import mel_spectrogram
    from wavegen.diffusion.priors import NoisePrior
    from wavegen.diffusion.training import aligned_pair

    clean, mel = aligned_pair(piano_like(1.0), AUDIO)
    z = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    distance = {}
    for kind in ("white", "energy", "spectral"):
        shaped = NoisePrior(kind, AUDIO).shape(z, mel)
        assert shaped.shape == clean.shape
        distance[kind] = (mel_spectrogram(shaped, AUDIO)[..., : mel.shape[-1]] - mel).abs().mean().item()
    # Measured: white 8.9, energy 4.4, spectral 0.6 nats of mean log-mel distance.
    assert distance["spectral"] < 1.0 < distance["energy"] < distance["white"], distance
    silent = NoisePrior("spectral", AUDIO).shape(z, mel)[0, : int(0.05 * AUDIO.sample_rate)]
    assert silent.abs().max().item() < 1e-3  # silence stays (almost) silent


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


class BiasedOracle(Oracle):
    """Knows the clean signal, but its noise estimate is off by a fixed pattern ``error``.

    The last step returns x̂ = (y_1 - s_1·ε̂)/a_1 = clean - (s_1/a_1)·error whatever the
    earlier steps did, so the output depends on the first β alone (s_1/a_1 = √(β_1/(1-β_1)))
    and is best when β_1 is smallest. Float64 throughout: in float32 the level √ᾱ_1 of a
    β_1 near 1e-7 rounds to 1 and the oracle could not recover s_1 from it.
    """

    def __init__(self, clean: torch.Tensor, error: torch.Tensor):
        super().__init__(clean, "white")
        self.error = error

    def forward(self, noisy, log_mel, level):
        return super().forward(noisy, log_mel, level) + self.error


def test_search_finds_the_known_best_schedule_with_the_real_score():
    from wavegen.diffusion.samplers import sample
    from wavegen.diffusion.search import BETA_MIN
    from wavegen.diffusion.training import aligned_pair

    t = torch.arange(4 * 256, dtype=torch.float64) / AUDIO.sample_rate
    clips = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0)])
    clean, mel = aligned_pair(clips, AUDIO)
    error = 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = BiasedOracle(clean, error).double()
    # The premise, checked: the vocoded output is clean - √(β_1/(1-β_1))·error.
    for betas in [(1e-3, 0.5), (1e-3, 0.9), (0.1, 0.5)]:
        out = sample(model, mel, NoiseSchedule(betas), torch.Generator().manual_seed(0))
        assert (out - (clean - math.sqrt(betas[0] / (1 - betas[0])) * error)).abs().max().item() < 1e-9

    score = log_mel_score(model, clips, AUDIO, seed=0)
    start = NoiseSchedule((0.1, 0.5))  # deliberately bad: a large first step
    result = search_schedule(score, start, max_evaluations=40)
    # The answer is known: β_1 at the grid's floor, β_2 left alone (it changes nothing, and
    # only moves that lower the score are kept).
    assert list(result.schedule.betas) == [BETA_MIN, 0.5]
    assert result.score < 0.2 * result.start_score, (result.score, result.start_score)
    assert result.start_score == pytest.approx(score(start))
    assert score(result.schedule) == pytest.approx(result.score)
    assert 1 < result.evaluations <= 40
    scores = [s for _, s in result.history]
    assert all(b < a for a, b in zip(scores, scores[1:]))  # every accepted move lowered the score


# ----------------------------------------------------------------------------- distillation


def test_distillation_moves_the_student_towards_the_ground_truth():
    from wavegen.diffusion.distill import DistillSettings, distill, distillation_loss
    from wavegen.diffusion.training import aligned_pair
    from wavegen.audio.metrics import multi_resolution_stft_distance

    teacher = tiny_model(1)
    teacher_schedule, student_schedule = default_schedule(3), default_schedule(1)
    audio, mel = aligned_pair(torch.cat([piano_like(0.3), 0.5 * piano_like(0.3)]), AUDIO)

    def batches():
        while True:
            yield audio

    def truth_distance(model) -> float:
        out = reverse_process(model, mel, student_schedule, PositionalNoise(99, 2))
        return multi_resolution_stft_distance(audio, out).item()

    before = truth_distance(teacher)
    student, losses = distill(teacher, teacher_schedule, student_schedule, batches(), AUDIO,
                              DistillSettings(iterations=20, lr=1e-2))
    after = truth_distance(student)
    assert len(losses) == 20
    assert after < 0.8 * before, (before, after)  # on a noise seed it never trained on
    assert all(not p.requires_grad for p in teacher.parameters())
    # With the teacher term off, the loss is exactly the student's distance to the truth.
    loss = distillation_loss(student, teacher, audio, mel, student_schedule, teacher_schedule, seed=99,
                             teacher_weight=0.0)
    assert loss.item() == pytest.approx(truth_distance(student), rel=1e-5)
