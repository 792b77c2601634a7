"""Checkpoints for the hostile-input cases: real untrained models of each family, and forgeries.

A real checkpoint here is what the training loop would write at step 1 (same
keys, plain containers), built in a fraction of a second without training.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

FORMAT = "wavegen-checkpoint"


def untrained_checkpoint(path: Path, experiment: str, seed: int = 0) -> Path:
    """The debug model of ``experiment`` (e.g. ``wavenet_debug``), freshly initialised, as a checkpoint file."""
    from omegaconf import OmegaConf

    from wavegen.config import compose
    from wavegen.tasks import build_task
    from wavegen.checkpoint import seal

    cfg = compose([f"experiment={experiment}"])
    torch.manual_seed(seed)
    task = build_task(cfg)
    weights = task.model.state_dict()
    state = seal({
        "format": FORMAT,
        "family": task.family,
        "model_config": task.model_config(),
        "audio": OmegaConf.to_container(cfg.audio, resolve=True),
        "model": weights,
        "ema": copy.deepcopy(weights),
        "optimizer": {},
        "scheduler": {},
        "step": 1,
        "rng": {},
        "extra": {},
        "config": {},
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def forged(source: Path, target: Path, **changes) -> Path:
    """A copy of the checkpoint at ``source`` with top-level keys replaced (``family=``, ``version=``...)."""
    state = torch.load(source, weights_only=True)
    state.update(changes)
    torch.save(state, target)
    return target


def one_weight_changed(source: Path, target: Path) -> Path:
    """The checkpoint re-saved with one value of one weight tensor changed, its stored checksum kept."""
    state = torch.load(source, weights_only=True)
    name = sorted(state["model"])[0]
    state["model"][name].view(-1)[0] += 1e-3
    torch.save(state, target)
    return target


def tensor_byte_flipped(source: Path, target: Path) -> Path:
    """A copy with one raw byte flipped inside a weight tensor's data in the file: PyTorch loads it
    without complaint (its reader does not check the archive's CRCs)."""
    state = torch.load(source, weights_only=True)
    # The largest tensor's bytes are unique enough to find in the uncompressed archive.
    name = max(state["model"], key=lambda k: state["model"][k].numel())
    raw = state["model"][name].contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    data = bytearray(source.read_bytes())
    at = data.find(raw)
    assert at >= 0, "tensor data not found in the file"
    data[at + len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def with_model_config(source: Path, target: Path, **changes) -> Path:
    """Same weights, but a stored model config that describes another shape."""
    state = torch.load(source, weights_only=True)
    state["model_config"] = {**state["model_config"], **changes}
    torch.save(state, target)
    return target


def bare_state_dict(source: Path, target: Path) -> Path:
    """Only the weights (what ``torch.save(model.state_dict())`` gives): not a wavegen checkpoint."""
    torch.save(torch.load(source, weights_only=True)["model"], target)
    return target


class _RunsCodeWhenUnpickled:
    """An object whose unpickling would create ``marker``: a loader that executes pickles is unsafe."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def code_executing_pickle(target: Path, marker: Path) -> Path:
    """A checkpoint-shaped file that would run code if loaded without ``weights_only``."""
    torch.save({"format": FORMAT, "version": 1, "family": "wavenet", "payload": _RunsCodeWhenUnpickled(marker)},
               target)
    return target
