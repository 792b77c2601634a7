"""Searching a few-step noise schedule on held-out clips (WaveGrad, section 3.3 style).

Candidate betas come from the grid ``{1, ..., 9} × 10^k``. An exhaustive search
over N steps costs 9^N·decades^N evaluations, so we search coarse to fine by
coordinate descent under a monotone constraint (β_1 ≤ β_2 ≤ ... ≤ β_N):

1. coarse: each β_n in turn tries the powers of ten between its neighbours;
2. fine: each β_n tries the grid values within a decade of its current value
   (and between its neighbours);

repeating each stage while it improves. A move is kept only if it lowers the
score, and the starting schedule is scored first, so the result is never worse
than the start under the same score function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from wavegen.diffusion.schedules import NoiseSchedule

# β beyond this leaves almost no signal in one step; below the floor a step does nothing.
BETA_MIN = 1e-7
BETA_MAX = 0.9


def grid_values(low: float = BETA_MIN, high: float = BETA_MAX) -> list[float]:
    """``m × 10^k`` for m = 1..9 within [low, high], ascending, rounded to kill float noise."""
    values = []
    for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in range(1, 10):
            v = float(f"{m}e{k}")
            if low * (1 - 1e-9) <= v <= high * (1 + 1e-9):
                values.append(v)
    return values


@dataclass
class SearchResult:
    schedule: NoiseSchedule
    score: float
    start: NoiseSchedule
    start_score: float
    evaluations: int
    history: list[tuple[list[float], float]] = field(default_factory=list)  # every accepted move

    def summary(self) -> dict:
        return {
            "score": self.score,
            "start": self.start.to_list(),
            "start_score": self.start_score,
            "evaluations": self.evaluations,
        }


def search_schedule(
    score: Callable[[NoiseSchedule], float],
    start: NoiseSchedule,
    max_evaluations: int = 200,
    max_passes: int = 3,
    log: Callable[[str], None] = lambda s: None,
) -> SearchResult:
    """Coarse-to-fine coordinate descent of ``score`` (lower is better) from ``start``."""
    cache: dict[tuple[float, ...], float] = {}

    def evaluate(betas: list[float]) -> float:
        key = tuple(betas)
        if key not in cache:
            cache[key] = float(score(NoiseSchedule(key)))
        return cache[key]

    best = list(start.betas)
    best_score = evaluate(best)
    result = SearchResult(start, best_score, start, best_score, 1, [(list(best), best_score)])
    log(f"start {fmt(best)}: {best_score:.4f}")
    grid = grid_values()
    powers = [v for v in grid if abs(math.log10(v) - round(math.log10(v))) < 1e-9]

    def candidates(i: int, fine: bool) -> list[float]:
        lo = best[i - 1] if i > 0 else BETA_MIN
        hi = best[i + 1] if i + 1 < len(best) else BETA_MAX
        pool = grid if fine else powers
        if fine:
            pool = [v for v in pool if best[i] / 10 <= v <= best[i] * 10]
        return [v for v in pool if lo <= v <= hi and v != best[i]]

    for fine in (False, True):
        for _ in range(max_passes):
            improved = False
            for i in range(len(best)):
                for v in candidates(i, fine):
                    if len(cache) >= max_evaluations:
                        break
                    trial = best[:i] + [v] + best[i + 1 :]
                    s = evaluate(trial)
                    if s < best_score:
                        best, best_score, improved = trial, s, True
                        result.history.append((list(best), best_score))
                        log(f"{'fine' if fine else 'coarse'} β_{i + 1}={v:g}: {fmt(best)}: {best_score:.4f}")
            if not improved or len(cache) >= max_evaluations:
                break
    result.schedule = NoiseSchedule(tuple(best))
    result.score = best_score
    result.evaluations = len(cache)
    return result


def fmt(betas) -> str:
    return "[" + ", ".join(f"{b:.3g}" for b in betas) + "]"


def _mean_over_clips(model, clips: Tensor, audio_cfg, schedule: NoiseSchedule, metric, seed: int,
                     batch_size: int, mel_projection: int = 0) -> float:
    """``metric(reference, vocoded)`` averaged over clips Tensor[N, T], vocoded in batches; every call
    draws the same noise (seed + batch start), so differences come from the schedule, not the draw."""
    from wavegen.diffusion.samplers import sample
    from wavegen.diffusion.training import aligned_pair

    audio, log_mel = aligned_pair(clips, audio_cfg)
    total = 0.0
    for start in range(0, audio.shape[0], batch_size):
        generator = torch.Generator().manual_seed(seed + start)
        out = sample(model, log_mel[start : start + batch_size], schedule, generator, mel_projection=mel_projection)
        ref = audio[start : start + batch_size]
        total += float(metric(ref.cpu(), out.float().cpu())) * ref.shape[0]
    return total / audio.shape[0]


def log_mel_score(model, clips: Tensor, audio_cfg, seed: int = 0,
                  batch_size: int = 4) -> Callable[[NoiseSchedule], float]:
    """A score for :func:`search_schedule`: mean log-mel L1 of vocoded held-out clips Tensor[N, T]
    (T a multiple of the hop)."""
    from wavegen.audio.metrics import log_mel_l1

    def metric(ref, out):
        return log_mel_l1(ref, out, audio_cfg)

    return lambda schedule: _mean_over_clips(model, clips, audio_cfg, schedule, metric, seed, batch_size)


def mr_stft_score(model, clips: Tensor, audio_cfg, schedule: NoiseSchedule, mel_projection: int = 0, seed: int = 0,
                  batch_size: int = 4) -> float:
    """Mean MR-STFT of held-out clips Tensor[N, T] vocoded with ``schedule`` (same noise as :func:`log_mel_score`)."""
    from wavegen.audio.metrics import multi_resolution_stft_distance

    return _mean_over_clips(model, clips, audio_cfg, schedule, multi_resolution_stft_distance, seed, batch_size,
                            mel_projection)
