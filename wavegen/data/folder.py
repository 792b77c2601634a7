"""Any folder of audio files as a dataset, split deterministically by file path.

Each file's relative path is hashed to a number in [0, 1); files below
``validation_fraction`` go to validation. Adding or removing other files never
moves a file between splits, which a random shuffle could not promise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from wavegen.audio.io import AUDIO_EXTENSIONS, audio_info
from wavegen.data.files import expand_path
from wavegen.data.items import AudioItem, assign_file_ids
from wavegen.errors import WavegenError


def list_audio_files(root: Path) -> list[Path]:
    """All files under ``root`` (recursive) with an audio extension, sorted; hidden files skipped."""
    if not root.exists():
        raise WavegenError(f"audio folder not found: {root}")
    if not root.is_dir():
        raise WavegenError(f"expected a folder of audio files, got a file: {root}")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise WavegenError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in {root}")
    return files


def split_fraction(relative_path: str) -> float:
    """A stable number in [0, 1) for a path (sha1, so identical on every machine and run)."""
    digest = hashlib.sha1(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(relative_paths: list[str], validation_fraction: float) -> dict[str, str]:
    """{relative path: 'train' | 'validation'} by hashing; at least one validation file when there are two or more."""
    splits = {
        rel: "validation" if split_fraction(rel) < validation_fraction else "train" for rel in relative_paths
    }
    if validation_fraction > 0 and len(relative_paths) >= 2:
        if "validation" not in splits.values():
            splits[min(relative_paths, key=split_fraction)] = "validation"
        if "train" not in splits.values():
            splits[max(relative_paths, key=split_fraction)] = "train"
    return splits


def load_folder(data_cfg: Mapping[str, Any], read_headers: bool = True) -> list[AudioItem]:
    """Items for every audio file under ``data.root``.

    With ``read_headers`` (training), each file's header is read for its
    duration and an unreadable file is an error; ``wavegen data check`` turns
    it off and inspects the files itself.
    """
    root = expand_path(data_cfg["root"])
    fraction = float(data_cfg.get("validation_fraction", 0.1))
    if not 0.0 <= fraction < 1.0:
        raise WavegenError(f"data.validation_fraction must be in [0, 1), got {fraction}")
    files = list_audio_files(root)
    rels = [p.relative_to(root).as_posix() for p in files]
    splits = assign_splits(rels, fraction)
    items = []
    for path, rel in zip(files, rels):
        duration = 0.0
        if read_headers:
            try:
                duration = audio_info(path).duration
            except WavegenError as exc:
                raise WavegenError(f"{exc} (run `wavegen data check {root}` to list every problem)") from None
        # One file is one piece: a folder has no better notion of what belongs together.
        items.append(AudioItem(path=path, piece=rel, split=splits[rel], duration=duration))
    return assign_file_ids(items)
