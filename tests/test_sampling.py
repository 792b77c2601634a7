"""Sampling controls: temperature per head, top-p on μ-law classes, greedy limits, the Python sampler == kernels."""

import pytest
import torch

from wavegen.generate.sampling import (SamplingControls, generate_tokens, python_sampler, sample_categorical,
                                       sample_mixture)
from wavegen.models.wavenet import WaveNet, WaveNetConfig

N = 20000  # uniforms on a regular grid: the sampled frequencies are exact up to 1/N


def grid_uniforms(n: int = N) -> torch.Tensor:
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return torch.stack([u, u.flip(0)], dim=1).float()  # Tensor[n, 2]


def frequencies(tokens: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.bincount(tokens, minlength=classes).double() / tokens.numel()


def test_top_p_keeps_the_smallest_likely_set_and_renormalises():
    logits = torch.log(torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15]))
    u = grid_uniforms()
    # 0.4 + 0.3 = 0.7 < 0.75, so the nucleus is {1, 3, 4} (0.85); class 2 (0.1) and 0 are cut.
    tokens = sample_categorical(logits.expand(N, 5), u, top_p=0.75)
    expected = torch.tensor([0.0, 0.4, 0.0, 0.3, 0.15], dtype=torch.float64) / 0.85
    assert (frequencies(tokens, 5) - expected).abs().max() <= 2.0 / N
    # With temperature 2 the distribution flattens first, then is truncated.
    probs = torch.softmax(logits / 2, dim=0).double()
    ranked = probs.sort(descending=True)
    keep = ranked.indices[(ranked.values.cumsum(0) - ranked.values) < 0.6]
    expected = torch.zeros(5, dtype=torch.float64)
    expected[keep] = probs[keep] / probs[keep].sum()
    got = frequencies(sample_categorical(logits.expand(N, 5), u, temperature=2.0, top_p=0.6), 5)
    assert len(keep) == 3 and (got - expected).abs().max() <= 2.0 / N


def test_top_p_one_is_the_plain_distribution():
    logits = torch.randn(7, generator=torch.Generator().manual_seed(0)) * 2
    got = frequencies(sample_categorical(logits.expand(N, 7), grid_uniforms(), temperature=0.8), 7)
    assert (got - torch.softmax(logits / 0.8, dim=0).double()).abs().max() <= 2.0 / N


def test_tiny_top_p_and_tiny_temperature_are_greedy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(500, 256, generator=g) * 3
    u = torch.rand(500, 2, generator=g)
    greedy = sample_categorical(logits, u, temperature=0.0)
    assert torch.equal(greedy, logits.argmax(dim=-1))
    assert torch.equal(sample_categorical(logits, u, top_p=1e-6), greedy)
    assert torch.equal(sample_categorical(logits, u, temperature=1e-4), greedy)
    assert not torch.equal(sample_categorical(logits, u, temperature=1.0), greedy)


def test_mixture_temperatures_act_separately():
    m = 3
    weights = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    means = torch.tensor([-0.5, 0.1, 0.6])
    log_scales = torch.log(torch.tensor([0.01, 0.02, 0.03]))
    logits = torch.cat([weights, means, log_scales]).expand(N, 3 * m)
    u = grid_uniforms()

    def component(x):  # which mean a sample is nearest to
        return (x[:, None] - means).abs().argmin(dim=1)

    for t in (0.5, 1.0, 2.0):
        x = sample_mixture(logits, u, m, -16.0, scale_temperature=0.0, mixture_temperature=t)
        assert torch.equal(x, means[component(x)])  # scale temperature 0: exactly a mean
        expected = torch.softmax(weights / t, dim=0).double()
        assert (frequencies(component(x), m) - expected).abs().max() <= 2.0 / N
    fully_greedy = sample_mixture(logits, u, m, -16.0, scale_temperature=0.0, mixture_temperature=0.0)
    assert torch.all(fully_greedy == -0.5)
    # The scale temperature multiplies the spread around each mean, not the component choice.
    spread = lambda t: (sample_mixture(logits, u, m, -16.0, t, 1.0) - means[component(sample_mixture(
        logits, u, m, -16.0, 0.0, 1.0))]).abs().mean()
    assert float(spread(0.5)) == pytest.approx(0.5 * float(spread(1.0)), rel=1e-3)


def test_controls_refuse_what_a_head_cannot_use():
    with pytest.raises(ValueError, match="top-p applies to μ-law classes"):
        SamplingControls(top_p=0.9).check("mol")
    with pytest.raises(ValueError, match="mixture temperature"):
        SamplingControls(mixture_temperature=0.5).check("categorical")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        SamplingControls(top_p=0.0).check("categorical")


def small_model(head: str, **extra) -> WaveNet:
    cfg = WaveNetConfig(layers=5, dilation_cycle=5, residual_channels=8, gate_channels=12, skip_channels=10,
                        classes=256, head=head, mixtures=3, **extra)
    model = WaveNet(cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("head", ["categorical", "mol"])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_the_python_sampler_draws_what_the_kernels_draw(head, backend):
    """Default controls through the per-sample Python path == the fused kernels' own sampling."""
    model = small_model(head)
    uniforms = torch.rand(80, 2, 2, generator=torch.Generator().manual_seed(3))
    runs = []
    for sampler in (None, python_sampler(model.head, SamplingControls(temperature=0.9))):
        state = model.init_state(2)
        bias = model.frame_bias(2)
        extra = {} if sampler is None else {"sampler": sampler}
        tokens, _ = model.step(state, bias, torch.zeros(80, dtype=torch.long), uniforms, temperature=0.9,
                               backend=backend, **extra)
        runs.append(tokens)
    if head == "categorical":
        assert torch.equal(runs[0], runs[1])
    else:
        assert torch.allclose(runs[0], runs[1], atol=1e-6)
    assert len(set(runs[0].flatten().tolist())) > 5  # really sampled


def test_generation_with_tiny_top_p_is_greedy_generation():
    model = small_model("categorical")
    prompt = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(4))
    run = lambda **kw: torch.cat(list(generate_tokens(model, 40, prompt_tokens=prompt, chunk_size=16,
                                                      generator=torch.Generator().manual_seed(5), **kw)), dim=1)
    greedy = run(temperature=0.0)
    assert torch.equal(run(top_p=1e-6), greedy)
    assert not torch.equal(run(), greedy)
    with pytest.raises(ValueError, match="top-p"):
        list(generate_tokens(small_model("mol"), 4, top_p=0.5))
