"""The unit every dataset hands out: one audio file with its split and duration."""

from __future__ import annotations

from dataclasses import dataclass, asdict
from pathlib import Path

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class AudioItem:
    """One source audio file of a dataset.

    ``piece`` names the composition or recording (datasets split by piece so no
    piece is in two splits); ``file_id`` is a small integer, unique across all
    splits of the dataset and stable for a given dataset, that models use for
    global (per-recording) conditioning.
    """

    path: Path
    piece: str
    split: str
    duration: float  # seconds
    file_id: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


Dataset = dict[str, list[AudioItem]]


def assign_file_ids(items: list[AudioItem]) -> list[AudioItem]:
    """Number items 0..N-1 in (split order, path) order, so ids do not depend on listing order."""
    order = {name: i for i, name in enumerate(SPLITS)}
    ranked = sorted(items, key=lambda it: (order.get(it.split, len(order)), str(it.path)))
    return [
        AudioItem(path=it.path, piece=it.piece, split=it.split, duration=it.duration, file_id=i)
        for i, it in enumerate(ranked)
    ]


def group_by_split(items: list[AudioItem]) -> Dataset:
    """{split: items} with every known split present (possibly empty), items sorted by file_id."""
    out: Dataset = {name: [] for name in SPLITS}
    for it in sorted(items, key=lambda it: it.file_id):
        out.setdefault(it.split, []).append(it)
    return out


def num_files(dataset: Dataset) -> int:
    """How many file ids the dataset uses (the size of a per-file embedding table)."""
    ids = [it.file_id for items in dataset.values() for it in items]
    return max(ids) + 1 if ids else 0


def summary_lines(dataset: Dataset, name: str = "dataset") -> list[str]:
    """Human-readable counts and durations per split."""
    total_files = sum(len(v) for v in dataset.values())
    total_seconds = sum(it.duration for v in dataset.values() for it in v)
    lines = [f"{name}: {total_files} files, {format_duration(total_seconds)}"]
    for split, items in dataset.items():
        if items:
            pieces = len({it.piece for it in items})
            seconds = sum(it.duration for it in items)
            lines.append(f"  {split:<10} {len(items):>5} files {pieces:>5} pieces  {format_duration(seconds)}")
    return lines


def format_duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
