"""What a planned strike rings: the predictor a model told onsets uses where it strikes after its prompt.

A strike of an ``lpc_mol`` model (:mod:`wavegen.generate.onsets`) is a wide burst of residual through
the backward-adaptive predictor, so it rings every partial that predictor holds, the faint ones too: on
simple chords the continuation gains pitch classes (``docs/ar_study/README.md`` sections 9-11). Here the
predictor of the blocks where the plan strikes is taken from the prompt instead (``STRIKE_FILTERS``):

- ``none``: the backward-adaptive fit, as everywhere else (the model as trained);
- ``prompt``: one order-p fit (the model's own method) over the whole prompt: a strike rings the
  prompt's partials as strongly as the prompt held them;
- ``loop``: the fit over the prompt's ``lpc_window`` samples from the place the ``loop`` plan repeats
  there: a repeated strike rings the notes the prompt struck at that place;
- ``partials``: the block's own fitting frame plus a sum of the prompt's :data:`PARTIALS` strongest spectral
  peaks (at their relative levels, the sum's RMS :data:`EMPHASIS` times the frame's), fitted together: the
  predictor as trained, with poles pulled to the prompt's strongest partials;
- ``anchor``: the same in every block after the prompt, struck or not.

Only the coefficients change, for the blocks (``lpc_refit`` samples) in which a planned frame reaches
:data:`STRIKE_LEVEL`; the logistic's scale is the fit's, and every other block is fitted as trained.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from wavegen.nn.lpc import fit_lpc

STRIKE_FILTERS = ("none", "prompt", "loop", "partials", "anchor")
# A planned frame this strong is a strike: the level at which onsets.STRIKE's median profile begins.
STRIKE_LEVEL = 0.5
PARTIALS = 8  # the prompt's strongest spectral peaks
EMPHASIS = 1.0  # their sum's RMS against the fitting frame's


def _strongest_partials(prompt: Tensor, rate: int) -> tuple[Tensor, Tensor, Tensor]:
    """Tensor[B, P] -> (frequency in cycles/sample, amplitude, phase), each Tensor[B, PARTIALS]: the prompt's
    strongest local maxima (±3 bins) of its last 8192 samples' Hann-windowed spectrum, above 50 Hz."""
    x = prompt[:, -8192:].double()
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=torch.float64)).abs()
    pooled = torch.nn.functional.max_pool1d(spectrum[:, None], 7, 1, 3)[:, 0]
    peaks = torch.where((spectrum >= pooled) & (torch.arange(spectrum.shape[-1]) * rate / x.shape[-1] > 50),
                        spectrum, torch.zeros_like(spectrum))
    amps, bins = peaks.topk(PARTIALS, dim=-1)
    phases = torch.rand(amps.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 * torch.pi
    return bins.double() / x.shape[-1], amps / amps[:, :1].clamp_min(1e-12), phases


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

    partials = _strongest_partials(prompt, cfg.sample_rate if hasattr(cfg, "sample_rate") else 16000) \
        if mode in ("partials", "anchor") else None

    def emphasised(frame: Tensor) -> Tensor:
        frame = frame.detach().double()
        n = torch.arange(frame.shape[-1], dtype=torch.float64)
        freqs, amps, phases = partials
        tone = (amps[:, :, None] * torch.sin(2 * torch.pi * freqs[:, :, None] * n + phases[:, :, None])).sum(1)
        gain = EMPHASIS * frame.pow(2).mean(-1).sqrt() / tone.pow(2).mean(-1).sqrt().clamp_min(1e-12)
        return fit_lpc((frame + gain[:, None] * tone).float(), order, cfg.lpc_method)

    def shape(start: int, fitted: Tensor, frame: Tensor) -> Tensor:
        # The predictor's sample `start` is the model's token `start - 1`: it reads the silence before
        # the first token as its sample 0.
        first = start - 1
        if first < length:
            return fitted
        if mode == "anchor":
            return emphasised(frame).to(fitted)
        frames = strength[:, first // hop : (first + refit - 1) // hop + 1]
        if frames.shape[-1] == 0:
            return fitted
        struck = frames.amax(-1) >= STRIKE_LEVEL  # [B]
        if not bool(struck.any()):
            return fitted
        chosen = emphasised(frame).to(fitted) if mode == "partials" else from_prompt(first).to(fitted)
        return torch.where(struck[:, None], chosen, fitted)

    return shape
