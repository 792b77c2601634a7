"""Codes drawn against the log-mel spectrogram of the audio they encode.

Top panel: the spectrogram; bottom panel: each channel's level index as a step
line over time (one lane per channel), with a tick at every event boundary.
matplotlib is imported inside the functions and figures use an Agg canvas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.codes.events import change_mask


def codes_figure(audio: Tensor, indices: Tensor, levels: Sequence[int], hop: int, audio_cfg, title: str | None = None):
    """Tensor[T] audio and its codes LongTensor[C, F] -> a matplotlib Figure (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from wavegen.audio.plots import draw_mel, log_mel_image

    audio = torch.as_tensor(audio).detach().to("cpu", torch.float32).reshape(-1)
    indices = indices.detach().cpu()
    sr = audio_cfg.sample_rate
    channels, frames = indices.shape
    seconds = max(audio.numel(), frames * hop) / sr
    fig = Figure(figsize=(10, 2.5 + 0.6 * channels))
    FigureCanvasAgg(fig)
    spec_ax, code_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1 + 0.3 * channels]})
    draw_mel(spec_ax, log_mel_image(audio, audio_cfg), audio.numel() / sr, audio_cfg, title)
    spec_ax.set_xlabel("")
    times = np.arange(frames + 1) * hop / sr
    for c in range(channels):
        # Each channel gets a lane of height 1, its levels spread over 80 % of it.
        lane = c + 0.1 + 0.8 * indices[c].numpy() / max(levels[c] - 1, 1)
        code_ax.step(times, np.append(lane, lane[-1]), where="post", linewidth=1.2)
    starts = np.nonzero(change_mask(indices).numpy())[0]
    code_ax.vlines(starts * hop / sr, -0.05, 0.0, color="black", linewidth=0.6)
    code_ax.set_ylim(-0.1, channels)
    code_ax.set_yticks([c + 0.5 for c in range(channels)], [f"ch {c}" for c in range(channels)])
    code_ax.set_xlim(0.0, seconds)
    code_ax.set_xlabel(f"time (s)   {len(starts)} events, {len(starts) / max(seconds, 1e-9):.1f} events/s")
    fig.tight_layout()
    return fig


def codes_image(audio: Tensor, indices: Tensor, levels: Sequence[int], hop: int, audio_cfg) -> np.ndarray:
    """The figure of :func:`codes_figure` as ndarray[H, W, 3] uint8 RGB (what loggers take)."""
    fig = codes_figure(audio, indices, levels, hop, audio_cfg)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_codes_png(path, audio: Tensor, indices: Tensor, levels: Sequence[int], hop: int, audio_cfg,
                   title: str | None = None) -> Path:
    """Write :func:`codes_figure` as a PNG (atomically: temporary file, then rename)."""
    from wavegen.audio.plots import save_figure_png

    fig = codes_figure(audio, indices, levels, hop, audio_cfg, title)
    return save_figure_png(fig, path)
