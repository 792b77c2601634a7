"""The residual WaveNet (head ``lpc_mol``): it starts as the LPC baseline and can only be trained away from it."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen.generate.sampling import SamplingControls, python_sampler
from wavegen.models.wavenet import WaveNet, WaveNetConfig
from wavegen.nn.lpc import LPCBaseline, LPCState
from wavegen.tasks.wavenet import shift_right

LPC = dict(lpc_order=8, lpc_window=64, lpc_refit=16)


def small(**overrides) -> WaveNet:
    base = dict(layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16,
                head="lpc_mol", mixtures=3, **LPC)
    base.update(overrides)
    return WaveNet(WaveNetConfig(**base))


def notes(length: int, seed: int = 0) -> torch.Tensor:
    """Two decaying partials with an onset halfway and a little noise: Tensor[length]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    half = length // 2
    envelope = torch.where(torch.arange(length) < half, torch.exp(-3 * t), 0.8 * torch.exp(-3 * (t - t[half])))
    tone = envelope * (0.4 * torch.sin(2 * math.pi * 330 * t) + 0.2 * torch.sin(2 * math.pi * 495 * t))
    return tone + 0.003 * torch.randn(length, generator=g)


def test_an_untrained_model_scores_exactly_the_lpc_baseline():
    model = small().eval()
    audio = notes(900)[None].repeat(2, 1)
    tokens = model.head.encode(audio)
    inputs = shift_right(tokens, model.head.silence(2))
    with torch.no_grad():
        bits = model.head.nll(model(inputs), tokens) / math.log(2)
    # The baseline reading the same stream: the silence input first, then the clip.
    stream = torch.cat([model.head.decode(inputs), model.head.decode(tokens[:, -1:])], dim=1).float()
    expected = LPCBaseline(**{k[4:]: v for k, v in LPC.items()}).nll_bits(stream)[:, 1:]
    assert (bits - expected).abs().max() < 1e-4
    assert bits.mean() < 6  # the baseline itself is far better than uniform over 256 classes (8 bits)


def test_the_predictor_state_equals_the_baseline_sample_by_sample():
    x = notes(700)[None]
    mean, scale = LPCBaseline(8, 64, 16).predictive(x)
    state = LPCState.empty(1, 8, 64, 16)
    got_mean, got_scale = [], []
    first = (torch.zeros(1, dtype=torch.float64), state.scale.clone())
    for i in range(x.shape[1]):
        m, s = state.predictive(x[:, i : i + 1])
        got_mean.append(m[:, 0])
        got_scale.append(s[:, 0])
    # Column i of the state's output predicts sample i+1.
    assert torch.allclose(torch.stack(got_mean[:-1], 1), mean[:, 1:], atol=1e-6)
    assert torch.allclose(torch.stack(got_scale[:-1], 1), scale[:, 1:], rtol=1e-9)
    assert float(first[0]) == float(mean[0, 0]) and float(first[1]) == float(scale[0, 0])


def test_head_samples_follow_the_scored_distribution():
    """Draws from one step's mixture land in each μ-law class as often as exp(-nll) says (bar the guard share)."""
    model = small()
    head = model.head
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.3, -0.2, 0.5, 0.01, -0.02, 0.015, -9.0, -7.5, -8.0]], dtype=torch.float32)
    n = 40000
    u = torch.rand(n, 2, generator=g)
    draws = head.sample(logits.repeat(n, 1), u)
    counts = torch.bincount(draws, minlength=256).double() / n
    classes = torch.arange(256)
    nll = head.nll(logits[:, :, None].repeat(1, 1, 256), classes[None])[0].double()
    expected = torch.exp(-nll)
    expected = (expected - head.GUARD_SHARE / 256) / (1 - head.GUARD_SHARE)
    assert (counts - expected).abs().sum() < 0.03
    assert expected.max() < 0.5  # spread over several classes, so the comparison means something


