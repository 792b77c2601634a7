"""The LPC baseline: fitting, causality, incremental == whole clip, and its likelihood in WaveNet units."""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import solve_toeplitz
from scipy.special import expit
from scipy.stats import norm

from wavegen.audio.dsp import mu_law_decode, mu_law_encode
from wavegen.nn import lpc
from wavegen.nn.lpc import LPCBaseline, LPCState, levinson_durbin, lpc_nll_bits, lpc_predict, mulaw_class_edges


def test_levinson_matches_a_toeplitz_solve():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=g, dtype=torch.float64)
    x = torch.from_numpy(np.convolve(x.numpy(), [1.0, 0.9, -0.5, 0.2])[:4000])  # coloured
    r = torch.stack([(x[: len(x) - k] * x[k:]).sum() for k in range(9)])
    a = levinson_durbin(r[None])[0]
    expected = solve_toeplitz(r[:-1].numpy(), r[1:].numpy())
    assert np.allclose(a.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_an_ar2_process_is_recovered():
    """x[n] = 1.6 x[n-1] - 0.8 x[n-2] + e: the order-2 fit finds (1.6, -0.8) up to the lag window."""
    g = np.random.default_rng(0)
    e = g.standard_normal(20000)
    x = np.zeros_like(e)
    for n in range(2, len(x)):
        x[n] = 1.6 * x[n - 1] - 0.8 * x[n - 2] + e[n]
    a = lpc.fit_lpc(torch.from_numpy(x[-4096:])[None], 2)[0]
    assert torch.allclose(a, torch.tensor([1.6, -0.8]), atol=0.05)


def ar2(seed: int = 0) -> np.ndarray:
    """x[n] = 1.6 x[n-1] - 0.8 x[n-2] + e, 20,000 samples."""
    e = np.random.default_rng(seed).standard_normal(20000)
    x = np.zeros_like(e)
    for n in range(2, len(x)):
        x[n] = 1.6 * x[n - 1] - 0.8 * x[n - 2] + e[n]
    return x


def test_burg_recovers_an_ar2_process_and_matches_a_direct_recursion():
    x = torch.from_numpy(ar2()[-4096:])
    assert torch.allclose(lpc.fit_lpc(x[None], 2, "burg")[0], torch.tensor([1.6, -0.8]), atol=0.05)
    # The recursion written out for one frame at order 3: k_m from the forward and backward errors.
    frame = x[:300].numpy()
    f, b, a = frame[1:], frame[:-1], np.array([1.0])
    for _ in range(3):
        k = -2 * np.dot(f, b) / (np.dot(f, f) + np.dot(b, b))
        a = np.concatenate([a, [0.0]]) + k * np.concatenate([a, [0.0]])[::-1]
        f, b = (f + k * b)[1:], (b + k * f)[:-1]
    assert np.allclose(lpc.burg(x[None, :300], 3)[0].numpy(), -a[1:], rtol=1e-10, atol=1e-12)
    assert torch.equal(lpc.burg(torch.zeros(2, 64), 4), torch.zeros(2, 4, dtype=torch.float64))


def test_burg_keeps_a_partial_narrower_than_the_windowed_fit():
    """Two close sinusoids (440 and 452 Hz) in 1536 samples: Burg's poles sit nearer the unit circle, so a
    predictor refitted on its own output keeps the partials sharp (the reason the option exists)."""
    t = torch.arange(1536, dtype=torch.float64) / 16000
    x = torch.sin(2 * math.pi * 440 * t) + 0.7 * torch.sin(2 * math.pi * 452 * t + 1) + 1e-3 * torch.randn(1536, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    radius = {}
    for method in lpc.METHODS:
        a = lpc.fit_lpc(x[None], 16, method)[0].double()
        radius[method] = float(np.abs(np.roots(np.r_[1.0, -a.numpy()])).max())
    assert radius["burg"] < 1.0 and radius["autocorrelation"] < 1.0  # both stable
    assert 1 - radius["burg"] < 0.5 * (1 - radius["autocorrelation"]), radius  # measured: 0.35
    with pytest.raises(ValueError, match="burg"):
        lpc.fit_lpc(x[None], 4, "covariance")


@pytest.mark.parametrize("method", lpc.METHODS)
def test_prediction_is_causal_and_incremental_equals_whole_clip(method):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 700, generator=g) * 0.1
    full = lpc_predict(x, order=8, window=64, refit=32, method=method)
    assert full.shape == (2, 701)
    # Changing sample 300 changes no prediction of samples <= 300.
    y = x.clone()
    y[:, 300] += 0.5
    changed = lpc_predict(y, order=8, window=64, refit=32, method=method)
    assert torch.equal(full[:, :301], changed[:, :301])
    assert not torch.allclose(full[:, 301], changed[:, 301])
    if method == "burg":  # a different fit: not the default's predictions
        assert not torch.allclose(full, lpc_predict(x, order=8, window=64, refit=32))
    state = LPCState.empty(2, order=8, window=64, refit=32, method=method)
    pieces = [state.predict(x[:, s : s + 45]) for s in range(0, 700, 45)]
    assert torch.allclose(torch.cat(pieces, dim=1), full[:, 1:], atol=1e-6)


def test_mulaw_edges_agree_with_the_encoder():
    edges = mulaw_class_edges(256)
    inner = edges[1:-1]
    step = 1e-5 * inner.abs() + 1e-9  # well above float32 rounding, well below a class width
    below = mu_law_encode((inner - step).float().clamp(-1, 1))
    above = mu_law_encode((inner + step).float().clamp(-1, 1))
    assert torch.equal(below, torch.arange(255))
    assert torch.equal(above, torch.arange(1, 256))


def tone(seconds: float = 1.0, sr: int = 16000, noise: float = 1e-3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sr)) / sr
    clean = 0.4 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * 1320 * t + 1.0)
    return clean + noise * torch.randn(len(t), generator=g)


