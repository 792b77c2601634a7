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


# ----------------------------------------------------------------------------- linear prediction (LPCNet-style)

LPC = dict(lpc_order=4, lpc_window=32, lpc_refit=16)


def smooth_tokens(model: WaveNet, batch: int, length: int, generator) -> torch.Tensor:
    """A predictable signal (a few sines + noise) so the LPC prediction is far from zero."""
    t = torch.arange(length)[None].float()
    phase = torch.rand(batch, 1, generator=generator) * 6.28
    audio = 0.5 * torch.sin(0.07 * t + phase) + 0.2 * torch.sin(0.31 * t) + 0.02 * torch.randn(batch, length, generator=generator)
    return model.head.encode(audio.clamp(-1, 1))


@pytest.mark.parametrize("head", ["categorical", "mol", "lpc_mol"])
def test_lpc_model_is_causal(head):
    model = randomise(WaveNet(small_cfg(head=head, mixtures=3, classes=256, **LPC)))
    g = torch.Generator().manual_seed(1)
    x = smooth_tokens(model, 1, 120, g)
    t = 70
    y = x.clone()
    y[0, t] = model.head.encode(torch.tensor([0.9]))[0] if head == "mol" else (y[0, t] + 100) % 256
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[..., :t], b[..., :t]), "an output before t changed when input t did"
    assert not torch.allclose(a[..., t], b[..., t]), "output t should see input t"
    # The prediction itself reads the past only, and differs from zero (the test would be empty otherwise).
    p = model.lpc_prediction(x)
    assert p[0, 40:].abs().mean() > 0.05


@pytest.mark.parametrize("head", ["categorical", "mol", "lpc_mol"])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_lpc_incremental_equals_full_forward(head, backend):
    """Priming chunk by chunk (the predictor refitted inside chunks and across them) == the whole clip."""
    cfg = small_cfg(head=head, mixtures=3, classes=256, global_classes=2, **LPC)
    model = randomise(WaveNet(cfg), seed=3)
    g = torch.Generator().manual_seed(2)
    B, T = 2, 150
    tokens = smooth_tokens(model, B, T, g)
    ids = torch.tensor([0, 1])
    logits, inputs = incremental_logits(model, tokens, None, ids, chunk=23)
    with torch.no_grad():
        full = model(inputs, None, ids)
    assert (full - logits).abs().max().item() < 1e-4
    if head == "mol":  # the means carry p_t: without the shift they would differ by it
        p = model.lpc_prediction(inputs)
        assert p.abs().max() > 0.1


@pytest.mark.parametrize("head", ["categorical", "mol", "lpc_mol"])
def test_lpc_free_running_sampling_equals_the_full_forward(head):
    """Generated tokens, fed back through the full forward pass, reproduce the logits each one was drawn from,
    and greedy sampling picks their argmax: the per-sample refits during sampling match training."""
    cfg = small_cfg(head=head, mixtures=3, classes=256, **LPC)
    model = randomise(WaveNet(cfg), seed=4)
    prompt = smooth_tokens(model, 1, 40, torch.Generator().manual_seed(5))
    state = model.init_state(1)
    prime(model, state, prompt)
    from wavegen.generate.sampling import _chunk_conditioning

    bias, frame_index = _chunk_conditioning(model, 1, state.t, 60, None, None)
    uniforms = torch.rand(60, 1, 2, generator=torch.Generator().manual_seed(6))
    tokens, logits = model.step(state, bias, frame_index, uniforms, temperature=0.7, return_logits=True)
    inputs = torch.cat([model.head.silence(1)[:, None].to(prompt.dtype), prompt, tokens[:, :-1]], dim=1)
    with torch.no_grad():
        full = model(inputs)[..., 40:]
    assert (full - logits.permute(1, 2, 0)).abs().max() < 1e-4
    greedy = torch.cat(list(generate_tokens(model, 30, prompt_tokens=prompt, temperature=0.0, chunk_size=7)), dim=1)
    inputs = torch.cat([model.head.silence(1)[:, None].to(prompt.dtype), prompt, greedy[:, :-1]], dim=1)
    with torch.no_grad():
        full = model(inputs)[..., 40:]
    if head == "categorical":
        assert torch.equal(greedy[0], full[0].argmax(0))
    elif head == "lpc_mol":  # temperature 0: the class of the drawn component's mean (which includes p_t)
        _, means, _ = model.head.split(full)
        classes = model.head.encode(means.clamp(-1, 1))  # [1, M, T]
        assert (classes == greedy[:, None]).any(dim=1).all()
    else:  # temperature 0: the drawn component's mean exactly, which includes p_t
        _, means, _ = model.head.split(full)
        gap = (means.clamp(-1, 1) - greedy[:, None]).abs().min(dim=1).values
        assert gap.max() < 1e-5


def test_lpc_order_zero_is_todays_model():
    """lpc_order=0 keeps the parameter set (old checkpoints load) and the kernel path."""
    plain, zero = WaveNet(small_cfg()), WaveNet(small_cfg(lpc_order=0))
    assert plain.state_dict().keys() == zero.state_dict().keys()
    assert "lpc_proj.weight" in WaveNet(small_cfg(**LPC)).state_dict()
    # The config dict a checkpoint stores (and a resume compares) is unchanged without LPC.
    assert "lpc_order" not in small_cfg().to_dict()
    assert WaveNetConfig.from_mapping(small_cfg(**LPC).to_dict()) == small_cfg(**LPC)
