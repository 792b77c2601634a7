"""The checkpoint format: plain containers only, written atomically, validated on load.

This module is the one owner of the format; it imports nothing of wavegen but the base
modules, so every layer can read and write checkpoints (models load them, training
writes them, the export tool re-seals them). Which model a family name builds lives
with the models (:mod:`wavegen.models.registry`); a training run's folder of step files
and ``last.pt`` lives with training (:mod:`wavegen.train.checkpoint`).

A checkpoint is a dict that ``torch.load(weights_only=True)`` can read::

    {"format": "wavegen-checkpoint", "version": 2, "family": str, "model_config": dict,
     "audio": dict, "model": state_dict, "ema": state_dict, "optimizer": ..., "scheduler": ...,
     "step": int, "rng": dict, "extra": dict, "config": dict,
     "checksums": {"model": sha256 hex, "ema": sha256 hex}}

``config`` is the composed training config; its optional ``sampling`` block is the model's
default sampling settings (:func:`sampling_defaults`), so a training checkpoint samples the
way its experiment says without a second copy of them.

Writes go to a temporary file in the same folder, are fsynced and renamed over
the target, so a kill at any moment leaves either the old or the new file.

Checksums (version 2): every checkpoint written through :func:`atomic_torch_save`
carries a SHA-256 of its model (and EMA) weights, computed by :func:`weights_digest`
over each tensor's name, dtype, shape and raw bytes in sorted-name order, so the
digest does not depend on how pickling lays the file out. Loading recomputes it
and refuses a mismatch: PyTorch's own reader does not notice a changed byte
inside a tensor, and a shipped model that silently plays wrong notes is worse
than one that refuses to load.

Version-1 files (written before checksums) still load, with one warning line per
file, because runs in progress must keep resuming; the next save of such a run
writes version 2.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Optional

import torch

from wavegen.atomic import atomic_write
from wavegen.errors import WavegenError

FORMAT = "wavegen-checkpoint"
VERSION = 2
# Versions this wavegen reads: 1 has no checksums (see the module docstring).
READABLE_VERSIONS = (1, 2)
# The weight blocks a checksum covers.
_WEIGHT_KEYS = ("model", "ema")


class UnreadableCheckpoint(WavegenError):
    """The file does not load at all (cut short, damaged): an older checkpoint may stand in for it."""


class DamagedCheckpoint(UnreadableCheckpoint):
    """The file loads but its weights do not match their checksum."""


# Version-1 files already warned about in this process (one warning line per file).
_WARNED_UNVERIFIED: set[str] = set()


def weights_digest(state_dict: dict) -> str:
    """SHA-256 (hex) of a state dict: for each entry in sorted-name order, its name,
    dtype, shape and raw little-endian bytes. Independent of pickling and of the
    device the tensors live on; any changed value, name, dtype or shape changes it."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        digest.update(name.encode("utf-8") + b"\0")
        if torch.is_tensor(value):
            tensor = value.detach().to("cpu").contiguous()
            digest.update(f"{tensor.dtype}|{tuple(tensor.shape)}\0".encode())
            # Viewed as bytes so every dtype (bf16 included) hashes without a numpy round trip.
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:  # non-tensor entries (rare: extra state) by their repr
            digest.update(f"{type(value).__name__}|{value!r}\0".encode())
    return digest.hexdigest()


def seal(state: dict) -> dict:
    """A copy of checkpoint ``state`` stamped with the current version and its weights' checksums."""
    sums = {key: weights_digest(state[key]) for key in _WEIGHT_KEYS if isinstance(state.get(key), dict)}
    return {**state, "version": VERSION, "checksums": sums}