def test_a_tone_costs_far_less_than_uniform():
    """8 bits is a uniform distribution over 256 μ-law classes; a predictable tone is far below."""
    bits = lpc_nll_bits(tone(), "mulaw")
    assert bits < 3.0
    # 16 bits of a uniform over 65,536 levels: the tone's residual (1e-3 noise) costs ~8-9.
    assert lpc_nll_bits(tone(), "mol") < 10.0


@pytest.mark.parametrize("quantisation", ["mulaw", "mol"])
def test_white_noise_costs_its_entropy(quantisation):
    """LPC cannot predict white noise: the cost is the quantised Gaussian's entropy, plus a little
    (logistic vs Gaussian shape, and the first block's broad cold-start distribution)."""
    sigma, n = 0.1, 32000
    noise = (sigma * torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).float()
    if quantisation == "mulaw":
        edges = mulaw_class_edges(256).numpy()
        p = np.diff(norm.cdf(edges / sigma))
    else:
        levels = 2**16 - 1
        values = np.arange(levels + 1) * 2 / levels - 1
        lo = np.concatenate([[-np.inf], values[1:] - 1 / levels])
        hi = np.concatenate([values[:-1] + 1 / levels, [np.inf]])
        p = norm.cdf(hi / sigma) - norm.cdf(lo / sigma)
    p = p[p > 0]
    entropy = float(-(p * np.log2(p)).sum())
    bits = lpc_nll_bits(noise, quantisation)
    assert entropy - 0.02 < bits < entropy + 0.1, (bits, entropy)


def slow_reference_bits(audio: np.ndarray, order: int, window: int, refit: int) -> np.ndarray:
    """The μ-law baseline written out sample by sample in numpy/scipy (float64 throughout)."""
    classes = 256
    mu = classes - 1
    target = mu_law_encode(torch.from_numpy(audio).float()).numpy()
    x = mu_law_decode(torch.from_numpy(target)).double().numpy()
    lags = np.arange(order + 1)
    lag_window = np.exp(-0.5 * (2 * np.pi * lpc.LAG_SIGMA * lags) ** 2)
    analysis = lpc._analysis_window(window, torch.float64, "cpu").numpy()
    padded = np.concatenate([np.zeros(window), x])  # x[i] = padded[i + window]

    def sample(i: int) -> float:
        return padded[i + window] if i >= -window else 0.0

    def edge(c: float) -> float:
        y = c * 2 / mu - 1
        return math.copysign(math.expm1(abs(y) * math.log1p(mu)) / mu, y)

    bits = np.zeros(len(x))
    for j in range(0, (len(x) + refit - 1) // refit):
        frame = padded[j * refit : j * refit + window]  # x[j·refit - window : j·refit]
        w = frame * analysis
        r = np.array([np.dot(w[: window - k], w[k:]) for k in lags]) * lag_window
        r[0] *= 1 + lpc.WHITE_NOISE
        if r[0] <= lpc.SILENCE_ENERGY:
            a = np.zeros(order)
        else:
            a = solve_toeplitz(r[:-1], r[1:]).astype(np.float32).astype(np.float64)

        def predict(n: int) -> float:
            return sum(a[k - 1] * sample(n - k) for k in range(1, order + 1))

        frame_start = j * refit - window
        residual = [sample(m) - predict(m) for m in range(frame_start, j * refit)]
        if np.sum(frame**2) <= lpc.SILENCE_ENERGY:
            scale = lpc.COLD_SCALE
        else:
            scale = max(math.sqrt(np.mean(np.square(residual))) * math.sqrt(3) / math.pi, lpc.MIN_SCALE)
        for n in range(j * refit, min(len(x), (j + 1) * refit)):
            c = int(target[n])
            hi = 1.0 if c == mu else expit((edge(c + 0.5) - predict(n)) / scale)
            lo = 0.0 if c == 0 else expit((edge(c - 0.5) - predict(n)) / scale)
            bits[n] = -math.log2((1 - lpc.UNIFORM_SHARE) * (hi - lo) + lpc.UNIFORM_SHARE / classes)
    return bits


def test_an_onset_after_near_silence_costs_bounded_bits():
    """A fit on a faint hum is a very narrow logistic; the loud note after it must not cost thousands of bits."""
    t = torch.arange(4096) / 16000
    audio = 1e-4 * torch.sin(2 * math.pi * 50 * t)
    audio[2048:] += 0.5 * torch.sin(2 * math.pi * 440 * t[2048:])
    bits = LPCBaseline().nll_bits(audio, "mulaw")[0]
    assert bits.max() <= -math.log2(lpc.UNIFORM_SHARE / 256) + 1e-6
    assert bits[2048:2100].mean() > 10  # the onset itself is expensive, as it should be


def test_matches_a_slow_reference_on_a_short_clip():
    audio = tone(seconds=0.05, noise=0.01, seed=3).numpy()  # 800 samples
    audio[:50] = 0.0  # a silent start: the cold-start path too
    expected = slow_reference_bits(audio, order=6, window=128, refit=64)
    got = LPCBaseline(order=6, window=128, refit=64).nll_bits(torch.from_numpy(audio), "mulaw")[0].numpy()
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4), np.abs(got - expected).max()
