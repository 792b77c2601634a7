"""Random fixed-length crops for training, fixed crops for validation, and the decode cache.

Decoding (mp3/flac, 44.1 kHz -> 16 kHz resampling) is far slower than training
needs, so each source file is decoded once into a float32 ``.npy`` in
``cache_dir`` and memory-mapped from then on: an epoch only touches pages.

``SegmentSampler.batch(step)`` is a pure function of (seed, step, rank): a
resumed run draws exactly the batches the uninterrupted run would have, and
distributed ranks draw different ones, with no sampler state to checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.audio.io import read_audio
from wavegen.data.files import expand_path, save_npy_atomic
from wavegen.data.items import AudioItem
from wavegen.errors import WavegenError


class DecodeCache:
    """Decoded, resampled mono audio per file, as memory-mapped float32 arrays.

    The cache key covers the absolute path, modification time, size and sample
    rate, so an edited or replaced file, or a new rate, is decoded afresh.
    """

    def __init__(self, cache_dir: str | os.PathLike, sample_rate: int):
        self.cache_dir = expand_path(cache_dir)
        self.sample_rate = int(sample_rate)
        self._arrays: dict[Path, np.ndarray] = {}

    def cache_path(self, source: Path) -> Path:
        try:
            stat = source.stat()
        except FileNotFoundError:
            raise WavegenError(f"audio file not found: {source}") from None
        key = f"{source.absolute()}|{stat.st_mtime_ns}|{stat.st_size}|{self.sample_rate}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:20]
        return self.cache_dir / f"{source.stem[:40]}-{digest}.npy"

    def load(self, source: Path) -> np.ndarray:
        """ndarray[T] float32 (read-only memory map) for ``source`` at the cache's rate."""
        source = Path(source)
        array = self._arrays.get(source)
        if array is not None:
            return array
        path = self.cache_path(source)
        if not path.is_file():
            audio = read_audio(source, self.sample_rate).numpy().astype(np.float32, copy=False)
            save_npy_atomic(path, audio)
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError):
            # A damaged cache entry (disk full, foreign file): decode again.
            audio = read_audio(source, self.sample_rate).numpy().astype(np.float32, copy=False)
            save_npy_atomic(path, audio)
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        self._arrays[source] = array
        return array


def _generator(*keys: int) -> np.random.Generator:
    # SeedSequence mixes the keys well, so (seed, step, rank) and (seed, step, rank+1)
    # give unrelated streams without any arithmetic on seeds.
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]))


