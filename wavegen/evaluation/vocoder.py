"""Objective evaluation of vocoders on whole held-out pieces, with Griffin-Lim beside them.

Every row vocodes each piece's whole mel the way a user would (chunked, one stream,
:func:`wavegen.diffusion.samplers.vocode`), once per noise seed, and reports the
metrics of :mod:`wavegen.audio.metrics` — log-mel L1, MR-STFT, log-spectral distance (lower
is better), the peak-energy share (the share of energy in narrow spectral peaks:
higher is more pitched) — and the real-time factor of the vocoding alone. Each figure
is the duration-weighted mean over pieces; a row gives the mean over seeds and their
spread (half the range). Griffin-Lim starts from random phases, so it gets seeds too.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, griffin_lim, mel_spectrogram
from wavegen.diffusion.schedules import NoiseSchedule
from wavegen.audio.metrics import (
    log_mel_l1,
    log_spectral_distance,
    multi_resolution_stft_distance,
    peak_energy_share,
    real_time_factor,
)

METRICS = ("log_mel_l1", "mr_stft", "lsd_db", "peak_share")


@dataclass
class EvalRow:
    name: str
    steps: Optional[int]
    log_mel_l1: float
    mr_stft: float
    lsd_db: float
    peak_share: float
    rtf: float
    seeds: int = 1
    spread: dict = field(default_factory=dict)  # metric -> half the range over seeds

    def to_dict(self) -> dict:
        return asdict(self)


def score_piece(reference: Tensor, estimate: Tensor, audio_cfg: AudioConfig) -> dict:
    """Tensor[T], Tensor[T] -> {metric: float} (the estimate is cut or zero-padded to T)."""
    T = reference.shape[-1]
    estimate = torch.nn.functional.pad(estimate.float().cpu(), (0, max(0, T - estimate.shape[-1])))[:T]
    reference = reference.float().cpu()
    return {
        "log_mel_l1": float(log_mel_l1(reference, estimate, audio_cfg)),
        "mr_stft": float(multi_resolution_stft_distance(reference, estimate)),
        "lsd_db": float(log_spectral_distance(reference, estimate)),
        "peak_share": peak_energy_share(estimate),
    }


def _row(name: str, steps: Optional[int], per_seed: list[dict], seconds: float, samples: int,
         audio_cfg: AudioConfig) -> EvalRow:
    mean = {k: sum(s[k] for s in per_seed) / len(per_seed) for k in METRICS}
    spread = {k: (max(s[k] for s in per_seed) - min(s[k] for s in per_seed)) / 2 for k in METRICS}
    rtf = real_time_factor(seconds, samples, audio_cfg.sample_rate)
    return EvalRow(name=name, steps=steps, rtf=rtf, seeds=len(per_seed), spread=spread, **mean)


def _evaluate(name: str, steps: Optional[int], pieces: Sequence[Tensor], audio_cfg: AudioConfig,
              render: Callable[[Tensor, int], Tensor], seeds: Sequence[int],
              log: Callable[[str], None]) -> EvalRow:
    """``render(log_mel Tensor[1, n_mels, F], seed) -> Tensor[T]`` for every piece and seed."""
    per_seed, seconds, samples = [], 0.0, 0
    total = sum(p.shape[-1] for p in pieces)
    for seed in seeds:
        sums = dict.fromkeys(METRICS, 0.0)
        for piece in pieces:
            log_mel = mel_spectrogram(piece[None].float(), audio_cfg)
            t0 = time.perf_counter()
            out = render(log_mel, seed)
            seconds += time.perf_counter() - t0
            samples += piece.shape[-1]
            for k, v in score_piece(piece, out, audio_cfg).items():
                sums[k] += v * piece.shape[-1] / total
        per_seed.append(sums)
        log(f"  {name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in sums.items()))
    return _row(name, steps, per_seed, seconds, samples, audio_cfg)


def evaluate_vocoder(model, pieces: Sequence[Tensor], audio_cfg: AudioConfig, schedule: NoiseSchedule, name: str,
                     seeds: Sequence[int] = (0, 1, 2), eta: float = 1.0,
                     log: Callable[[str], None] = lambda s: None, mel_projection: int = 0) -> EvalRow:
    """Vocode every piece Tensor[T] from its whole mel, once per seed, and score it."""
    from wavegen.diffusion.samplers import vocode

    def render(log_mel: Tensor, seed: int) -> Tensor:
        return vocode(model, log_mel, schedule, torch.Generator().manual_seed(seed), eta=eta,
                      mel_projection=mel_projection)[0]

    return _evaluate(name, len(schedule), pieces, audio_cfg, render, seeds, log)


def evaluate_griffin_lim(pieces: Sequence[Tensor], audio_cfg: AudioConfig, n_iter: int = 64,
                         seeds: Sequence[int] = (0, 1, 2), log: Callable[[str], None] = lambda s: None) -> EvalRow:
    """The classical baseline from the same mels: pseudo-inverse mel filterbank + Griffin-Lim."""

    def render(log_mel: Tensor, seed: int) -> Tensor:
        torch.manual_seed(seed)  # GriffinLim draws its initial phases from the global generator
        return griffin_lim(log_mel, audio_cfg, n_iter=n_iter)[0]

    return _evaluate(f"griffin-lim ({n_iter} it)", None, pieces, audio_cfg, render, seeds, log)


def format_table(rows: list[EvalRow], pieces: int, seconds: float) -> str:
    """A markdown table: mean ± spread over seeds for every metric."""
    lines = [
        f"{pieces} held-out piece(s), {seconds:.1f} s of audio; mean ± half-range over seeds. "
        "Lower is better except for the peak-energy share.",
        "",
        "| vocoder | steps | log-mel L1 | MR-STFT | LSD dB | peak share | RTF |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = "-" if r.steps is None else str(r.steps)
        cells = [f"{getattr(r, k):.3f} ± {r.spread.get(k, 0.0):.3f}" for k in ("log_mel_l1", "mr_stft")]
        cells.append(f"{r.lsd_db:.2f} ± {r.spread.get('lsd_db', 0.0):.2f}")
        cells.append(f"{r.peak_share:.3f} ± {r.spread.get('peak_share', 0.0):.3f}")
        lines.append(f"| {r.name} | {steps} | " + " | ".join(cells) + f" | {r.rtf:.3f} |")
    return "\n".join(lines)
