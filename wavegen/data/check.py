"""Inspect every file of a dataset: is it readable, how long, how silent, does it clip?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from wavegen.audio.io import read_audio_frames
from wavegen.data.items import AudioItem, format_duration
from wavegen.errors import WavegenError

SILENCE_DBFS = -60.0  # a 50 ms frame quieter than this (RMS) counts as silent
MOSTLY_SILENT = 0.5  # flag files with more than half their frames silent
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
CLIPPING = 1e-3  # flag files with more than 0.1 % clipped samples


@dataclass
class FileCheck:
    item: AudioItem
    error: str | None = None
    sample_rate: int = 0
    channels: int = 0
    duration: float = 0.0
    silence_fraction: float = 0.0
    clipped_fraction: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.error is None


def silence_fraction(mono: np.ndarray, sample_rate: int) -> float:
    """Share of 50 ms frames whose RMS is below SILENCE_DBFS."""
    frame = max(1, int(0.05 * sample_rate))
    count = len(mono) // frame
    frames = mono[: count * frame].reshape(count, frame) if count else mono[None, :]
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return float(np.mean(rms < 10.0 ** (SILENCE_DBFS / 20.0)))


def check_file(item: AudioItem) -> FileCheck:
    result = FileCheck(item=item)
    try:
        frames, sr = read_audio_frames(item.path)  # ndarray[T, C] at the file's own rate
    except WavegenError as exc:
        result.error = str(exc)
        return result
    result.sample_rate, result.channels = sr, frames.shape[1]
    result.duration = frames.shape[0] / sr
    # Clipping is judged per channel, before a downmix could hide it.
    result.clipped_fraction = float(np.mean(np.abs(frames) >= CLIP_LEVEL))
    result.silence_fraction = silence_fraction(frames.mean(axis=1), sr)
    if result.silence_fraction > MOSTLY_SILENT:
        result.flags.append(f"mostly silent ({result.silence_fraction:.0%})")
    if result.clipped_fraction > CLIPPING:
        result.flags.append(f"clips ({result.clipped_fraction:.2%} of samples)")
    return result


@dataclass
class CheckReport:
    files: list[FileCheck]

    @property
    def unreadable(self) -> list[FileCheck]:
        return [f for f in self.files if not f.readable]

    @property
    def flagged(self) -> list[FileCheck]:
        return [f for f in self.files if f.readable and f.flags]

    def lines(self, root: Path | None = None) -> list[str]:
        def name(f: FileCheck) -> str:
            if root is not None:
                try:
                    return str(f.item.path.relative_to(root))
                except ValueError:
                    pass
            return str(f.item.path)

        readable = [f for f in self.files if f.readable]
        total = sum(f.duration for f in readable)
        out = [f"{len(self.files)} files, {len(readable)} readable, {format_duration(total)} in total"]
        for split in sorted({f.item.split for f in self.files}):
            group = [f for f in readable if f.item.split == split]
            # Readable files only: an unreadable one adds nothing a run could train on.
            bad = sum(1 for f in self.files if f.item.split == split and not f.readable)
            note = f"  (+{bad} unreadable)" if bad else ""
            out.append(f"  {split:<10} {len(group):>5} files  {format_duration(sum(f.duration for f in group))}{note}")
        rates = Counter(f.sample_rate for f in readable)
        if rates:
            out.append("sample rates: " + ", ".join(f"{sr} Hz x{n}" for sr, n in sorted(rates.items())))
        channels = Counter(f.channels for f in readable)
        if channels:
            out.append("channels: " + ", ".join(f"{c} x{n}" for c, n in sorted(channels.items())))
        out.append("per file (split, duration, rate, silent frames, clipped samples):")
        for f in self.files:
            if f.readable:
                note = ("  <- " + "; ".join(f.flags)) if f.flags else ""
                out.append(
                    f"  {name(f)}  {f.item.split}  {f.duration:.1f} s  {f.sample_rate} Hz  "
                    f"silent {f.silence_fraction:.0%}  clipped {f.clipped_fraction:.3%}{note}"
                )
        if self.flagged:
            out.append(f"{len(self.flagged)} file(s) flagged (mostly silent or clipping)")
        if self.unreadable:
            out.append(f"{len(self.unreadable)} unreadable file(s):")
            out.extend(f"  {name(f)}: {f.error}" for f in self.unreadable)
        return out


def check_items(items: Iterable[AudioItem], progress: Callable[[int, int], None] | None = None) -> CheckReport:
    items = list(items)
    results = []
    for i, item in enumerate(items):
        results.append(check_file(item))
        if progress:
            progress(i + 1, len(items))
    return CheckReport(results)