class SegmentSampler:
    """Batches of fixed-length crops from a list of audio items.

    Args:
        items: the files of one split.
        segment_length: samples per crop.
        sample_rate: the rate crops are returned at (files are resampled once, into the cache).
        batch_size: crops per batch (per rank).
        seed: the run's seed.
        cache_dir: where decoded ``.npy`` files live.
        rank, world_size: this process's place in distributed training.
        num_pieces: size of the per-file id space of the whole dataset (all
            splits); defaults to the largest id among ``items`` plus one.
    """

    _SALT = 0x5E6  # keeps these streams apart from other users of (seed, step)

    def __init__(
        self,
        items: Sequence[AudioItem],
        segment_length: int,
        sample_rate: int,
        batch_size: int,
        seed: int,
        cache_dir: str | os.PathLike,
        rank: int = 0,
        world_size: int = 1,
        num_pieces: int | None = None,
    ):
        if not items:
            raise WavegenError("cannot sample segments from an empty list of audio files")
        if segment_length < 1 or batch_size < 1:
            raise WavegenError(f"segment_length and batch_size must be positive, got {segment_length} and {batch_size}")
        if not 0 <= rank < world_size:
            raise WavegenError(f"rank {rank} is outside world_size {world_size}")
        self.items = sorted(items, key=lambda it: it.file_id)
        self.segment_length = int(segment_length)
        self.sample_rate = int(sample_rate)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.cache = DecodeCache(cache_dir, sample_rate)
        self._num_pieces = num_pieces
        # Sampling weights come from the item durations (known without decoding),
        # so a batch's choice of files never depends on what is cached yet.
        durations = np.array([max(float(it.duration), 0.0) for it in self.items], dtype=np.float64)
        if durations.sum() <= 0:
            durations = np.ones(len(self.items))
        self.weights = durations / durations.sum()

    @property
    def num_pieces(self) -> int:
        """Size of a per-file embedding table (global conditioning) covering the dataset's ids."""
        return self._num_pieces or max(it.file_id for it in self.items) + 1

    def prepare(self) -> None:
        """Decode every file into the cache now (otherwise each is decoded on first use)."""
        for item in self.items:
            self.cache.load(item.path)

    def _crop(self, item_index: int, start_fraction: float) -> np.ndarray:
        """One crop -> ndarray[segment_length]; short files are zero-padded on the left."""
        audio = self.cache.load(self.items[item_index].path)
        out = np.zeros(self.segment_length, dtype=np.float32)
        if len(audio) >= self.segment_length:
            start = int(start_fraction * (len(audio) - self.segment_length + 1))
            out[:] = audio[start : start + self.segment_length]
        else:
            out[self.segment_length - len(audio) :] = audio
        return out

    def batch(self, step: int) -> dict[str, Tensor]:
        """{"audio": Tensor[B, segment_length] float32, "piece": LongTensor[B]} for training step ``step``.

        A pure function of (seed, step, rank): files are drawn with probability
        proportional to duration, then a uniformly random crop within each.
        """
        rng = _generator(self.seed, step, self.rank, self._SALT)
        chosen = rng.choice(len(self.items), size=self.batch_size, p=self.weights)
        fractions = rng.random(self.batch_size)
        audio = np.stack([self._crop(int(i), float(f)) for i, f in zip(chosen, fractions)])
        pieces = [self.items[int(i)].file_id for i in chosen]
        return {"audio": torch.from_numpy(audio), "piece": torch.tensor(pieces, dtype=torch.long)}

    def validation_crops(self, max_batches: int | None = None) -> list[tuple[int, int]]:
        """[(item index, start sample)] of fixed crops for evaluation on this rank.

        Each file is cut into consecutive non-overlapping segments (a tail of at
        least a quarter segment is kept, zero-padded on the left; short files are one padded crop);
        if there are more than ``max_batches`` batches' worth, an evenly spaced
        subset keeps the whole split represented. Ranks take interleaved shares
        of equal size.
        """
        crops: list[tuple[int, int]] = []
        for index, item in enumerate(self.items):
            length = len(self.cache.load(item.path))
            starts = list(range(0, max(length - self.segment_length, 0) + 1, self.segment_length))
            tail = length - (starts[-1] + self.segment_length)
            if tail >= self.segment_length // 4:  # keep a tail worth scoring, padded
                starts.append(starts[-1] + self.segment_length)
            crops.extend((index, start) for start in starts)
        if max_batches is not None:
            limit = int(max_batches) * self.batch_size * self.world_size
            if len(crops) > limit:
                picks = np.linspace(0, len(crops) - 1, limit).round().astype(int)
                crops = [crops[i] for i in picks]
        # Equal shares, so every rank runs the same number of evaluation steps.
        share = len(crops) // self.world_size if self.world_size > 1 else len(crops)
        return crops[self.rank :: self.world_size][:share]

    def validation_batches(self, max_batches: int | None = None) -> list[dict[str, Tensor]]:
        """Deterministic evaluation batches: [{"audio": Tensor[B, segment_length], "piece": LongTensor[B]}].

        The last batch may hold fewer than ``batch_size`` crops.
        """
        crops = self.validation_crops(max_batches)
        batches = []
        for begin in range(0, len(crops), self.batch_size):
            group = crops[begin : begin + self.batch_size]
            audio = np.stack([self._fixed_crop(i, s) for i, s in group])
            pieces = [self.items[i].file_id for i, _ in group]
            batches.append({"audio": torch.from_numpy(audio), "piece": torch.tensor(pieces, dtype=torch.long)})
        return batches

    def _fixed_crop(self, item_index: int, start: int) -> np.ndarray:
        audio = self.cache.load(self.items[item_index].path)
        piece = np.asarray(audio[start : start + self.segment_length], dtype=np.float32)
        out = np.zeros(self.segment_length, dtype=np.float32)
        out[self.segment_length - len(piece) :] = piece  # a short file or tail is padded on the left
        return out
