"""What a planned strike rings (``wavegen.generate.strikes``) and the predictor hook it uses."""

from __future__ import annotations

import pytest
import torch

from conftest import random_wavenet
from test_onsets import ONSETS, SMALL, struck
from wavegen.generate.strikes import STRIKE_LEVEL, check_strike_filter, strike_hook
from wavegen.models.wavenet import WaveNetConfig
from wavegen.nn.lpc import LPCState, fit_lpc

HOP = ONSETS["local_hop"]


def test_the_hook_changes_the_blocks_a_chunk_predicts_as_it_changes_them_sample_by_sample():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 600, generator=g) * 0.1
    moved = []

    def hook(start, fitted, frame):  # every third block predicts nothing; the others as fitted
        moved.append(start)
        return torch.zeros_like(fitted) if (start // 32) % 3 == 0 else fitted

    whole, one_by_one = (LPCState.empty(2, order=8, window=64, refit=32, method="burg") for _ in range(2))
    whole.shape = one_by_one.shape = hook
    a = whole.predictive(x)
    b = torch.cat([one_by_one.predictive(x[:, i : i + 1])[0] for i in range(600)], dim=1)
    assert torch.allclose(a[0], b, atol=1e-9)
    plain = LPCState.empty(2, order=8, window=64, refit=32, method="burg").predictive(x)[0]
    assert not torch.allclose(a[0], plain)
    assert sorted(set(moved)) == list(range(32, 600, 32))  # the start of every refitted block, once per path
    # Only the coefficients move: the logistic's scale is the fit's.
    assert torch.equal(a[1], LPCState.empty(2, order=8, window=64, refit=32, method="burg").predictive(x)[1])


def _plan(length: int, strikes: list[int]) -> torch.Tensor:
    local = torch.zeros(1, 1, -(-length // HOP))
    for at in strikes:
        local[0, 0, at // HOP] = STRIKE_LEVEL
    return local


def test_a_struck_block_after_the_prompt_gets_the_prompts_predictor_and_no_other_block_does():
    cfg = WaveNetConfig(**SMALL, **ONSETS)
    prompt = struck(1280, [100, 700], [300.0, 450.0])[None]  # 20 frames of 64: a loop period of 1280
    strikes = [320, 1280 + 700, 1280 + 1280 + 96]  # one inside the prompt, two after it
    local = _plan(1280 * 3, strikes)
    fitted = torch.full((1, cfg.lpc_order), 0.01)
    refit = cfg.lpc_refit
    for mode, expected in (
        ("prompt", lambda place: fit_lpc(prompt, cfg.lpc_order, cfg.lpc_method)),
        ("loop", lambda place: fit_lpc(prompt[:, place : place + cfg.lpc_window], cfg.lpc_order, cfg.lpc_method)),
    ):
        hook = strike_hook(cfg, prompt, local, mode)
        for start in range(0, 1280 * 3, refit):
            out = hook(start + 1, fitted, None)  # the predictor's sample start + 1 is token start
            frames = [at // HOP * HOP for at in strikes]  # a strike is told for its whole frame
            struck_here = start >= 1280 and any(f < start + refit and start < f + HOP for f in frames)
            if not struck_here:
                assert torch.equal(out, fitted), (mode, start)
                continue
            # Where the loop plan repeats the prompt's frames from (a window that fits in the prompt).
            place = min((start - 1280) % 1280, 1280 - cfg.lpc_window)
            assert torch.allclose(out, expected(place)), (mode, start)
    assert strike_hook(cfg, prompt, local, "none") is None


def test_the_loop_filter_of_a_place_near_the_prompts_end_reads_its_last_window():
    cfg = WaveNetConfig(**SMALL, **ONSETS)
    prompt = struck(1280, [100, 1200], [300.0, 450.0])[None]
    local = _plan(2560, [1280 + 1270])
    start = (1280 + 1270) // cfg.lpc_refit * cfg.lpc_refit + 1
    out = strike_hook(cfg, prompt, local, "loop")(start, torch.zeros(1, cfg.lpc_order), None)
    last = fit_lpc(prompt[:, -cfg.lpc_window :], cfg.lpc_order, cfg.lpc_method)
    assert torch.allclose(out, last)


def test_a_continuation_with_a_strike_filter_parts_from_the_plain_one_at_its_first_struck_block():
    from wavegen.generate.continuation import continue_prompt
    from wavegen.generate.onsets import onset_plan

    torch.manual_seed(2)
    model = random_wavenet(**SMALL, **ONSETS)
    prompt = struck(1280, [100, 700], [300.0, 450.0])
    local = onset_plan(model, prompt[None], 1, 1280, "none")[0]
    local[0, 20 + 5] = 1.0  # one strike, at the continuation's frame 5 (samples 320-383)
    plain = continue_prompt(model, prompt, 1280, draws=2, seed=3, local=local)
    assert torch.equal(plain, continue_prompt(model, prompt, 1280, draws=2, seed=3, local=local,
                                              strike_filter="none"))
    for mode in ("prompt", "loop"):
        filtered = continue_prompt(model, prompt, 1280, draws=2, seed=3, local=local, strike_filter=mode)
        refit = model.cfg.lpc_refit  # blocks start at predictor samples j·refit, tokens j·refit - 1
        first = (1280 + 320 + 1) // refit * refit - 1 - 1280
        assert torch.equal(filtered[:, :first], plain[:, :first])
        assert not torch.equal(filtered[:, first : first + model.cfg.lpc_refit], plain[:, first : first + model.cfg.lpc_refit])


def test_bad_strike_filters_are_refused_in_one_line():
    from wavegen.generate.sampling import generate_tokens

    with pytest.raises(ValueError, match="none, prompt, loop"):
        check_strike_filter("chord")
    model = random_wavenet(**SMALL, **ONSETS)
    with pytest.raises(ValueError, match="needs a prompt"):
        next(generate_tokens(model, 64, local=torch.zeros(1, 1, 2), strike_filter="loop"))


def test_the_anchor_filter_rings_the_prompts_strongest_partial_in_every_block_after_the_prompt():
    cfg = WaveNetConfig(**{**SMALL, "lpc_order": 32, "lpc_window": 1024, "lpc_method": "burg"}, **ONSETS)
    n = torch.arange(4096, dtype=torch.float64)
    prompt = (torch.sin(2 * torch.pi * 0.05 * n) + 0.01 * torch.randn(4096, dtype=torch.float64)).float()[None]
    frame = torch.randn(1, cfg.lpc_window, generator=torch.Generator().manual_seed(1))  # noise: no partial
    local = _plan(4096 * 2, [])
    fitted = fit_lpc(frame, cfg.lpc_order, cfg.lpc_method)
    hook = strike_hook(cfg, prompt, local, "anchor")
    assert torch.equal(hook(100, fitted, frame), fitted)  # inside the prompt: as fitted
    anchored = hook(4096 + 1, fitted, frame)

    def response(coeffs):  # |1 / A(f)| on 512 bins
        a = torch.cat([torch.ones(1), -coeffs[0].float()])
        return 1.0 / torch.fft.rfft(a, 1024).abs()

    # The prompt's partial at 0.05 cycles/sample (bin 51 of 1024) is where the anchored filter peaks.
    assert abs(int(response(anchored).argmax()) - 51) <= 1
    assert response(anchored)[51] > 10 * response(fitted)[51]
