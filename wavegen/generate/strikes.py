"""What a planned strike rings: the predictor a model told onsets uses where it strikes after its prompt.

A strike of an ``lpc_mol`` model (:mod:`wavegen.generate.onsets`) is a wide burst of residual through
the backward-adaptive predictor, so it rings every partial that predictor holds, the faint ones too: on
simple chords the continuation gains pitch classes (``docs/ar_study/README.md`` sections 9-11). Here the
predictor of the blocks where the plan strikes is taken from the prompt instead (``STRIKE_FILTERS``):

- ``none``: the backward-adaptive fit, as everywhere else (the model as trained);
- ``prompt``: one order-p fit (the model's own method) over the whole prompt: a strike rings the
  prompt's partials as strongly as the prompt held them;
- ``loop``: the fit over the prompt's ``lpc_window`` samples from the place the ``loop`` plan repeats
  there: a repeated strike rings the notes the prompt struck at that place.

Only the coefficients change, for the blocks (``lpc_refit`` samples) in which a planned frame reaches
:data:`STRIKE_LEVEL`; the logistic's scale is the fit's, and every other block is fitted as trained.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from wavegen.nn.lpc import fit_lpc

STRIKE_FILTERS = ("none", "prompt", "loop")
# A planned frame this strong is a strike: the level at which onsets.STRIKE's median profile begins.
STRIKE_LEVEL = 0.5


def check_strike_filter(mode: str) -> str:
    """The mode's name, or a ValueError (one line) naming the choices."""
    if mode not in STRIKE_FILTERS:
        raise ValueError(f"strike filter must be one of {', '.join(STRIKE_FILTERS)}; got {mode!r}")
    return mode


def strike_hook(cfg, prompt: Tensor, local: Tensor, mode: str) -> Optional[Callable[[int, Tensor], Tensor]]:
    """The :attr:`~wavegen.nn.lpc.LPCState.shape` hook for ``mode``, or None for ``none``.

    cfg: the model's config (``lpc_order``, ``lpc_window``, ``lpc_refit``, ``lpc_method``, ``local_hop``);
    prompt: Tensor[B, P] the prompt's audio; local: Tensor[B, C, F] the onsets told over prompt and
    continuation (channel 0 the strength).
    """
    if check_strike_filter(mode) == "none":
        return None
    prompt = prompt.detach().float()
    length = prompt.shape[-1]
    order, window, refit, hop = cfg.lpc_order, cfg.lpc_window, cfg.lpc_refit, cfg.local_hop
    strength = local[:, 0].detach().float()
    period = (length // hop) * hop  # the loop plan repeats the prompt's whole frames
    whole = fit_lpc(prompt, order, cfg.lpc_method) if mode == "prompt" else None
    fits: dict[int, Tensor] = {}

    def from_prompt(first: int) -> Tensor:
        if whole is not None:
            return whole
        place = min((first - period) % period, max(0, length - window)) if period else 0
        if place not in fits:
            fits[place] = fit_lpc(prompt[:, place : place + window], order, cfg.lpc_method)
        return fits[place]

    def shape(start: int, fitted: Tensor) -> Tensor:
        # The predictor's sample `start` is the model's token `start - 1`: it reads the silence before
        # the first token as its sample 0.
        first = start - 1
        if first < length:
            return fitted
        frames = strength[:, first // hop : (first + refit - 1) // hop + 1]
        if frames.shape[-1] == 0:
            return fitted
        struck = frames.amax(-1) >= STRIKE_LEVEL  # [B]
        if not bool(struck.any()):
            return fitted
        return torch.where(struck[:, None], from_prompt(first).to(fitted), fitted)

    return shape
