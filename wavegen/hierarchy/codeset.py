"""Code sets: a dataset split encoded by an autoencoder, the training data of the priors above it.

A code set is a folder::

    codeset.json                 what encoded it and how (levels, hop, rate, fingerprint, items)
    train/00000.codes ...        one run-length code file per source item (wavegen.codes.codefile)
    validation/00000.codes ...

``hop`` is in *audio samples* per code frame at every level, so rates in frames/s
and seconds are read off the same way for level-1 codes (hop 64) and level-2 codes
(hop 64 x 4 = 256). The manifest is written last and atomically: a folder without
one is an unfinished dump, never mistaken for a code set.

:class:`CodeSetSampler` hands a prior its training batches: random windows of joint
code indices, a pure function of (seed, step, rank) like the audio segment sampler.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.atomic import atomic_write
from wavegen.errors import WavegenError

MANIFEST = "codeset.json"
FORMAT = "wavegen-codeset"
VERSION = 1


@dataclass
class CodeSetItem:
    file: str  # relative to the code set folder
    split: str
    piece: str
    frames: int
    num_samples: int


@dataclass
class CodeSet:
    """A loaded code set's manifest; :meth:`sequences` reads the codes themselves."""

    root: Path
    levels: list[int]
    hop: int  # audio samples per code frame
    sample_rate: int
    fingerprint: str  # hex of the encoding model's fingerprint (stored in every code file)
    source: str  # the checkpoint that encoded it
    items: list[CodeSetItem] = field(default_factory=list)
    weights: str = ""  # wavegen.hierarchy.provenance.weights_fingerprint of the encoding model

    @property
    def provenance(self) -> str:
        """What the models trained on this code set record as ``codes_fingerprint``."""
        return self.weights or self.fingerprint

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def split_items(self, split: str) -> list[CodeSetItem]:
        return [it for it in self.items if it.split == split]

    def sequences(self, split: str) -> list[Tensor]:
        """The codes of every item of ``split``, LongTensor[C, F] each (decoded from the run-length files)."""
        from wavegen.codes.codefile import read_code_file

        fingerprint = bytes.fromhex(self.fingerprint)
        return [read_code_file(self.root / it.file, fingerprint=fingerprint).codes() for it in self.split_items(split)]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "levels": self.levels, "hop": self.hop,
            "sample_rate": self.sample_rate, "fingerprint": self.fingerprint, "weights": self.weights,
            "source": self.source,
            "items": [it.__dict__ for it in self.items],
        }


def _write_json_atomic(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=1).encode("utf-8"))


def load_codeset(root: os.PathLike | str) -> CodeSet:
    """Read a code set's manifest (one-line errors for a missing or foreign folder)."""
    root = Path(root).expanduser()
    manifest = root / MANIFEST
    if not manifest.is_file():
        hint = " (an unfinished dump? run `wavegen codes dump` again)" if root.is_dir() else ""
        raise WavegenError(f"no code set at {root}: {MANIFEST} not found{hint}")
    try:
        data = json.loads(manifest.read_text())
    except ValueError as exc:
        raise WavegenError(f"{manifest} is not valid JSON ({exc})") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise WavegenError(f"{manifest} is not a version-{VERSION} wavegen code set")
    items = [CodeSetItem(**it) for it in data["items"]]
    return CodeSet(root, [int(v) for v in data["levels"]], int(data["hop"]), int(data["sample_rate"]),
                   str(data["fingerprint"]), str(data.get("source", "")), items, str(data.get("weights", "")))


class CodeSetWriter:
    """Adds one code sequence at a time; :meth:`finish` publishes the manifest.

    Refuses a folder that already holds a code set unless ``overwrite``.
    """

    def __init__(self, root: os.PathLike | str, levels: Sequence[int], hop: int, sample_rate: int,
                 fingerprint: bytes, source: str = "", overwrite: bool = False, weights: str = ""):
        self.root = Path(root).expanduser()
        if self.root.is_file():
            raise WavegenError(f"code set output is a file, not a folder: {self.root}")
        if (self.root / MANIFEST).exists() and not overwrite:
            raise WavegenError(f"a code set already exists at {self.root} (pass --overwrite to replace it)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.codeset = CodeSet(self.root, [int(v) for v in levels], int(hop), int(sample_rate), fingerprint.hex(),
                               str(source), weights=str(weights))
        self._fingerprint = bytes(fingerprint)
        self._counts: dict[str, int] = {}

    def add(self, split: str, piece: str, indices: Tensor, num_samples: int) -> CodeSetItem:
        """indices: LongTensor[C, F] standing for ``num_samples`` audio samples."""
        from wavegen.codes.codefile import CodeFile, write_code_file

        n = self._counts.get(split, 0)
        self._counts[split] = n + 1
        rel = f"{split}/{n:05d}.codes"
        code = CodeFile.from_codes(indices, self.codeset.levels, self.codeset.hop, self.codeset.sample_rate,
                                   num_samples, self._fingerprint)
        write_code_file(self.root / rel, code, overwrite=True)
        item = CodeSetItem(rel, split, str(piece), int(indices.shape[-1]), int(num_samples))
        self.codeset.items.append(item)
        return item

    def finish(self) -> CodeSet:
        if not self.codeset.items:
            raise WavegenError(f"nothing was encoded into {self.root}")
        _write_json_atomic(self.root / MANIFEST, self.codeset.to_dict())
        return self.codeset


