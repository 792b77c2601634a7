"""What `wavegen vocode` accepts, checked against the checkpoint's audio config (the command's
input parsing, beside it: :mod:`wavegen.commands.vocode`).

- audio files (``.wav``, ``.flac``, ...): analysis–resynthesis; read with
  :func:`wavegen.audio.io.read_audio` at the checkpoint's rate;
- ``.npy``: a natural-log mel ``[n_mels, F]`` (or ``[1, n_mels, F]``) as
  :func:`wavegen.audio.dsp.mel_spectrogram` makes it; an optional sidecar
  ``<name>.json`` with ``sample_rate`` / ``hop_length`` / ``n_mels`` is checked too;
- ``.npz``: a structured mel file with arrays ``mel`` and the scalars
  ``sample_rate`` and ``hop_length`` (all checked).

Every problem is a one-line :class:`WavegenError` naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_spectrogram
from wavegen.errors import WavegenError

MEL_EXTENSIONS = (".npy", ".npz")
# mel_spectrogram clamps magnitudes at 1e-5 before the natural log; anything far below
# that floor is another scale (decibels, say) and would be vocoded as near-silence.
LOG_FLOOR = math.log(1e-5)


@dataclass
class VocoderInput:
    """A mel Tensor[1, n_mels, F] to vocode, and what to trim and compare against."""

    log_mel: Tensor
    num_samples: int  # samples to keep from the vocoder's (F-1)·hop
    audio: Optional[Tensor] = None  # the input audio Tensor[T] for analysis–resynthesis


def _check_mel(mel: np.ndarray, path: Path, audio: AudioConfig) -> np.ndarray:
    if mel.dtype.kind not in "fiu":
        raise WavegenError(f"{path}: mel must hold real numbers, got dtype {mel.dtype}")
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2:
        raise WavegenError(f"{path}: expected a mel of shape [n_mels, frames], got shape {tuple(mel.shape)}")
    if mel.shape[0] != audio.n_mels:
        hint = " (transposed? expected [n_mels, frames])" if mel.shape[1] == audio.n_mels else ""
        raise WavegenError(
            f"{path}: mel has {mel.shape[0]} mel bins but the checkpoint uses n_mels={audio.n_mels}{hint}"
        )
    if mel.shape[1] < 2:
        raise WavegenError(f"{path}: mel has {mel.shape[1]} frame(s); at least 2 are needed")
    if not np.isfinite(mel).all():
        raise WavegenError(f"{path}: mel contains NaN or infinite values")
    if float(mel.min()) < LOG_FLOOR - 0.5:
        raise WavegenError(
            f"{path}: mel values go down to {float(mel.min()):.1f}, below the natural-log floor "
            f"{LOG_FLOOR:.1f}; expected wavegen's log mel (natural log of magnitudes), not decibels"
        )
    return mel.astype(np.float32)


def _check_settings(settings: dict, path: Path, audio: AudioConfig) -> None:
    for key in ("sample_rate", "hop_length", "n_mels"):
        if key in settings and settings[key] is not None:
            try:
                value = int(np.asarray(settings[key]).item())
            except (TypeError, ValueError):
                raise WavegenError(f"{path}: {key} must be a number, got {settings[key]!r}") from None
            expected = getattr(audio, key)
            if value != expected:
                raise WavegenError(f"{path}: {key}={value} but the checkpoint was trained with {key}={expected}")


def _load_npy(path: Path, audio: AudioConfig) -> np.ndarray:
    try:
        mel = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise WavegenError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())[:100]})") from None
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        try:
            settings = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise WavegenError(f"{sidecar}: not valid JSON ({' '.join(str(exc).split())[:100]})") from None
        if not isinstance(settings, dict):
            raise WavegenError(f"{sidecar}: expected a JSON object with sample_rate / hop_length")
        _check_settings(settings, sidecar, audio)
    return _check_mel(mel, path, audio)


def _load_npz(path: Path, audio: AudioConfig) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise WavegenError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())[:100]})") from None
    missing = [k for k in ("mel", "sample_rate", "hop_length") if k not in arrays]
    if missing:
        raise WavegenError(f"{path}: .npz mel files need arrays {', '.join(missing)} (have: {', '.join(arrays)})")
    _check_settings(arrays, path, audio)
    return _check_mel(arrays["mel"], path, audio)


def load_input(path: str | Path, audio: AudioConfig) -> VocoderInput:
    """A path given to `wavegen vocode` -> :class:`VocoderInput` (or a one-line error)."""
    path = Path(path)
    if not path.exists():
        raise WavegenError(f"input not found: {path}")
    if path.is_dir():
        raise WavegenError(f"expected a file but found a folder: {path}")
    hop = audio.hop_length
    suffix = path.suffix.lower()
    if suffix in MEL_EXTENSIONS:
        mel = _load_npy(path, audio) if suffix == ".npy" else _load_npz(path, audio)
        frames = mel.shape[1]
        return VocoderInput(torch.from_numpy(mel)[None], (frames - 1) * hop)
    from wavegen.audio.io import AUDIO_EXTENSIONS, read_audio

    if suffix not in AUDIO_EXTENSIONS:
        raise WavegenError(
            f"unsupported input '{suffix or path.name}' for {path}: give an audio file "
            f"({', '.join(AUDIO_EXTENSIONS)}) or a mel ({', '.join(MEL_EXTENSIONS)})"
        )
    wave = read_audio(path, audio.sample_rate)
    # Pad to whole hops so the mel's F frames describe exactly (F-1)·hop samples.
    padded = torch.nn.functional.pad(wave, (0, (-wave.shape[0]) % hop))
    log_mel = mel_spectrogram(padded, audio)[None]
    return VocoderInput(log_mel, wave.shape[0], wave)
