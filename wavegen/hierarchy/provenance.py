"""Which weights defined a level's codes: a fingerprint of the weights alone.

Every model above level 1 records the fingerprint of the model whose codes it was
trained on, and ``wavegen generate`` refuses a mix of levels from different
hierarchies. The fingerprint hashes the state dict's tensors only (not the config
object), so it survives code changes that add a config option with a default,
while any retraining changes it. Levels and hops are checked separately.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

# Buffers that steer training but do not change what a code means.
_IGNORED_PREFIXES = ("controller.",)


def weights_fingerprint(model: nn.Module) -> str:
    """32 hex digits identifying ``model``'s weights (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(_IGNORED_PREFIXES):
            continue
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]
