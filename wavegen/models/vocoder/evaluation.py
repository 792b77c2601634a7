"""Objective evaluation of vocoders on held-out clips, with Griffin-Lim as a reference row.

Each row vocodes the clips' mels one clip at a time (a single stream, as a user
would) and reports log-mel L1, multi-resolution STFT distance, log-spectral
distance (all lower is better) and the real-time factor of the vocoding alone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, griffin_lim, mel_spectrogram
from wavegen.diffusion.schedules import NoiseSchedule
from wavegen.metrics import log_mel_l1, log_spectral_distance, multi_resolution_stft_distance, real_time_factor


@dataclass
class EvalRow:
    name: str
    steps: Optional[int]
    log_mel_l1: float
    mr_stft: float
    lsd_db: float
    rtf: float

    def to_dict(self) -> dict:
        return asdict(self)


def _score(name: str, steps: Optional[int], references: Tensor, outputs: list[Tensor], seconds: float,
           audio_cfg: AudioConfig) -> EvalRow:
    est = torch.stack([o.float().cpu() for o in outputs])
    ref = references.float().cpu()
    return EvalRow(
        name=name,
        steps=steps,
        log_mel_l1=float(log_mel_l1(ref, est, audio_cfg)),
        mr_stft=float(multi_resolution_stft_distance(ref, est)),
        lsd_db=float(log_spectral_distance(ref, est)),
        rtf=real_time_factor(seconds, ref.numel(), audio_cfg.sample_rate),
    )


def _timed(fn: Callable[[], Tensor]) -> tuple[Tensor, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def evaluate_vocoder(model, clips: Tensor, audio_cfg: AudioConfig, schedule: NoiseSchedule, name: str,
                     seed: int = 0) -> EvalRow:
    """Vocode each clip of Tensor[N, T] (T a multiple of the hop) from its mel and score it."""
    from wavegen.diffusion.samplers import sample
    from wavegen.diffusion.training import aligned_pair

    audio, log_mel = aligned_pair(clips, audio_cfg)
    outputs, seconds = [], 0.0
    sample(model, log_mel[:1, :, :8], schedule, torch.Generator().manual_seed(seed))  # warm-up
    for i in range(audio.shape[0]):
        generator = torch.Generator().manual_seed(seed + i)
        out, dt = _timed(lambda: sample(model, log_mel[i : i + 1], schedule, generator)[0])
        outputs.append(out)
        seconds += dt
    return _score(name, len(schedule), audio, outputs, seconds, audio_cfg)


def evaluate_griffin_lim(clips: Tensor, audio_cfg: AudioConfig, n_iter: int = 64) -> EvalRow:
    """The classical baseline: mel inversion + Griffin-Lim from the same mels."""
    outputs, seconds = [], 0.0
    T = clips.shape[-1]
    for i in range(clips.shape[0]):
        log_mel = mel_spectrogram(clips[i : i + 1], audio_cfg)
        torch.manual_seed(i)  # GriffinLim's random initial phase
        out, dt = _timed(lambda: griffin_lim(log_mel, audio_cfg, n_iter=n_iter)[0])
        out = torch.nn.functional.pad(out, (0, max(0, T - out.shape[-1])))[:T]
        outputs.append(out)
        seconds += dt
    return _score(f"griffin-lim ({n_iter} it)", None, clips, outputs, seconds, audio_cfg)


def format_table(rows: list[EvalRow], clips: int, seconds: float) -> str:
    header = f"{'vocoder':34s} {'steps':>5s} {'log-mel L1':>10s} {'MR-STFT':>8s} {'LSD dB':>7s} {'RTF':>7s}"
    lines = [f"{clips} held-out clips, {seconds:.1f} s of audio in all; lower is better everywhere", header,
             "-" * len(header)]
    for r in rows:
        steps = "-" if r.steps is None else str(r.steps)
        lines.append(f"{r.name:34s} {steps:>5s} {r.log_mel_l1:10.4f} {r.mr_stft:8.4f} {r.lsd_db:7.2f} {r.rtf:7.3f}")
    return "\n".join(lines)