# ----------------------------------------------------------------------------- training batches


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) % 2**63 for k in keys])


class CodeSetSampler:
    """Random windows of joint code indices for training a prior.

    ``batch(step) -> {"tokens": LongTensor[B, T+1], "piece": LongTensor[B]}``: ``T+1``
    consecutive joint classes (the model reads the first ``T`` and predicts the last ``T``).
    Every sequence is preceded by one virtual frame of class ``start_token`` (what the
    sampler's state holds before time 0), so windows at a piece's start teach the model
    how music begins.

    ``upper`` mode (the level-2 autoencoder) also returns the window's per-channel
    indices, ``"codes": LongTensor[B, C, T+1]``, and aligns windows to ``align`` frames.
    """

    def __init__(self, sequences: Sequence[Tensor], levels: Sequence[int], window: int, batch_size: int,
                 seed: int, rank: int = 0, world_size: int = 1, align: int = 1, start_token: int = 0):
        from wavegen.codes.joint import to_joint

        if not sequences:
            raise WavegenError("the code set split is empty")
        if window < 2:
            raise WavegenError(f"training windows need at least 2 frames, got {window}")
        self.window = int(window)
        self.align = max(1, int(align))
        self.batch_size = int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.levels = list(levels)
        self.codes = [s.long() for s in sequences]
        start = torch.full((1,), int(start_token), dtype=torch.long)
        self.joint = [torch.cat([start, to_joint(s, levels)]) for s in self.codes]
        lengths = np.array([j.numel() for j in self.joint], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    def _window(self, index: int, offset: int) -> tuple[Tensor, Tensor]:
        """Frames ``offset-1 .. offset+window-1`` of sequence ``index`` (frame -1 is the start token).

        Windows running past the end repeat the last frame (a held note) rather than failing.
        """
        joint = self.joint[index]
        codes = self.codes[index]
        n = self.window + 1
        stop = offset + n
        tok = joint[offset:stop]
        cod = torch.cat([codes[:, :1], codes], dim=1)[:, offset:stop]
        if tok.numel() < n:
            pad = n - tok.numel()
            tok = torch.cat([tok, tok[-1:].expand(pad)])
            cod = torch.cat([cod, cod[:, -1:].expand(-1, pad)], dim=1)
        return tok, cod

    def _pick(self, rng: np.random.Generator) -> tuple[int, int]:
        index = int(rng.choice(len(self.joint), p=self.weights))
        span = max(1, self.joint[index].numel() - self.window)
        offset = int(rng.integers(0, span))
        if self.align > 1:
            # Offsets are counted with the start token at 0; align the first *real* frame read.
            offset = offset // self.align * self.align
        return index, offset

    def batch(self, step: int) -> dict[str, Tensor]:
        rng = _rng(self.seed, step, self.rank, self.world_size)
        picks = [self._pick(rng) for _ in range(self.batch_size)]
        return self._collate(picks)

    def _collate(self, picks) -> dict[str, Tensor]:
        tokens, codes, pieces = [], [], []
        for index, offset in picks:
            tok, cod = self._window(index, offset)
            tokens.append(tok)
            codes.append(cod)
            pieces.append(index)
        return {"tokens": torch.stack(tokens), "codes": torch.stack(codes), "piece": torch.tensor(pieces)}

    def validation_batches(self, n: Optional[int] = None) -> list[dict[str, Tensor]]:
        """Fixed windows spread evenly over every sequence (the same every call)."""
        picks = []
        for index, joint in enumerate(self.joint):
            span = max(1, joint.numel() - self.window)
            for offset in range(0, span, max(self.window, span // 4)):
                picks.append((index, offset // self.align * self.align))
        batches = [self._collate(picks[i : i + self.batch_size]) for i in range(0, len(picks), self.batch_size)]
        return batches[:n] if n else batches