def test_sampling_controls_of_the_residual_head():
    model = small()
    SamplingControls(temperature=0.8, mixture_temperature=0.5).check("lpc_mol")
    SamplingControls(top_p=0.9).check("lpc_mol")
    with pytest.raises(ValueError, match="top-p"):
        SamplingControls(top_p=0.9).check("mol")
    sampler = python_sampler(model.head, SamplingControls(temperature=0.0, mixture_temperature=0.0))
    logits = torch.tensor([[0.0, 2.0, 0.0, 0.1, 0.2, 0.3, -5.0, -5.0, -5.0]])
    # Fully greedy: the heaviest component's mean, as a μ-law class.
    assert int(sampler(logits, torch.rand(1, 2))[0]) == int(model.head.encode(torch.tensor([0.2]))[0])


def test_head_needs_a_predictor():
    with pytest.raises(ValueError, match="lpc_order"):
        WaveNet(WaveNetConfig(head="lpc_mol", lpc_order=0))


def train_on_notes(model: WaveNet, steps: int) -> tuple[float, float]:
    """Adam on one 2,000-sample clip of :func:`notes`; (bits before, bits at the last step)."""
    audio = notes(2000)[None]
    tokens = model.head.encode(audio)
    inputs = shift_right(tokens, model.head.silence(1))
    with torch.no_grad():
        start = float(model.head.nll(model(inputs), tokens).mean()) / math.log(2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model.head.nll(model(inputs), tokens).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return start, float(loss.detach()) / math.log(2)


@pytest.mark.slow
def test_training_improves_on_the_baseline():
    """120 steps on one clip: the network learns what the predictor misses (bits clearly below it).

    The clip is two partials and white noise. The bound was 0.3 bits before the predictor's fit
    changed (no lag window, numpy Levinson); the fit now leaves 0.16 bits to win at 120 steps."""
    torch.manual_seed(0)
    start, end = train_on_notes(small(), 120)
    assert end < start - 0.12, (start, end)


def test_top_p_draws_only_from_the_nucleus_of_the_class_distribution():
    model = small()
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.01, 0.012, 0.014, -7.0, -6.0, -3.0]])  # one wide component
    log_probs = model.head.class_log_probs(logits)
    assert abs(float(log_probs.exp().sum()) - 1) < 1e-5
    probs = log_probs.exp()[0]
    ranked, order = probs.sort(descending=True)
    nucleus = set(order[: int((ranked.cumsum(0) < 0.9).sum()) + 1].tolist())
    sampler = python_sampler(model.head, SamplingControls(top_p=0.9))
    u = torch.rand(4000, 2, generator=torch.Generator().manual_seed(1))
    draws = sampler(logits.repeat(4000, 1), u)
    assert set(draws.tolist()) <= nucleus
    full = python_sampler(model.head, SamplingControls())(logits.repeat(4000, 1), u)
    assert not set(full.tolist()) <= nucleus  # without top-p the wide component's tail is drawn too


@pytest.mark.parametrize("method", ["autocorrelation", "burg"])
@pytest.mark.parametrize("chunks", [[700], [5, 40, 16, 3, 300, 336], [17, 683]])
def test_the_predictor_state_gives_the_same_answer_for_any_chunking(chunks, method):
    """A prompt fed in one piece (the block-wise path) equals feeding it sample by sample."""
    x = notes(sum(chunks), seed=2)[None].repeat(2, 1)
    x[1] *= 0.5
    one = LPCState.empty(2, 8, 64, 16, method=method)
    want_mean, want_scale = zip(*[one.predictive(x[:, i : i + 1]) for i in range(x.shape[1])])
    want_mean, want_scale = torch.cat(want_mean, 1), torch.cat(want_scale, 1)
    state, got_mean, got_scale, done = LPCState.empty(2, 8, 64, 16, method=method), [], [], 0
    for n in chunks:
        m, s = state.predictive(x[:, done : done + n])
        got_mean.append(m)
        got_scale.append(s)
        done += n
    assert torch.allclose(torch.cat(got_mean, 1), want_mean, atol=1e-9)
    assert torch.allclose(torch.cat(got_scale, 1), want_scale, rtol=1e-9)
    assert state.n == one.n and torch.equal(state.history, one.history)
    assert torch.allclose(state.coeffs, one.coeffs) and torch.allclose(state.scale, one.scale)


