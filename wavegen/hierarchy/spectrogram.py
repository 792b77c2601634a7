"""A log-mel picture of audio of any length, in bounded memory.

Audio arrives in chunks; complete STFT frames are turned into mel columns as soon
as their samples are there (``center=False``, so no frame ever needs future audio).
At most ``max_columns`` columns are kept: when that fills up, neighbouring columns
are merged pairwise (their maximum, so short notes stay visible) and every later
column is merged over twice as many frames. An hour costs what a minute costs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig


class BoundedSpectrogram:
    def __init__(self, cfg: AudioConfig, max_columns: int = 1024):
        import torchaudio.transforms as T

        self.cfg = cfg
        self.max_columns = int(max_columns)
        self.transform = T.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, power=1.0, center=False, norm="slaney",
            mel_scale="slaney")
        self._tail = torch.zeros(0)
        self.columns: list[np.ndarray] = []
        self.frames_per_column = 1
        self._pending: list[np.ndarray] = []
        self.samples = 0

    def push(self, audio: Tensor) -> None:
        """Tensor[T] mono audio in [-1, 1], the next chunk."""
        audio = torch.as_tensor(audio).detach().float().cpu().reshape(-1)
        self.samples += audio.numel()
        buf = torch.cat([self._tail, audio])
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_length
        if buf.numel() < n_fft:
            self._tail = buf
            return
        frames = (buf.numel() - n_fft) // hop + 1
        used = (frames - 1) * hop + n_fft
        mel = torch.log(self.transform(buf[:used]).clamp_min(1e-5)).numpy()  # [n_mels, frames]
        self._tail = buf[frames * hop :]
        for column in mel.T:
            self._add(column)

    def _add(self, column: np.ndarray) -> None:
        self._pending.append(column)
        if len(self._pending) < self.frames_per_column:
            return
        self.columns.append(np.max(self._pending, axis=0))
        self._pending = []
        if len(self.columns) >= self.max_columns:
            pairs = [np.maximum(a, b) for a, b in zip(self.columns[0::2], self.columns[1::2])]
            if len(self.columns) % 2:
                pairs.append(self.columns[-1])
            self.columns = pairs
            self.frames_per_column *= 2

    def image(self) -> np.ndarray:
        """ndarray[n_mels, columns] log-mel, the lowest 80 dB below the peak clipped."""
        cols = self.columns + ([np.max(self._pending, axis=0)] if self._pending else [])
        if not cols:
            return np.full((self.cfg.n_mels, 1), np.log(1e-5), dtype=np.float32)
        from wavegen.audio.plots import clip_to_dynamic_range

        return clip_to_dynamic_range(np.stack(cols, axis=1))

    def save_png(self, path: os.PathLike | str, title: str = "") -> Path:
        """Write the picture atomically (temp file + rename)."""
        from wavegen.audio.plots import save_mel_panels_png

        seconds = max(self.samples, 1) / self.cfg.sample_rate
        return save_mel_panels_png(path, [(self.image(), title or None)], seconds, self.cfg, width=12.0)
