"""Datasets and segment sampling.

- :func:`build_dataset` turns the ``data`` config group into ``{split: [AudioItem]}``
  for one of the kinds ``embedded`` (default; rendered offline from music21's
  corpus), ``maestro`` (MAESTRO v3 CSV + audio) or ``folder`` (any folder of audio).
- :func:`build_sampler` wraps a split in a :class:`SegmentSampler` from the
  composed run config (``cfg.data``, ``cfg.audio``, ``cfg.train``, ``cfg.seed``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional

from wavegen.data.items import SPLITS, AudioItem, Dataset, group_by_split, num_files, summary_lines
from wavegen.data.segments import DecodeCache, SegmentSampler
from wavegen.errors import WavegenError

KINDS = ("embedded", "maestro", "folder")
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "wavegen", "decoded")

__all__ = [
    "KINDS",
    "SPLITS",
    "AudioItem",
    "Dataset",
    "DecodeCache",
    "SegmentSampler",
    "build_dataset",
    "loudest_clips",
    "build_sampler",
    "load_items",
    "num_files",
    "summary_lines",
]


def _sample_rate(audio_cfg: Any) -> int:
    """``audio_cfg`` may be an AudioConfig, a DictConfig or a plain dict."""
    rate = getattr(audio_cfg, "sample_rate", None)
    if rate is None and isinstance(audio_cfg, Mapping):
        rate = audio_cfg.get("sample_rate")
    if rate is None:
        raise WavegenError("audio config has no sample_rate")
    return int(rate)


def _kind(data_cfg: Mapping[str, Any]) -> str:
    kind = data_cfg.get("kind") if isinstance(data_cfg, Mapping) else getattr(data_cfg, "kind", None)
    if kind not in KINDS:
        raise WavegenError(f"unknown data.kind '{kind}' (choose one of: {', '.join(KINDS)})")
    return str(kind)


def load_items(
    data_cfg: Mapping[str, Any],
    audio_cfg: Any,
    strict: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> list[AudioItem]:
    """All items of the configured dataset, every split, ordered by ``file_id``.

    ``strict=False`` lists files without requiring that they exist or open
    (for ``wavegen data check``, which reports those problems itself).
    """
    kind = _kind(data_cfg)
    if kind == "embedded":
        from wavegen.data.embedded import build_embedded

        return build_embedded(data_cfg, _sample_rate(audio_cfg), log=log)
    if kind == "maestro":
        from wavegen.data.maestro import load_maestro

        return load_maestro(data_cfg, require_audio=strict)
    from wavegen.data.folder import load_folder

    return load_folder(data_cfg, read_headers=strict)


def build_dataset(data_cfg: Mapping[str, Any], audio_cfg: Any, log: Callable[[str], None] = lambda s: None) -> Dataset:
    """The ``data`` config group -> {split: [AudioItem]} (train, validation, test; some may be empty).

    The embedded dataset is rendered on first use and reused afterwards.
    """
    return group_by_split(load_items(data_cfg, audio_cfg, strict=True, log=log))


def build_sampler(cfg: Any, split: str = "train", rank: int = 0, world_size: int = 1) -> SegmentSampler:
    """A SegmentSampler for one split of the composed run config.

    Reads ``cfg.data`` (dataset and ``cache_dir``), ``cfg.audio.sample_rate``,
    ``cfg.train.batch_size``, ``cfg.train.segment_length`` and ``cfg.seed``.
    """
    if split not in SPLITS:
        raise WavegenError(f"unknown split '{split}' (choose one of: {', '.join(SPLITS)})")
    dataset = build_dataset(cfg.data, cfg.audio)
    items = dataset.get(split) or []
    if not items:
        counts = ", ".join(f"{name}: {len(v)}" for name, v in dataset.items())
        raise WavegenError(f"the {split} split of the {cfg.data.kind} dataset is empty ({counts})")
    cache_dir = cfg.data.get("cache_dir") or DEFAULT_CACHE_DIR
    sampler = SegmentSampler(
        items,
        segment_length=int(cfg.train.segment_length),
        sample_rate=_sample_rate(cfg.audio),
        batch_size=int(cfg.train.batch_size),
        seed=int(cfg.seed),
        cache_dir=cache_dir,
        rank=rank,
        world_size=world_size,
        num_pieces=num_files(dataset),
    )
    return sampler


def loudest_clips(cfg: Any, split: str, count: int, max_batches: Optional[int] = None):
    """Tensor[N, segment_length]: the ``count`` loudest of a split's fixed evaluation segments.

    The segments are the sampler's deterministic validation batches (``max_batches`` of them, default
    all) at ``cfg.train.segment_length``; loudest first, because a near-silent clip says nothing about
    pitch or likelihood. Used to pick held-out prompts and NLL clips, and training clips for choices.
    """
    import torch

    batches = build_sampler(cfg, split).validation_batches(max_batches)
    clips = torch.cat([b["audio"] for b in batches])
    order = clips.pow(2).mean(dim=1).argsort(descending=True)
    return clips[order[:count]]
