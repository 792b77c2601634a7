"""A frozen level-1 autoencoder for tasks that learn from its codes (codes -> mel, level 2 on audio)."""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from wavegen.errors import WavegenError


def load_frozen_autoencoder(path: Optional[str], levels: Sequence[int], hop: int, missing: str) -> nn.Module:
    """Load the autoencoder checkpoint at ``path`` without gradients, checking its codes' levels and hop.

    ``missing`` is the one-line error for a run config that names no checkpoint.
    """
    from wavegen.models.registry import load_model

    if not path:
        raise WavegenError(missing)
    model, _ = load_model(path, family="autoencoder")
    if (list(model.levels), model.hop) != (list(levels), hop):
        raise WavegenError(f"{path} has levels {model.levels} at hop {model.hop}; set model.levels and "
                           "model.hop to match")
    for p in model.parameters():
        p.requires_grad_(False)
    return model