@pytest.mark.parametrize("shift, method", [(False, "autocorrelation"), (True, "autocorrelation"), (False, "burg")])
def test_step_logits_equal_the_full_pass_with_and_without_mean_shift(shift, method):
    model = small(lpc_mean_shift=shift, lpc_method=method).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    tokens = model.head.encode(notes(300)[None])
    inputs = shift_right(tokens, model.head.silence(1))
    with torch.no_grad():
        full = model(inputs)
    state = model.init_state(1)
    _, logits = model.step(state, model.frame_bias(1), torch.zeros(300, dtype=torch.long), torch.zeros(300, 1, 2),
                           forced=tokens, return_logits=True)
    assert (logits.permute(1, 2, 0) - full).abs().max() < 1e-4
    _, means, _ = model.head.split(full)
    prediction = model.lpc_residuals(inputs)[1].float()
    centred = (means - prediction[:, None]).abs().max() < 1e-6
    assert bool(centred) != shift  # centred means sit on the prediction; shifted ones move off it


@pytest.mark.parametrize("spread", [0.0, 0.5])
def test_the_mixture_trains_as_a_mixture_only_when_its_components_start_apart(spread):
    """Components that start identical (spread 0, the shipped piano-tiny's init) get identical gradients and
    stay one logistic; spread initial widths break the tie, and the weights learn to differ."""
    torch.manual_seed(0)
    model = small(lpc_mixture_spread=spread)
    train_on_notes(model, 30)
    M = model.cfg.mixtures
    weight, bias = model.out2.weight.detach()[:, :, 0], model.out2.bias.detach()
    scale_rows = torch.cat([weight[2 * M:], bias[2 * M:, None]], dim=1)
    weight_rows = torch.cat([weight[:M], bias[:M, None]], dim=1)
    apart = float((scale_rows - scale_rows[:1]).abs().max())
    weights_learnt = float(weight_rows.abs().max())
    if spread:
        assert apart > 0.1 and weights_learnt > 1e-3
    else:
        assert apart == 0.0 and weights_learnt < 1e-6  # rounding only: the weights stay uniform


def test_a_spread_mixture_starts_near_the_baseline_and_is_refused_on_other_heads():
    model = small(lpc_mixture_spread=0.5).eval()
    audio = notes(900)[None]
    tokens = model.head.encode(audio)
    inputs = shift_right(tokens, model.head.silence(1))
    with torch.no_grad():
        spread = float(model.head.nll(model(inputs), tokens).mean())
        plain = float(small().eval().head.nll(small().eval()(inputs), tokens).mean())
    assert abs(spread - plain) / math.log(2) < 0.1  # a scale mixture around the same logistic
    assert "lpc_mixture_spread" not in small().cfg.to_dict()  # configs without it are unchanged
    assert small(lpc_mixture_spread=0.5).cfg.to_dict()["lpc_mixture_spread"] == 0.5
    with pytest.raises(ValueError, match="lpc_mixture_spread"):
        WaveNet(WaveNetConfig(layers=2, dilation_cycle=2, head="mol", lpc_mixture_spread=0.5))


def test_a_burg_model_starts_as_its_own_predictor_and_older_configs_are_unchanged():
    model = small(lpc_method="burg").eval()
    audio = notes(900)[None]
    tokens = model.head.encode(audio)
    inputs = shift_right(tokens, model.head.silence(1))
    with torch.no_grad():
        bits = model.head.nll(model(inputs), tokens) / math.log(2)
    stream = torch.cat([model.head.decode(inputs), model.head.decode(tokens[:, -1:])], dim=1).float()
    expected = LPCBaseline(8, 64, 16, "burg").nll_bits(stream)[:, 1:]
    assert (bits - expected).abs().max() < 1e-4
    assert (bits - LPCBaseline(8, 64, 16).nll_bits(stream)[:, 1:]).abs().max() > 1e-3  # not the default fit
    assert "lpc_method" not in small().cfg.to_dict()
    assert small(lpc_method="burg").cfg.to_dict()["lpc_method"] == "burg"
    with pytest.raises(ValueError, match="lpc_method must be one of autocorrelation, burg"):
        small(lpc_method="covariance")
