"""Hierarchies with random weights, for tests and speed benchmarks (no training needed).

``build_random_hierarchy(folder, size)`` composes each level's model config of a size
(``debug``, ``tiny`` or ``base``), builds it with random weights and writes a checkpoint per level,
exactly as the training loop would (same format, fingerprints linking the levels).
Sampling speed does not depend on what the weights learnt, so real-time factors
measured on these hold for trained models of the same size.
"""

from __future__ import annotations

from pathlib import Path

import torch

# level name -> (model config, extra overrides) per size
_MODELS = {
    "debug": {
        "level1": ("autoencoder/debug", []),
        "level2": ("prior/level2_debug", []),
        "prior": ("prior/debug", ["model.hop=64"]),  # 16 (level-1 hop) x 4 (stride)
        "codes_to_mel": ("codes_to_mel/debug", []),
        "vocoder": ("vocoder/debug", []),
    },
    "tiny": {
        "level1": ("autoencoder/tiny", ["model.levels=[5,5,5]"]),
        "level2": ("prior/level2_tiny", []),
        "prior": ("prior/tiny", []),
        "codes_to_mel": ("codes_to_mel/tiny", []),
        "vocoder": ("vocoder/debug", []),
    },
    "base": {
        "level1": ("autoencoder/base", ["model.levels=[5,5,5]"]),
        "level2": ("prior/level2_base", []),
        "prior": ("prior/base", []),
        "codes_to_mel": ("codes_to_mel/base", []),
        "vocoder": ("vocoder/small", []),
    },
}


def build_random_hierarchy(folder, size: str = "debug", seed: int = 0) -> dict[str, Path]:
    """Write ``folder/<level>.pt`` for every level; returns {level: checkpoint path}."""
    from wavegen.checkpoint import FORMAT, VERSION, atomic_torch_save
    from wavegen.config import compose, to_container
    from wavegen.hierarchy.provenance import weights_fingerprint
    from wavegen.models.registry import build_model

    folder = Path(folder)
    torch.manual_seed(seed)
    paths, fingerprints = {}, {}
    for level in ("level1", "level2", "prior", "codes_to_mel", "vocoder"):
        name, extra = _MODELS[size][level]
        cfg = compose([f"model={name}", *extra])
        container = to_container(cfg)
        family = container["model"]["family"]
        model_config = {k: v for k, v in container["model"].items() if k != "name"}
        model = build_model(family, model_config)
        # The fingerprint of the codes each level reads (what the training tasks record).
        reads = {"level2": "level1", "prior": "level2", "codes_to_mel": "level1"}.get(level)
        if reads:
            model_config["codes_fingerprint"] = fingerprints[reads]
        fingerprints[level] = weights_fingerprint(model)
        state = {"format": FORMAT, "version": VERSION, "family": family, "model_config": model_config,
                 "audio": container["audio"], "model": model.state_dict(), "ema": model.state_dict(),
                 "optimizer": {}, "scheduler": {}, "step": 0, "rng": {}, "extra": {}, "config": container}
        paths[level] = folder / f"{level}.pt"
        atomic_torch_save(state, paths[level])
    return paths
