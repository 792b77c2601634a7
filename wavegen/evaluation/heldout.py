"""Held-out audio for schedule search and evaluation: a dataset split or a folder.

``source`` is either a split name of the dataset the checkpoint was trained on
(``validation`` or ``test``, read from the config stored in the checkpoint) or a
path to an audio file or a folder of audio files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig
from wavegen.errors import WavegenError

SPLIT_NAMES = ("train", "validation", "test")


def _files_for_split(ckpt: dict, split: str) -> list[Path]:
    from wavegen.data import build_dataset

    config = ckpt.get("config") or {}
    if "data" not in config:
        raise WavegenError(f"the checkpoint stores no data config, so split {split!r} is unknown; pass a folder")
    dataset = build_dataset(config["data"], ckpt["audio"])
    items = dataset.get(split) or []
    if not items:
        raise WavegenError(f"the {split} split of the checkpoint's dataset is empty; pass a folder of audio instead")
    return [item.path for item in items]


def held_out_files(ckpt: dict, source: str) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        from wavegen.data.folder import list_audio_files

        return list_audio_files(path)
    if path.is_file():
        return [path]
    if source in SPLIT_NAMES:
        return _files_for_split(ckpt, source)
    raise WavegenError(f"{source!r} is neither an audio file, a folder, nor a split ({', '.join(SPLIT_NAMES)})")


def held_out_clips(ckpt: dict, source: str, num_clips: int, seconds: float, offset_seconds: float = 0.0) -> Tensor:
    """Tensor[N, T] of up to ``num_clips`` clips, T = ``seconds`` rounded down to whole hops.

    Clips are cut one after another from each file (starting ``offset_seconds`` in)
    until ``num_clips`` are collected; files shorter than one clip are skipped.
    """
    from wavegen.audio.io import read_audio

    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    hop = audio_cfg.hop_length
    length = int(seconds * audio_cfg.sample_rate) // hop * hop
    if length < hop:
        raise WavegenError(f"clips of {seconds} s are shorter than one hop ({hop} samples)")
    offset = int(offset_seconds * audio_cfg.sample_rate)
    clips: list[Tensor] = []
    for path in held_out_files(ckpt, source):
        wave = read_audio(path, audio_cfg.sample_rate)[offset:]
        for start in range(0, wave.shape[0] - length + 1, length):
            clips.append(wave[start : start + length])
            if len(clips) >= num_clips:
                return torch.stack(clips)
    if not clips:
        raise WavegenError(f"no held-out audio in {source!r} is at least {seconds} s long")
    return torch.stack(clips)


def held_out_pieces(ckpt: dict, source: str, max_seconds: float = 0.0) -> list[Tensor]:
    """Every held-out file whole (or its first ``max_seconds``, when positive), each Tensor[T]."""
    from wavegen.audio.io import read_audio

    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    limit = int(max_seconds * audio_cfg.sample_rate) if max_seconds > 0 else None
    pieces = [read_audio(path, audio_cfg.sample_rate)[:limit] for path in held_out_files(ckpt, source)]
    pieces = [p for p in pieces if p.shape[0] >= audio_cfg.n_fft]
    if not pieces:
        raise WavegenError(f"no held-out audio in {source!r} is long enough to evaluate")
    return pieces
