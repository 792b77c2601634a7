"""Log-mel spectrogram pictures: PNG files for humans, RGB arrays for loggers.

matplotlib is imported inside the functions, and figures are drawn on an Agg
canvas directly (no pyplot), so importing this module costs nothing, works on
machines without a display and never changes a notebook's global backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from wavegen.atomic import atomic_write
from wavegen.audio.dsp import AudioConfig, mel_spectrogram

# Log-magnitude floor (natural log of the 1e-5 clamp in mel_spectrogram) and the
# dynamic range shown: 80 dB below the loudest bin is drawn as black.
_DYNAMIC_RANGE_NATS = 80.0 / 20.0 * np.log(10.0)


def _figure(width: float, height: float):
    """A matplotlib Figure bound to an Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def log_mel_image(audio: Tensor, cfg: AudioConfig) -> np.ndarray:
    """Tensor[T] -> ndarray[n_mels, F] float32 log-mel, clipped to the shown dynamic range."""
    audio = torch.as_tensor(audio).detach().to("cpu", torch.float32).reshape(-1)
    if audio.numel() <= cfg.n_fft // 2:  # centred frames reflect-pad by n_fft/2, which needs more samples
        audio = torch.nn.functional.pad(audio, (0, cfg.n_fft // 2 + 1 - audio.numel()))
    return clip_to_dynamic_range(mel_spectrogram(audio, cfg, log=True).numpy())


def _seconds(audio: Tensor, cfg: AudioConfig) -> float:
    return max(torch.as_tensor(audio).numel(), 1) / cfg.sample_rate


def draw_mel(ax, mel: np.ndarray, seconds: float, cfg: AudioConfig, title: str | None = None, vmin=None, vmax=None):
    """Draw ndarray[n_mels, F] log-mel on a matplotlib Axes (seconds on x, mel bins on y); returns the image.

    The one way every picture here draws a spectrogram (the codes' figure and the hierarchy's
    long-run picture too), so they all read alike.
    """
    image = ax.imshow(
        mel,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        extent=(0.0, seconds, 0, cfg.n_mels),
        cmap="magma",
        vmin=vmin,
        vmax=vmax,
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title)
    return image


def save_figure_png(fig, path: os.PathLike | str) -> Path:
    """Write a Figure as a PNG atomically (a crash never leaves half a PNG behind); creates the folder."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    return path


def save_mel_panels_png(path, panels: Sequence[tuple[np.ndarray, str | None]], seconds: float, cfg: AudioConfig,
                        width: float = 10.0) -> Path:
    """Log-mel images ndarray[n_mels, F] with titles -> one PNG, stacked, on one colour scale."""
    vmin = float(min(m.min() for m, _ in panels))
    vmax = float(max(m.max() for m, _ in panels))
    fig = _figure(width, 4.0 if len(panels) == 1 else 3.5 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (mel, title) in zip(axes, panels):
        image = draw_mel(ax, mel, seconds, cfg, title, vmin, vmax)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.colorbar(image, ax=list(axes), label="log magnitude")
    return save_figure_png(fig, path)


def save_spectrogram_png(path, audio: Tensor, cfg: AudioConfig, title: str | None = None) -> Path:
    """Tensor[T] -> a PNG of its log-mel spectrogram (seconds on x, mel bins on y)."""
    return save_mel_panels_png(path, [(log_mel_image(audio, cfg), title)], _seconds(audio, cfg), cfg)


def save_spectrogram_comparison_png(
    path,
    reference: Tensor,
    generated: Tensor,
    cfg: AudioConfig,
    titles: Sequence[str] = ("reference", "generated"),
) -> Path:
    """Two Tensor[T] clips -> one PNG with their log-mel spectrograms stacked, on one colour scale."""
    seconds = max(_seconds(reference, cfg), _seconds(generated, cfg))
    return save_mel_panels_png(path, [(log_mel_image(reference, cfg), titles[0]),
                                      (log_mel_image(generated, cfg), titles[1])], seconds, cfg)


def clip_to_dynamic_range(mel: np.ndarray) -> np.ndarray:
    """ndarray log-mel -> the same, with everything more than 80 dB below its peak raised to that floor."""
    return np.maximum(mel, float(mel.max()) - _DYNAMIC_RANGE_NATS).astype(np.float32)


def spectrogram_image(audio: Tensor, cfg: AudioConfig) -> np.ndarray:
    """Tensor[T] -> ndarray[n_mels, F, 3] uint8 RGB log-mel (low frequencies at the bottom).

    One pixel per mel bin and frame, coloured with the same map as the PNGs; what
    wandb and TensorBoard loggers take as an image.
    """
    import matplotlib

    mel = log_mel_image(audio, cfg)
    lo, hi = float(mel.min()), float(mel.max())
    scaled = (mel - lo) / (hi - lo) if hi > lo else np.zeros_like(mel)
    rgba = matplotlib.colormaps["magma"](scaled[::-1])  # row 0 is the top of an image
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)