def _verify(path: Path, state: dict) -> None:
    """Refuse weights that differ from their checksum; warn once about a version-1 file (no checksums)."""
    if state.get("version") == 1:
        if str(path) not in _WARNED_UNVERIFIED:
            _WARNED_UNVERIFIED.add(str(path))
            print(f"warning: {path} is a version-1 checkpoint without weight checksums, so it loads unverified "
                  "(checkpoints written from now on carry them)", file=sys.stderr, flush=True)
        return
    sums = state.get("checksums")
    if not isinstance(sums, dict) or "model" not in sums:
        raise DamagedCheckpoint(f"{path}: the weights have no checksum (the file is damaged or was edited)")
    for key in _WEIGHT_KEYS:
        if key in sums or isinstance(state.get(key), dict):
            if not isinstance(state.get(key), dict) or weights_digest(state[key]) != sums.get(key):
                raise DamagedCheckpoint(f"{path}: the weights do not match their checksum "
                                        "(the file is damaged or was edited)")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a partial file at ``path``.

    A wavegen checkpoint dict is :func:`seal`-ed on the way out, so every writer
    (training, schedule search, distillation, export) stores current checksums.
    """
    path = Path(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = seal(obj)
    atomic_write(path, lambda f: torch.save(obj, f))


def _a(family) -> str:
    """``'wavenet'`` -> "a 'wavenet'", ``'autoencoder'`` -> "an 'autoencoder'"."""
    return f"{'an' if str(family)[:1].lower() in 'aeiou' else 'a'} {family!r}"


def _read(path: Path) -> dict:
    if not path.exists():
        raise WavegenError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise WavegenError(f"{path} is a folder; pass a checkpoint file (e.g. {path}/checkpoints/last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnreadableCheckpoint(_why_unreadable(path, exc)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WavegenError(f"{path} is not a wavegen checkpoint")
    if state.get("version") not in READABLE_VERSIONS:
        raise WavegenError(f"{path} has checkpoint format version {state.get('version')}; this wavegen reads "
                           f"versions {', '.join(map(str, READABLE_VERSIONS))} (a newer wavegen wrote it?)")
    if not isinstance(state.get("model"), dict):
        raise WavegenError(f"{path} is not a usable wavegen checkpoint: it holds no model weights")
    _verify(path, state)
    return state


def _why_unreadable(path: Path, exc: Exception) -> str:
    """One whole sentence for a file ``torch.load`` refused (its own messages run on, or are a bare KeyError)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return f"{path} cannot be read ({err.strerror or type(err).__name__})"
    if not head:
        return f"{path} is not a readable wavegen checkpoint: the file is empty"
    if head.startswith(b"PK"):  # a zip archive, torch.save's format since PyTorch 1.6
        if "weights only" in str(exc).lower():
            return (f"{path} is not a readable wavegen checkpoint: it holds Python objects besides tensors "
                    "and plain containers")
        return f"{path} is not a readable wavegen checkpoint: the file is damaged or cut short"
    return f"{path} is not a readable wavegen checkpoint: it is not a PyTorch file (text or another format?)"


def load_checkpoint(
    path: str | os.PathLike, family: Optional[str | tuple[str, ...]] = None, audio: Optional[dict] = None
) -> dict:
    """Read and validate a checkpoint.

    family: the model family (or families) the caller can use; another family is refused.
    audio: the caller's audio config; a checkpoint trained under different constants is refused.
    """
    path = Path(path)
    state = _read(path)
    families = (family,) if isinstance(family, str) else family
    if families and state.get("family") not in families:
        raise WavegenError(
            f"{path} holds {_a(state.get('family'))} model; this command needs {' or '.join(map(repr, families))}"
        )
    if audio is not None:
        stored = state.get("audio", {})
        diffs = [f"{k}={stored.get(k)!r} (expected {v!r})" for k, v in audio.items() if k in stored and stored[k] != v]
        if diffs:
            raise WavegenError(f"{path} was trained with other audio settings: {', '.join(diffs)}")
    return state


def sampling_defaults(state: dict) -> dict:
    """The default sampling settings a checkpoint's training config names (its ``sampling`` block,
    e.g. ``{"top_p": 0.97}``); ``{}`` for a checkpoint without one (trained before the block
    existed, or an exported weight file, whose defaults live in the registry): plain sampling.
    The block was checked when training started (:func:`wavegen.generate.sampling.checked_defaults`)."""
    block = (state.get("config") or {}).get("sampling") or {}
    return {key: value for key, value in block.items() if value is not None}
