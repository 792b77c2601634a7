"""The stray decay: a continuation's predictor damped in the pitch classes its prompt does not hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import random_wavenet
from wavegen.errors import WavegenError
from wavegen.generate.sampling import generate_tokens
from wavegen.nn.lpc import LPCState, damp_stray_poles, fit_lpc, held_classes

RATE = 16000


def chord(seconds: float = 0.25, seed: int = 0) -> torch.Tensor:
    """A (220 Hz, strong) and E (330 Hz, 20 dB weaker) with their partials, and a little noise: Tensor[T]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    a = sum(0.3 / k * torch.sin(2 * math.pi * 220 * k * t) for k in range(1, 4))
    e = 0.03 * torch.sin(2 * math.pi * 330 * t)
    return (a + e) * torch.exp(-2 * t) + 1e-4 * torch.randn(t.shape, generator=g)


def poles(coeffs: torch.Tensor) -> np.ndarray:
    return np.roots(np.concatenate([[1.0], -coeffs.double().numpy()]))


def test_held_classes_weigh_each_class_by_its_amplitude():
    held = held_classes(chord()[None], RATE)[0]
    # Pitch classes counted from A: A = 0 holds 220/440/660 Hz' fundamentals (E's partial 660 Hz too);
    # E = 7 holds 330 Hz at about a tenth of A's amplitude.
    assert held.argmax() == 0 and held[0] == 1
    assert 0.03 < held[7] < 0.5
    assert held[[1, 2, 3, 5, 6, 8, 9, 11]].max() < 0.02


def test_an_infinite_decay_leaves_an_order_160_predictor_exactly_as_fitted():
    """The polynomial is rebuilt through the unit circle, not from its 160 roots (which loses every digit)."""
    x = chord(0.2)
    coeffs = fit_lpc(x[None, -1536:], 160, "burg")
    held = held_classes(x[None], RATE)
    assert torch.allclose(damp_stray_poles(coeffs, held, RATE, 1e15), coeffs, atol=1e-9)


def test_poles_move_inward_by_their_class_weight_and_only_in_band():
    x = chord(0.2)
    coeffs = fit_lpc(x[None, -1024:], 32, "burg")
    held = torch.zeros(1, 12)
    held[0, 0] = 1.0  # only A is held
    decay = 40.0
    before, after = poles(coeffs[0]), poles(damp_stray_poles(coeffs, held, RATE, decay)[0])
    assert np.abs(after).max() <= np.abs(before).max() + 1e-9  # never outward: a stable predictor stays stable
    for pole in before:
        freq = abs(np.angle(pole)) * RATE / (2 * math.pi)
        moved = after[np.argmin(np.abs(after - pole))]
        cls = round(12 * math.log2(max(freq, 1.0) / 440.0)) % 12
        if pole.imag == 0 or not 100 <= freq <= 5000 or cls == 0:
            assert abs(moved - pole) < 1e-6  # out of band, real, or held: untouched
        else:
            expected = pole * math.exp(-1.0 / decay)
            assert abs(after[np.argmin(np.abs(after - expected))] - expected) < 1e-6


def test_state_applies_the_shape_to_every_refit_in_both_paths():
    """The block-wise prompt path and the sample-by-sample path shape the same refits alike."""
    x = chord(0.1)[None]
    held = held_classes(x, RATE)

    def shaped(state):
        state.shape = lambda c: damp_stray_poles(c, held, RATE, 20.0)
        return state

    whole = shaped(LPCState.empty(1, 16, 256, 64, method="burg"))
    mean_whole, scale_whole = whole.predictive(x)
    stepped = shaped(LPCState.empty(1, 16, 256, 64, method="burg"))
    parts = [stepped.predictive(x[:, i : i + 1]) for i in range(x.shape[1])]
    assert torch.allclose(torch.cat([m for m, _ in parts], 1), mean_whole, atol=1e-9)
    assert torch.allclose(torch.cat([s for _, s in parts], 1), scale_whole, rtol=1e-9)
    plain = LPCState.empty(1, 16, 256, 64, method="burg")
    mean_plain, scale_plain = plain.predictive(x)
    assert not torch.allclose(mean_plain, mean_whole)  # the shape changes the predictions ...
    assert torch.equal(scale_plain, scale_whole)  # ... not the logistic's scale, which stays as fitted


SMALL = dict(layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16)


def test_generation_with_a_huge_decay_equals_generation_without():
    torch.manual_seed(0)
    net = random_wavenet(**SMALL, head="lpc_mol", mixtures=3, lpc_order=8, lpc_window=64, lpc_refit=16)
    prompt = net.head.encode(chord(0.02))[None].repeat(2, 1)

    def run(**kw):
        g = torch.Generator().manual_seed(3)
        return torch.cat(list(generate_tokens(net, 200, batch_size=2, prompt_tokens=prompt, generator=g,
                                              chunk_size=64, backend="reference", **kw)), 1)

    assert torch.equal(run(), run(stray_decay_ms=1e12, sample_rate=RATE))
    assert not torch.equal(run(), run(stray_decay_ms=2.0, sample_rate=RATE))


def test_refusals_are_one_line():
    plain = random_wavenet(**SMALL)  # no linear predictor
    with pytest.raises(ValueError, match="acts on a linear predictor"):
        next(generate_tokens(plain, 10, prompt_tokens=torch.zeros(1, 5, dtype=torch.long), stray_decay_ms=100,
                             sample_rate=RATE, backend="reference"))
    with pytest.raises(ValueError, match="must not be negative"):
        next(generate_tokens(plain, 10, stray_decay_ms=-1.0, backend="reference"))


def test_the_cli_refuses_a_negative_decay_before_loading(tmp_path, capsys):
    from wavegen.cli import main

    assert main(["sample", "--model", "piano-tiny", "-o", str(tmp_path / "out"), "--stray-decay-ms", "-3"]) != 0
    assert "--stray-decay-ms must be a non-negative number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(WavegenError):  # the API refuses it too, in one line
        import wavegen

        wavegen.load("piano-tiny").generate(0.01, stray_decay_ms=-1)
