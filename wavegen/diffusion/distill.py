"""Few-step students distilled from a trained diffusion vocoder.

Direct regression onto the teacher's output: for a batch of training mels and a
shared starting noise, the teacher runs its multi-step schedule (no gradients)
and the student, initialised from the teacher's weights, runs a 1- or 2-step
schedule from the *same* start noise (see :mod:`wavegen.diffusion.noise`). The
student is trained to make its output match the teacher's:

    loss = |student - teacher|₁ + MR-STFT(teacher, student)

The teacher adds fresh noise between its steps, which the student cannot see,
so the waveform L1 alone would pull the student towards a blurred average; the
multi-resolution STFT term (phase-free) keeps the spectral detail.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.noise import PositionalNoise
from wavegen.diffusion.samplers import reverse_process
from wavegen.diffusion.schedules import NoiseSchedule
from wavegen.diffusion.training import aligned_pair
from wavegen.metrics import multi_resolution_stft_distance


@dataclass
class DistillSettings:
    iterations: int = 300
    lr: float = 1e-4
    grad_clip: float = 1.0
    stft_weight: float = 1.0
    seed: int = 0


def distillation_loss(student, teacher, log_mel: Tensor, student_schedule: NoiseSchedule,
                      teacher_schedule: NoiseSchedule, seed: int, stft_weight: float = 1.0) -> Tensor:
    """Scalar loss for one batch of mels Tensor[B, n_mels, F] (gradients flow into ``student`` only)."""
    batch = log_mel.shape[0]
    with torch.no_grad():
        target = reverse_process(teacher, log_mel, teacher_schedule, PositionalNoise(seed, batch, log_mel.device))
    output = reverse_process(student, log_mel, student_schedule, PositionalNoise(seed, batch, log_mel.device))
    loss = (output - target).abs().mean()
    if stft_weight:
        loss = loss + stft_weight * multi_resolution_stft_distance(target, output)
    return loss


def distill(
    teacher,
    teacher_schedule: NoiseSchedule,
    student_schedule: NoiseSchedule,
    batches: Iterator[Tensor],
    audio_cfg: AudioConfig,
    settings: DistillSettings = DistillSettings(),
    log: Callable[[str], None] = lambda s: None,
):
    """Train and return a student (a copy of ``teacher``) for ``student_schedule``.

    batches: yields training audio Tensor[B, T]; only their mels are used.
    Returns (student in eval mode, list of per-iteration losses).
    """
    teacher = teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(teacher).train()
    for p in student.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.lr)
    losses = []
    t0 = time.perf_counter()
    for it in range(settings.iterations):
        audio = next(batches)
        _, log_mel = aligned_pair(audio, audio_cfg)
        loss = distillation_loss(student, teacher, log_mel, student_schedule, teacher_schedule,
                                 seed=settings.seed * 1_000_003 + it, stft_weight=settings.stft_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), settings.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (it + 1) % 10 == 0 or it + 1 == settings.iterations:
            recent = sum(losses[-10:]) / len(losses[-10:])
            log(f"distill {it + 1}/{settings.iterations}: loss {recent:.4f} ({time.perf_counter() - t0:.0f} s)")
    for p in student.parameters():
        p.requires_grad_(False)
    return student.eval(), losses
