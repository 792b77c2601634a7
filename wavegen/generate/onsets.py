"""Where a model told onsets (``local_source: onsets``) strikes notes after its prompt.

Such a model (:mod:`wavegen.models.wavenet`, feature :mod:`wavegen.nn.onsets`) reads one onset
strength per ``local_hop`` samples, for the prompt and for everything it generates. The prompt's
frames are the prompt's own onsets; those after it are a plan (``ONSET_PLANS``):

- ``loop``: the prompt's onsets repeated, one prompt length after another: its rhythm carried on.
  The prompt's first blocks, where its audio rises out of the silence before it, count as a strike
  too, so each repeat also strikes where the prompt began. On tuning prompts (unseen pieces on the
  training pianos, ``benchmarks/simple_harmony_probe.py --source tuning``) piano-tiny met every
  target on 24 of 24 prompts this way, 13 of 16 with ``none``, and 22 of 24 before it was told onsets
  (``docs/ar_study/README.md`` section 9).
- ``none``: no strike after the prompt; the continuation rings down what the prompt struck, as a
  model without onsets does.

Without a prompt there is no rhythm to carry on: ``loop`` then strikes a steady pulse, every
:data:`PULSE_SECONDS`, each strike the median onset of the training pieces (:data:`STRIKE`). A model
told no onset never starts a sound out of silence: it learnt that sound begins where onsets are.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

ONSET_PLANS = ("loop", "none")
# The median onset-strength profile around where it first exceeds 0.5, over 1,788 onsets of the embedded
# set's first 20 training recordings (hop 64, from the block that crosses on): a struck chord's first 7 blocks.
STRIKE = (0.8, 1.4, 1.4, 1.0, 0.6, 0.4, 0.2)
PULSE_SECONDS = 0.5


def needs_onsets(model) -> bool:
    """Whether a WaveNet (or anything with its ``cfg``) is told where notes are struck."""
    return getattr(model.cfg, "local_source", "given") in ("onsets", "onsets_chroma")


def check_plan(plan: str) -> None:
    """Refuse an unknown plan (ValueError, one line), whatever the model: a typo is never ignored."""
    if plan not in ONSET_PLANS:
        raise ValueError(f"onsets must be one of {', '.join(ONSET_PLANS)}; got {plan!r}")


def onset_plan(model, prompt: Optional[Tensor], batch: int, samples: int, plan: str = "loop",
               sample_rate: int = 16000) -> Optional[Tensor]:
    """Tensor[B, P] prompt audio (or None) -> Tensor[B, C, F]: the onsets ``model`` reads over the prompt
    and the ``samples`` after it, F = ceil((P + samples) / local_hop); None for a model not told onsets
    (the plan is checked all the same)."""
    check_plan(plan)
    if not needs_onsets(model):
        return None
    hop = model.cfg.local_hop
    length = (0 if prompt is None else prompt.shape[-1]) + samples
    device = next(model.parameters()).device
    local = torch.zeros(batch, model.cfg.local_channels, -(-length // hop), device=device)
    if prompt is None:
        if plan == "loop":
            strike = torch.tensor(STRIKE, device=device)
            period = max(1, round(PULSE_SECONDS * sample_rate / hop))
            for start in range(0, local.shape[-1], period):
                part = local[:, 0, start : start + len(STRIKE)]  # strength only: no pitch is told
                part += strike[: part.shape[-1]]
        return local
    known = prompt.shape[-1] // hop  # frames wholly inside the prompt; the one it ends in is planned
    heard = model.onsets(prompt.to(device).float())[..., :known]
    local[..., :known] = heard
    if plan == "loop" and known:
        rest = local.shape[-1] - known
        local[..., known:] = heard.repeat(1, 1, -(-rest // known))[..., :rest]
    return local
