"""Few-step students trained from a diffusion vocoder, against the ground truth and its teacher.

For a batch of training clips and a shared starting noise, the student (initialised
from the teacher's weights) runs its 1- or 2-step schedule differentiably and is
scored on what it outputs:

    loss = truth_weight · MR-STFT(clip, student) + teacher_weight · MR-STFT(teacher, student)

The ground-truth term is what matters (a student regressed onto its teacher alone can
never beat it); the teacher term, the teacher's multi-step output from the *same*
start noise (:mod:`wavegen.diffusion.noise`), steadies the first iterations. Both are
phase-free: the teacher adds fresh noise between its steps, which the student cannot
see, so a waveform loss would pull it towards a blurred average.
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
from wavegen.audio.metrics import multi_resolution_stft_distance


@dataclass
class DistillSettings:
    iterations: int = 300
    lr: float = 1e-4
    grad_clip: float = 1.0
    truth_weight: float = 1.0
    teacher_weight: float = 0.5
    eta: float = 1.0
    seed: int = 0
    mel_projection: int = 0  # as the student will sample: its chain ends with this projection


def distillation_loss(student, teacher, audio: Tensor, log_mel: Tensor, student_schedule: NoiseSchedule,
                      teacher_schedule: NoiseSchedule, seed: int, truth_weight: float = 1.0,
                      teacher_weight: float = 0.5, eta: float = 1.0, mel_projection: int = 0) -> Tensor:
    """Scalar loss for clips Tensor[B, F·hop] and their mels Tensor[B, n_mels, F] (gradients reach ``student`` only)."""
    batch = log_mel.shape[0]
    output = reverse_process(student, log_mel, student_schedule, PositionalNoise(seed, batch, log_mel.device), eta=eta,
                             mel_projection=mel_projection)
    loss = truth_weight * multi_resolution_stft_distance(audio, output)
    if teacher_weight:
        with torch.no_grad():
            target = reverse_process(teacher, log_mel, teacher_schedule,
                                     PositionalNoise(seed, batch, log_mel.device), eta=eta,
                                     mel_projection=mel_projection)
        loss = loss + teacher_weight * multi_resolution_stft_distance(target, output)
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

    batches: yields training audio Tensor[B, T].
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
        audio, log_mel = aligned_pair(audio, audio_cfg)
        loss = distillation_loss(student, teacher, audio, log_mel, student_schedule, teacher_schedule,
                                 seed=settings.seed * 1_000_003 + it, truth_weight=settings.truth_weight,
                                 teacher_weight=settings.teacher_weight, eta=settings.eta,
                                 mel_projection=settings.mel_projection)
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
