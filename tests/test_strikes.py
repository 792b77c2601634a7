"""What a planned strike plays (``strike_play``): fresh noise, or the prompt's own uniforms replayed."""

from __future__ import annotations

import pytest
import torch

from conftest import random_wavenet
from test_onsets import HOP, ONSETS, SMALL, struck
from wavegen.generate.sampling import (SamplingControls, _prompt_uniforms, categorical_uniforms, class_sampler,
                                       generate_tokens, sample_categorical)
from wavegen.generate.strikes import replayed_uniforms, with_given


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8), (1.3, 0.5)])
def test_the_uniform_of_a_token_draws_that_token_again(temperature, top_p):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 32, generator=g) * 3
    tokens = sample_categorical(logits, torch.rand(400, 2, generator=g), temperature, top_p)
    noise = torch.rand(400, generator=g)
    u = categorical_uniforms(logits, tokens, noise, temperature, top_p)
    assert float(u.min()) > 0 and float(u.max()) < 1
    back = sample_categorical(logits, torch.stack([u, torch.zeros_like(u)], dim=1), temperature, top_p)
    assert torch.equal(back, tokens)


def test_a_token_outside_the_nucleus_maps_to_the_nearest_kept_class_below_it():
    logits = torch.tensor([[0.0, 9.0, 0.0, 0.0, 9.0, 0.0]])  # top-p 0.9 keeps classes 1 and 4
    for token, want in ((0, 1), (2, 1), (3, 1), (5, 4)):
        u = categorical_uniforms(logits, torch.tensor([token]), torch.tensor([0.5]), 1.0, 0.9)
        assert int(sample_categorical(logits, torch.stack([u, u], dim=1), 1.0, 0.9)) == want


def test_replayed_uniforms_are_the_prompts_at_the_loops_place_in_struck_frames_only():
    prompt_u = torch.rand(2, 10 * HOP + 5)  # 10 whole frames: the loop's period is 640 samples
    local = torch.zeros(2, 1, 40)
    local[0, 0, 12] = 0.7  # continuation frames 12 and 23 (batch 0), 30 (batch 1) are struck
    local[0, 0, 23] = 2.0
    local[1, 0, 30] = 0.5
    local[1, 0, 31] = 0.49  # below the strike level: fresh draws
    out = replayed_uniforms(prompt_u, local, HOP, 1500)
    length = prompt_u.shape[1]
    for b, frame in ((0, 12), (0, 23), (1, 30)):
        first = frame * HOP - length
        i = torch.arange(first, first + HOP)
        assert torch.equal(out[b, i], prompt_u[b, (i + length) % 640])
    assert int(torch.isfinite(out).sum()) == 3 * HOP
    fresh = torch.rand(1500, 2, 2)
    mixed = with_given(fresh, out)
    assert torch.equal(mixed[:, :, 1], fresh[:, :, 1])
    assert torch.equal(mixed[:, :, 0], torch.where(torch.isnan(out.T), fresh[:, :, 0], out.T))


def test_the_prompts_uniforms_replayed_from_silence_draw_the_prompt_again():
    """A prompt the model drew itself, read back teacher-forced into uniforms, is drawn again from them sample
    by sample from the same empty state: the uniforms are those of the distribution the sampler draws from."""
    torch.manual_seed(4)
    model = random_wavenet(**SMALL, **ONSETS)
    local = model.onsets(struck(960, [100, 500], [300.0, 450.0])[None])
    controls = SamplingControls(top_p=0.9)
    tokens = torch.cat(list(generate_tokens(model, 960, local=local, top_p=0.9, chunk_size=256,
                                            generator=torch.Generator().manual_seed(1))), dim=1)
    heard = _prompt_uniforms(model, model.init_state(1), tokens, local, None, 256, "auto", controls)
    assert heard.shape == tokens.shape
    state = model.init_state(1)
    fresh = torch.rand(960, 1, 2)
    again, _ = model.step(state, model.frame_bias(1, local), torch.arange(960) // HOP, with_given(fresh, heard),
                          sampler=class_sampler(model.head, controls))
    assert torch.equal(again, tokens)


def test_a_continuation_that_replays_its_strikes_differs_from_one_that_does_not_only_after_a_strike():
    torch.manual_seed(2)
    model = random_wavenet(**SMALL, **ONSETS)
    audio = struck(1280, [100, 700], [300.0, 450.0])[None]
    tokens = model.head.encode(audio)
    local = torch.zeros(1, 1, 2560 // HOP)
    local[..., : 1280 // HOP] = model.onsets(audio)[..., : 1280 // HOP]
    local[0, 0, 30] = 1.5  # one strike after the prompt, at sample 1920

    def run(play):
        return torch.cat(list(generate_tokens(model, 1280, prompt_tokens=tokens, local=local, top_p=0.95,
                                              generator=torch.Generator().manual_seed(5), strike_play=play)), dim=1)

    noise, replay = run("noise"), run("prompt")
    assert torch.equal(noise[:, : 1920 - 1280], replay[:, : 1920 - 1280])
    assert not torch.equal(noise[:, 1920 - 1280 :], replay[:, 1920 - 1280 :])


def test_strike_play_is_checked():
    model = random_wavenet(**SMALL, **ONSETS)
    with pytest.raises(ValueError, match="noise, prompt"):
        next(generate_tokens(model, 10, strike_play="notes"))
    with pytest.raises(ValueError, match="needs a prompt and planned onsets"):
        next(generate_tokens(model, 10, strike_play="prompt"))
