"""Codes: the scalar quantiser, run-length events, rate statistics, slowness and its controller."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wavegen.codes import (
    Events,
    RateController,
    ScalarQuantiser,
    codes_to_events,
    count_changes,
    count_events,
    events_per_second,
    events_to_codes,
    rate_statistics,
    slowness_penalty,
)
from wavegen.codes.events import batch_to_events, events_to_batch

# ----------------------------------------------------------------------------- quantiser


@pytest.mark.parametrize("bound", ["tanh", "clip"])
@pytest.mark.parametrize("levels", [[15, 15, 15, 15], [8, 5, 5, 5], [2, 3], [255]])
def test_quantiser_outputs_lie_on_the_grid(bound, levels):
    q = ScalarQuantiser(levels, bound)
    u = torch.randn(3, len(levels), 200, generator=torch.Generator().manual_seed(0)) * 4
    out = q(u)
    top = torch.tensor(levels).reshape(1, -1, 1)
    assert out.indices.dtype == torch.long
    assert bool((out.indices >= 0).all()) and bool((out.indices < top).all())
    # Grid values are exactly the levels' evenly spaced points in [-1, 1] ...
    assert torch.allclose(out.values, 2 * out.indices.float() / (top - 1) - 1, atol=1e-6)
    assert float(out.values.min()) >= -1.0 and float(out.values.max()) <= 1.0
    # ... and every level of every channel is reachable.
    sweep = q(torch.linspace(-8, 8, 20001).expand(1, len(levels), -1)).indices[0]
    for channel, level in enumerate(levels):
        assert sorted(set(sweep[channel].tolist())) == list(range(level))
    # Round trips between indices and values are exact.
    assert torch.equal(q.values_to_indices(out.values.detach()), out.indices)
    assert torch.equal(q.indices_to_values(out.indices), out.values.detach())


@pytest.mark.parametrize("levels", [[15], [8], [4]])
def test_tanh_bound_maps_zero_to_the_middle_and_rounds_to_nearest(levels):
    q = ScalarQuantiser(levels, "tanh")
    out = q(torch.zeros(1, 1, 1))
    assert abs(float(out.continuous) - (2 * (levels[0] // 2) / (levels[0] - 1) - 1)) < 1e-6
    u = torch.linspace(-5, 5, 1001).reshape(1, 1, -1)
    out = q(u)
    # Rounding picks the grid point nearest to the bounded (continuous) value.
    step = 2 / (levels[0] - 1)
    assert float((out.values - out.continuous).abs().max()) <= step / 2 + 1e-6


@pytest.mark.parametrize("bound", ["tanh", "clip"])
def test_quantiser_gradient_passes_straight_through_the_rounding(bound):
    q = ScalarQuantiser([15, 7], bound)
    u = (torch.randn(2, 2, 50, generator=torch.Generator().manual_seed(1)) * 0.5).requires_grad_()
    out = q(u)
    weights = torch.randn(out.values.shape, generator=torch.Generator().manual_seed(2))
    (grad_q,) = torch.autograd.grad((out.values * weights).sum(), u, retain_graph=True)
    # The same loss on the un-rounded values: identical gradient (rounding is the identity backwards).
    (grad_c,) = torch.autograd.grad((out.continuous * weights).sum(), u)
    assert torch.allclose(grad_q, grad_c)
    assert float(grad_q.abs().min()) > 0, "rounding must not block any gradient"


def test_clip_bound_passes_gradient_outside_the_range_and_the_margin_penalty_pulls_back():
    q = ScalarQuantiser([15], "clip")
    u = torch.tensor([[[-3.0, -0.45, 0.2, 2.0]]], requires_grad=True)
    out = q(u)
    assert out.indices.tolist() == [[[0, 4, 8, 14]]]
    (grad,) = torch.autograd.grad(out.values.sum(), u)
    assert torch.allclose(grad, torch.ones_like(grad))
    # mean(max(|u| - 1, 0)^2) = (2^2 + 0 + 0 + 1^2) / 4
    assert math.isclose(float(out.margin.detach()), 5 / 4, rel_tol=1e-6)
    (margin_grad,) = torch.autograd.grad(q(u).margin, u)
    assert margin_grad[0, 0, 0] < 0 < margin_grad[0, 0, 3] and margin_grad[0, 0, 1] == 0


def test_quantiser_rejects_bad_settings_and_indices():
    with pytest.raises(ValueError, match="2..255"):
        ScalarQuantiser([1, 5])
    with pytest.raises(ValueError, match="bound"):
        ScalarQuantiser([5], "sigmoid")
    q = ScalarQuantiser([5, 3])
    q.check_indices(torch.tensor([[0, 4], [2, 0]]))
    with pytest.raises(ValueError, match="out of range"):
        q.check_indices(torch.tensor([[0, 4], [3, 0]]))
    with pytest.raises(ValueError, match="Tensor"):
        q.check_indices(torch.zeros(1, 3, 4, dtype=torch.long))
    assert q.codebook_size == 15 and math.isclose(q.bits_per_frame, math.log2(15))


# ----------------------------------------------------------------------------- run-length events


@st.composite
def code_sequences(draw):
    """Codes LongTensor[C, F] with long runs (like slow codes) or none (like fixed-rate ones)."""
    channels = draw(st.integers(1, 5))
    levels = draw(st.lists(st.integers(2, 255), min_size=channels, max_size=channels))
    frames = draw(st.integers(0, 300))
    change_prob = draw(st.sampled_from([0.0, 0.02, 0.3, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    fresh = torch.stack([torch.randint(0, level, (frames,), generator=g) for level in levels])
    keep = torch.rand(frames, generator=g) >= change_prob
    codes = fresh.clone()
    for f in range(1, frames):
        if keep[f]:
            codes[:, f] = codes[:, f - 1]
    return codes, levels


@settings(max_examples=200, deadline=None)
@given(code_sequences(), st.one_of(st.none(), st.integers(1, 40)))
def test_run_length_round_trip_is_exact(sample, max_run):
    codes, _ = sample
    events = codes_to_events(codes, max_run)
    assert torch.equal(events_to_codes(events), codes)
    assert events.frames == codes.shape[1]
    assert bool((events.lengths >= 1).all())
    if max_run is None:
        # Maximal runs: neighbouring events always differ, and there is one per change (+1).
        if len(events) > 1:
            assert bool((events.values[1:] != events.values[:-1]).any(dim=1).all())
        assert len(events) == int(count_events(codes))
        assert len(events) == (int(count_changes(codes)) + 1 if codes.shape[1] else 0)
    else:
        assert all(length <= max_run for length in events.lengths.tolist())


@settings(max_examples=100, deadline=None)
@given(code_sequences())
def test_events_to_codes_inverts_codes_to_events_from_the_event_side(sample):
    codes, _ = sample
    events = codes_to_events(codes)
    assert codes_to_events(events_to_codes(events)) == events


def test_run_length_example_and_batches():
    codes = torch.tensor([[3, 3, 3, 2, 2, 0], [1, 1, 1, 1, 1, 4]])
    events = codes_to_events(codes)
    assert events.values.tolist() == [[3, 1], [2, 1], [0, 4]]
    assert events.lengths.tolist() == [3, 2, 1]
    split = codes_to_events(codes, max_run=2)
    assert split.values.tolist() == [[3, 1], [3, 1], [2, 1], [0, 4]]
    assert split.lengths.tolist() == [2, 1, 2, 1]
    batch = torch.stack([codes, codes.flip(-1)])
    assert torch.equal(events_to_batch(batch_to_events(batch)), batch)
    assert count_events(batch).tolist() == [3, 3]
    with pytest.raises(ValueError, match="at least one frame"):
        events_to_codes(Events(torch.tensor([[1]]), torch.tensor([0])))
    with pytest.raises(ValueError, match="integers"):
        codes_to_events(codes.float())


# ----------------------------------------------------------------------------- rate statistics


def test_rate_statistics_count_bits_as_documented():
    # 2 channels x 4 levels (4 bits per tuple) at hop 100, 1 kHz: 10 frames/s; 20 frames = 2 s.
    codes = torch.tensor([[0] * 10 + [1] * 5 + [2] * 5, [3] * 20])
    stats = rate_statistics(codes, [4, 4], hop=100, sample_rate=1000)
    assert stats.frames == 20 and stats.events == 3 and stats.seconds == 2.0
    assert stats.events_per_second == 1.5
    assert stats.bits_per_event_naive == 4 + math.log2(10)  # longest run is 10
    assert math.isclose(stats.bits_per_second_naive, 1.5 * (4 + math.log2(10)))
    assert stats.bits_per_second_fixed == 40.0
    # Tuples all differ (log2 3 bits); runs are {10, 5, 5} (entropy of (1/3, 2/3)).
    run_entropy = -(1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3))
    assert math.isclose(stats.bits_per_second_entropy, 1.5 * (math.log2(3) + run_entropy))
    assert math.isclose(stats.compression, 40.0 / stats.bits_per_second_naive)
    capped = rate_statistics(codes, [4, 4], hop=100, sample_rate=1000, max_run=4)
    assert capped.events == 7 and capped.bits_per_event_naive == 6.0  # runs 4+4+2, 4+1, 4+1


def test_events_per_second_counts_changes_only():
    codes = torch.tensor([[[0, 0, 1, 1, 1, 2, 2, 2]], [[5, 5, 5, 5, 5, 5, 5, 5]]])
    # Two changes in 2 x 8 frames of hop 10 at 100 Hz (1.6 s): 1.25 events/s.
    assert math.isclose(float(events_per_second(codes, hop=10, sample_rate=100)), 2 / 1.6)


# ----------------------------------------------------------------------------- slowness


def test_slowness_penalties_match_their_definitions():
    z = torch.tensor([[[0.0, 0.3, 0.3, -0.1], [0.0, 0.4, 0.4, 0.2]]])  # [1, 2, 4]
    diffs = torch.tensor([[0.3, 0.4], [0.0, 0.0], [-0.4, -0.2]])
    assert math.isclose(float(slowness_penalty(z, "group")), float(diffs.norm(dim=1).mean()), rel_tol=1e-6)
    assert math.isclose(float(slowness_penalty(z, "l1")), float(diffs.abs().sum(1).mean()), rel_tol=1e-6)
    assert math.isclose(float(slowness_penalty(z, "l2")), float(diffs.pow(2).sum(1).mean()), rel_tol=1e-6)
    z.requires_grad_()
    (grad,) = torch.autograd.grad(slowness_penalty(z, "group"), z)
    assert torch.isfinite(grad).all(), "a frame pair without change must not give a NaN gradient"
    with pytest.raises(ValueError, match="slowness"):
        slowness_penalty(z, "l3")


def test_controller_moves_the_weight_the_right_way_and_stays_in_bounds():
    c = RateController(target=10.0, initial_weight=1.0, gain=0.1, min_weight=0.5, max_weight=2.0)
    c.update(20.0)
    assert c.weight > 1.0  # too many events: penalise change more
    for _ in range(100):
        c.update(1000.0)
    assert math.isclose(c.weight, 2.0)
    for _ in range(100):
        c.update(0.0)
    assert math.isclose(c.weight, 0.5)
    off = RateController(target=None, initial_weight=0.0)
    off.update(123.0)
    assert off.weight == 0.0 and float(off.rate_ema) == 123.0
    state = c.state_dict()
    assert set(state) == {"log_weight", "rate_ema", "updates"}
    fresh = RateController(target=10.0, initial_weight=1.0, gain=0.1, min_weight=0.5, max_weight=2.0)
    fresh.load_state_dict(state)
    assert fresh.weight == c.weight and int(fresh.updates) == 201


def test_controller_steers_a_direct_optimisation_to_its_target_rate():
    """Codes fitted to a signal that changes every frame; only the penalty makes them slow.

    The controller must find the weight at which 20 events/s remain: measured over
    the last 100 of 600 steps, the mean rate lies within 10 % of the target.
    """
    torch.manual_seed(0)
    channels, frames, hop, sample_rate, target = 4, 400, 10, 1000, 20.0
    q = ScalarQuantiser([15] * channels)
    signal = torch.cumsum(torch.randn(1, channels, frames) * 0.15, -1).clamp(-1, 1)
    u = torch.zeros(1, channels, frames, requires_grad=True)
    controller = RateController(target=target, initial_weight=0.01, gain=0.05)
    opt = torch.optim.Adam([u], lr=0.05)
    rates = []
    for _ in range(600):
        out = q(u)
        loss = (out.values - signal).pow(2).mean() + controller.weight * slowness_penalty(out.continuous)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rate = float(events_per_second(out.indices, hop, sample_rate))
        controller.update(rate)
        rates.append(rate)
    unpenalised = float(events_per_second(q.values_to_indices(signal), hop, sample_rate))
    assert unpenalised > 2 * target, "the toy must need the penalty to be slow"
    mean_rate = sum(rates[-100:]) / 100
    assert abs(mean_rate - target) <= 0.1 * target, f"mean rate {mean_rate:.2f} events/s, target {target}"
