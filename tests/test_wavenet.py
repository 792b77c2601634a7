"""WaveNet behaviour: causality, receptive field, incremental == full forward, heads."""

import math

import pytest
import torch

from wavegen.generate.sampling import generate_tokens, prime
from wavegen.models.wavenet import WaveNet, WaveNetConfig
from wavegen.nn.conv import receptive_field


def small_cfg(**overrides) -> WaveNetConfig:
    base = dict(layers=6, dilation_cycle=3, residual_channels=8, gate_channels=12, skip_channels=10, classes=16)
    base.update(overrides)
    return WaveNetConfig(**base)


def random_tokens(model: WaveNet, batch: int, length: int, generator) -> torch.Tensor:
    if model.cfg.head == "categorical":
        return torch.randint(0, model.cfg.classes, (batch, length), generator=generator)
    return model.head.encode(torch.rand(batch, length, generator=generator) * 1.8 - 0.9)


def randomise(model: WaveNet, seed: int = 0) -> WaveNet:
    """Non-trivial weights everywhere (biases included) so the tests can fail."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_causality(kernel_size):
    model = randomise(WaveNet(small_cfg(kernel_size=kernel_size)))
    g = torch.Generator().manual_seed(1)
    x = random_tokens(model, 1, 64, g)
    t = 40
    y = x.clone()
    y[0, t] = (y[0, t] + 5) % model.cfg.classes
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[..., :t], b[..., :t]), "an output before t changed when input t did"
    assert not torch.allclose(a[..., t], b[..., t]), "output t should see input t"


@pytest.mark.parametrize("kernel_size,cycle,layers", [(2, 10, 20), (3, 4, 8), (2, 3, 7)])
def test_receptive_field_formula(kernel_size, cycle, layers):
    cfg = small_cfg(kernel_size=kernel_size, dilation_cycle=cycle, layers=layers)
    rf = WaveNet(cfg).receptive_field
    assert rf == (kernel_size - 1) * sum(2 ** (i % cycle) for i in range(layers)) + 1
    assert rf == receptive_field(kernel_size, cfg.dilations)
    # Measure it with gradients (exact zeros where there is no path), in float64 so that a
    # product of many small Jacobians does not underflow: output t depends on input 0
    # exactly when t < rf.
    model = randomise(WaveNet(WaveNetConfig(**{**cfg.to_dict(), "head": "mol", "mixtures": 2}))).double()
    x = torch.zeros(1, rf + 20, dtype=torch.float64, requires_grad=True)
    out = model(x)
    depends = []
    for t in (rf - 2, rf - 1, rf, rf + 5):
        (grad,) = torch.autograd.grad(out[0, :, t].sum(), x, retain_graph=True)
        depends.append(bool(grad[0, 0] != 0))
    assert depends == [True, True, False, False]


def test_base_receptive_field():
    assert receptive_field(2, WaveNetConfig().dilations) == 2047


def incremental_logits(model, tokens, local=None, global_ids=None, chunk=37):
    """Teacher-forced incremental pass; returns logits Tensor[B, A, T]."""
    from wavegen.generate.sampling import _chunk_conditioning

    B, T = tokens.shape
    state = model.init_state(B)
    inputs = torch.cat([model.head.silence(B)[:, None].to(tokens.dtype), tokens[:, :-1]], dim=1)
    state.next_input = inputs[:, 0]
    outs = []
    done = 0
    while done < T:
        n = min(chunk, T - done)
        bias, frame_index = _chunk_conditioning(model, B, state.t, n, local, global_ids)
        # Feed inputs[done+1 .. done+n]: the token after step i is the input of step i+1.
        forced = torch.cat([inputs, tokens[:, -1:]], dim=1)[:, done + 1 : done + n + 1]
        _, logits = model.step(state, bias, frame_index, torch.zeros(n, B, 2), forced=forced, return_logits=True)
        outs.append(logits.permute(1, 2, 0))
        done += n
    return torch.cat(outs, dim=-1), inputs


@pytest.mark.parametrize("head", ["categorical", "mol"])
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_incremental_equals_full_forward(head, kernel_size):
    cfg = small_cfg(head=head, kernel_size=kernel_size, mixtures=3, local_channels=5, local_hop=8,
                    local_hidden=6, global_classes=4)
    model = randomise(WaveNet(cfg), seed=3)
    g = torch.Generator().manual_seed(2)
    B, T = 3, 150
    tokens = random_tokens(model, B, T, g)
    local = torch.randn(B, 5, math.ceil(T / 8), generator=g)
    ids = torch.tensor([0, 3, 1])
    logits, inputs = incremental_logits(model, tokens, local, ids)
    with torch.no_grad():
        full = model(inputs, local, ids)
    assert full.shape == logits.shape
    assert (full - logits).abs().max().item() < 1e-5


def test_chunked_conditioning_equals_whole_clip():
    cfg = small_cfg(local_channels=4, local_hop=4, local_kernel=5)
    model = randomise(WaveNet(cfg))
    local = torch.randn(2, 4, 20)
    whole = model.frame_bias(2, local)
    parts = torch.cat([model.frame_bias(2, local, start=s, stop=min(s + 3, 20)) for s in range(0, 20, 3)], dim=1)
    assert torch.allclose(whole, parts, atol=1e-6)


def test_sampling_is_seeded_and_prompt_is_kept():
    model = randomise(WaveNet(small_cfg()))
    run = lambda seed: torch.cat(list(generate_tokens(model, 50, batch_size=2, chunk_size=16,
                                                     generator=torch.Generator().manual_seed(seed))), dim=1)
    a, b, c = run(0), run(0), run(1)
    assert a.shape == (2, 50)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Greedy continuation of a prompt equals greedy continuation after priming by hand.
    prompt = torch.randint(0, 16, (1, 30))
    greedy = torch.cat(list(generate_tokens(model, 10, prompt_tokens=prompt, temperature=0.0)), dim=1)
    state = model.init_state(1)
    prime(model, state, prompt)
    with torch.no_grad():
        full = model(torch.cat([model.head.silence(1)[:, None], prompt], dim=1))
    assert greedy[0, 0] == full[0, :, -1].argmax()
