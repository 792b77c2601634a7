"""A training run's checkpoints: ``step_XXXXXXXX.pt`` files and ``last.pt``, and finding the newest.

The format itself (what a checkpoint holds, checksums, atomic writes, validation on
load) is :mod:`wavegen.checkpoint`; rebuilding a model from one is
:func:`wavegen.models.registry.load_model`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Optional

from wavegen.atomic import publish_link
from wavegen.checkpoint import FORMAT, VERSION, UnreadableCheckpoint, atomic_torch_save, load_checkpoint

LAST = "last.pt"
_STEP_FILE = re.compile(r"step_(\d{8})\.pt$")
# Temporary files of a writer that was killed mid-save (see atomic_torch_save and save_checkpoint).
_STALE_TEMP = re.compile(r"^\.(step_\d{8}\.pt|last\.pt)\..+\.(tmp|link)$")


def save_checkpoint(folder: str | os.PathLike, state: dict, step: int, keep: int = 2) -> Path:
    """Write ``step_XXXXXXXX.pt`` and point ``last.pt`` at it (a hard link, replaced atomically).

    Keeps the newest ``keep`` step files. Returns the step file's path.
    """
    folder = Path(folder)
    if folder.is_dir():  # only one process writes a run's checkpoints, so leftovers are a killed writer's
        for leftover in folder.iterdir():
            if _STALE_TEMP.match(leftover.name):
                leftover.unlink(missing_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state, "step": int(step)}
    step_path = folder / f"step_{step:08d}.pt"
    atomic_torch_save(state, step_path)
    try:
        publish_link(step_path, folder / LAST)
    except OSError:  # file systems without hard links: write a second copy
        atomic_torch_save(state, folder / LAST)
    steps = sorted(p for p in folder.iterdir() if _STEP_FILE.search(p.name))
    for old in steps[: max(0, len(steps) - max(1, keep))]:
        old.unlink(missing_ok=True)
    return step_path


def latest_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The newest readable checkpoint in ``folder``, or None.

    Tries the step files newest first, then ``last.pt``. A step file is complete
    before ``last.pt`` is pointed at it, so after a kill between the two the step
    file is the newer state. A file that does not load (cut short, damaged) is
    skipped with a warning line, so it never blocks a resume; one that loads but is another format or
    version raises, rather than being silently trained over.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    candidates = sorted((p for p in folder.iterdir() if _STEP_FILE.search(p.name)), reverse=True) + [folder / LAST]
    for path in candidates:
        if not path.exists():
            continue
        try:
            load_checkpoint(path)
            return path
        except UnreadableCheckpoint as exc:
            # Said out loud: a resume that quietly goes back some steps looks like lost work.
            print(f"warning: {exc}; trying an older checkpoint", file=sys.stderr, flush=True)
    return None
