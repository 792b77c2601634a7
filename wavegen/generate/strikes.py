"""What a planned strike plays after the prompt: fresh noise, or the prompt's own strike replayed.

A model told onsets (:mod:`wavegen.generate.onsets`) strikes where the ``loop`` plan repeats the
prompt's onsets. Every sample is drawn from the model's distribution by inverse CDF of a uniform
(:mod:`wavegen.generate.sampling`), so what a strike sounds like is set by two things: the
distribution (the predictor's filter and the network's widened logistic) and the uniforms. With
fresh uniforms (``noise``) a strike is a white burst through the predictor's filter, and it rings
every partial the filter holds, the faint ones too (``docs/ar_study/README.md`` sections 9-13).

``prompt`` replays, in the struck frames, the uniforms the prompt itself would have been drawn with at
the place the loop repeats: each prompt sample's probability integral transform under the model,
teacher-forced (the mass below its class plus a random share of its own). A real strike's residual
against the predictor is not white: it is the new notes' waveform, which the filter did not hold yet.
Drawn again through the model's distribution at the same quantiles, the burst has that shape, so the
strike plays the notes the prompt struck there rather than noise. It is still a draw from the model:
the level, the filter and the logistic's width are the continuation's own, and every other sample
takes fresh uniforms. A frame counts as struck when its planned onset strength reaches
:data:`STRIKE_LEVEL`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

STRIKE_PLAYS = ("noise", "prompt")
# A planned frame this strong is a strike: where the median onset profile (onsets.STRIKE) begins.
STRIKE_LEVEL = 0.5


def check_strike_play(play: str) -> str:
    """The name, or a ValueError (one line) naming the choices."""
    if play not in STRIKE_PLAYS:
        raise ValueError(f"strike play must be one of {', '.join(STRIKE_PLAYS)}; got {play!r}")
    return play


def replayed_uniforms(prompt_uniforms: Tensor, local: Tensor, hop: int, samples: int,
                      level: float = STRIKE_LEVEL) -> Tensor:
    """The uniforms of the ``samples`` after the prompt, Tensor[B, samples]: NaN (a fresh draw) except in
    the frames the plan strikes, where they are those of the prompt at the place the loop repeats.

    prompt_uniforms: Tensor[B, P], each prompt sample's uniform (:func:`wavegen.generate.sampling.
    categorical_uniforms`); local: Tensor[B, C, F], the planned onsets over prompt and continuation
    (channel 0 the strength), F >= ceil((P + samples) / hop). The ``loop`` plan repeats the prompt's
    whole frames, P // hop of them, so continuation sample ``P + i`` repeats prompt sample
    ``(P + i) mod (P // hop · hop)``.
    """
    batch, length = prompt_uniforms.shape
    period = (length // hop) * hop
    out = torch.full((batch, samples), float("nan"), dtype=prompt_uniforms.dtype, device=prompt_uniforms.device)
    if period == 0 or samples == 0:
        return out
    absolute = torch.arange(length, length + samples, device=prompt_uniforms.device)
    struck = local[:, 0, absolute // hop] >= level  # [B, samples]
    source = prompt_uniforms[:, absolute % period]
    return torch.where(struck, source, out)


def with_given(uniforms: Tensor, given: Optional[Tensor]) -> Tensor:
    """uniforms: Tensor[n, B, 2] fresh draws; given: Tensor[B, n] (NaN: keep the fresh one) or None ->
    Tensor[n, B, 2] with the given values in column 0, the one a class-probability sampler reads."""
    if given is None:
        return uniforms
    first = given.T.to(uniforms.dtype)
    uniforms = uniforms.clone()
    uniforms[:, :, 0] = torch.where(torch.isnan(first), uniforms[:, :, 0], first)
    return uniforms
