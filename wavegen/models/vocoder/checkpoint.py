"""Vocoder checkpoints: loading the model, and the schedules stored beside its weights.

Schedules live in ``extra["vocoder"]`` of a standard wavegen checkpoint::

    {"schedules": {"6": [β_1, ..., β_6], "2": [...]},   # keyed by step count
     "default_steps": 6,                                # what `wavegen vocode` uses
     "search": {"6": {"score": ..., "start_score": ..., ...}},
     "distilled": {...}}                                # only in a distilled student

The container is the standard format of :mod:`wavegen.checkpoint`, which these functions
read and write through; rewrites go through its :func:`~wavegen.checkpoint.atomic_torch_save`,
so an interrupted update leaves the old file.
"""

from __future__ import annotations

import os
from typing import Optional

import torch

from wavegen.checkpoint import FORMAT, VERSION, atomic_torch_save, load_checkpoint
from wavegen.diffusion.schedules import NoiseSchedule, default_schedule
from wavegen.errors import WavegenError
from wavegen.models.registry import load_model

FAMILY = "vocoder"
EXTRA_KEY = "vocoder"


def load_vocoder(path: str | os.PathLike, device: str = "cpu", use_ema: bool = True):
    """-> (vocoder in eval mode, checkpoint dict); other families get a one-line error."""
    model, ckpt = load_model(path, family=FAMILY, use_ema=use_ema, device=device)
    return model, ckpt


def vocoder_extra(ckpt: dict) -> dict:
    return dict((ckpt.get("extra") or {}).get(EXTRA_KEY) or {})


def stored_schedule(ckpt: dict, steps: Optional[int] = None) -> NoiseSchedule:
    """The schedule a checkpoint asks for: the stored one for ``steps`` (default: its
    ``default_steps``), else :func:`default_schedule`."""
    info = vocoder_extra(ckpt)
    if steps is None:
        steps = int(info.get("default_steps", 6))
    betas = (info.get("schedules") or {}).get(str(steps))
    return NoiseSchedule(tuple(betas)) if betas else default_schedule(steps)


def stored_mel_projection(ckpt: dict) -> int:
    """How many mel-projection iterations finish this checkpoint's sampling (0 when none is stored)."""
    return int(vocoder_extra(ckpt).get("mel_projection", 0))


def update_vocoder_extra(path: str | os.PathLike, update: dict) -> dict:
    """Merge ``update`` into ``extra["vocoder"]`` of the checkpoint at ``path`` (atomic rewrite)."""
    ckpt = load_checkpoint(path, family=FAMILY)
    info = vocoder_extra(ckpt)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(info.get(key), dict):
            info[key] = {**info[key], **value}
        else:
            info[key] = value
    ckpt["extra"] = {**(ckpt.get("extra") or {}), EXTRA_KEY: info}
    atomic_torch_save(ckpt, path)
    return ckpt


def store_schedule(path: str | os.PathLike, schedule: NoiseSchedule, make_default: bool = True,
                   search_info: Optional[dict] = None) -> dict:
    """Store ``schedule`` under its step count (and make it the default) in the checkpoint at ``path``."""
    key = str(len(schedule))
    update: dict = {"schedules": {key: schedule.to_list()}}
    if make_default:
        update["default_steps"] = len(schedule)
    if search_info is not None:
        update["search"] = {key: search_info}
    return update_vocoder_extra(path, update)


def save_student(path: str | os.PathLike, teacher_ckpt: dict, student: torch.nn.Module, schedule: NoiseSchedule,
                 info: dict, overwrite: bool = False) -> None:
    """Write a distilled student as its own checkpoint (same family and audio as the teacher)."""
    if os.path.exists(path) and not overwrite:
        raise WavegenError(f"output file already exists: {path} (pass --overwrite to replace it)")
    weights = {k: v.detach().cpu().clone() for k, v in student.state_dict().items()}
    extra_info = {
        "schedules": {str(len(schedule)): schedule.to_list()},
        "default_steps": len(schedule),
        "mel_projection": stored_mel_projection(teacher_ckpt),
        "distilled": info,
    }
    state = {
        "format": FORMAT,
        "version": VERSION,
        "family": FAMILY,
        "model_config": teacher_ckpt["model_config"],
        "audio": teacher_ckpt["audio"],
        "model": weights,
        "ema": weights,
        "step": int(info.get("steps_trained", 0)),
        "extra": {EXTRA_KEY: extra_info},
        "config": teacher_ckpt.get("config", {}),
    }
    atomic_torch_save(state, path)
