"""Primed continuation, and the figures it is judged by (issue 12's acceptance for ``piano-tiny``).

A model continues each 1 s prompt for a few seconds, several independent draws per
prompt; each draw is measured with :func:`wavegen.audio.metrics.tonality_figures` against its
prompt, and the medians are compared with the prompt's own figures:

- peak-energy share at least :data:`MIN_PEAK_SHARE` (pitched, not noise);
- chroma entropy at most the prompt's + :data:`MAX_CHROMA_RISE` bits (the harmony kept);
- RMS at least the prompt's - :data:`MAX_RMS_DROP` dB (it did not fade into silence);
- no draw copies its prompt (no 0.25 s window correlates >= 0.9 with any part of it).

:func:`teacher_forced_bits` scores a model's likelihood in bits per sample, the units of the
LPC baseline (:func:`wavegen.nn.lpc.lpc_nll_bits`) on the same clips.
"""

from __future__ import annotations

import math
import statistics
from typing import Optional

import torch
from torch import Tensor

from wavegen.generate.onsets import needs_onsets, onset_plan
from wavegen.generate.sampling import generate_tokens
from wavegen.audio.metrics import chroma_entropy, tonality_figures

MIN_PEAK_SHARE = 0.5
MAX_CHROMA_RISE = 0.3
MAX_RMS_DROP = 12.0
FIGURES = ("peak_energy_share", "chroma_entropy", "rms_dbfs", "copy_score")


@torch.no_grad()
def teacher_forced_bits(model, clips: Tensor, batch: int = 4) -> float:
    """Mean negative log-likelihood in bits per sample of Tensor[N, T] clips, each read from silence.

    A model told onsets reads each clip's own (as in training): its likelihood given where the notes
    were struck. That knowledge is worth little in bits (piano-tiny fine-tuned with it: 3.041 against
    3.044 on the validation pieces), since the network cannot know which notes are struck.
    """
    total = 0.0
    for part in clips.split(batch):
        tokens = model.head.encode(part)
        inputs = torch.cat([model.head.silence(tokens.shape[0], tokens.device)[:, None], tokens[:, :-1]], dim=1)
        local = model.onsets(part) if needs_onsets(model) else None
        total += float(model.head.nll(model(inputs, local), tokens).double().sum())
    return total / clips.numel() / math.log(2)


@torch.no_grad()
def continue_prompt(model, prompt: Tensor, samples: int, draws: int = 4, seed: int = 0, chunk: int = 4000,
                    local: Optional[Tensor] = None, **controls) -> Tensor:
    """Tensor[P] prompt -> Tensor[draws, samples]: independent continuations (audio after the prompt).

    local: Tensor[C, F] conditioning frames covering prompt and continuation, the same for every draw. A
    model told onsets gets, without them, the default plan (:func:`~wavegen.generate.onsets.onset_plan`).
    controls: ``temperature``, ``top_p``, ``mixture_temperature`` (:class:`~wavegen.generate.sampling.SamplingControls`).
    """
    tokens = model.head.encode(prompt)[None].repeat(draws, 1)
    generator = torch.Generator().manual_seed(seed)
    if local is None:  # a model told onsets: the default plan; any other: None
        local = onset_plan(model, prompt[None], draws, samples)
    else:
        local = local[None].expand(draws, -1, -1)
    parts = generate_tokens(model, samples, batch_size=draws, prompt_tokens=tokens, generator=generator,
                            chunk_size=chunk, local=local, **controls)
    return model.head.decode(torch.cat(list(parts), dim=1)).float()


def judge(prompt_row: dict, draws: list[dict]) -> dict:
    """The prompt's figures and its continuations' rows -> medians and each acceptance check (True = met)."""
    median = {}
    for key in FIGURES:
        values = [row[key] for row in draws if row[key] == row[key]]  # chroma entropy is NaN for silence
        median[key] = statistics.median(values) if values else float("nan")
    return {
        "median": median,
        "copies": sum(bool(row["copies"]) for row in draws),
        "checks": {
            "peak_energy_share": median["peak_energy_share"] >= MIN_PEAK_SHARE,
            "chroma_entropy": median["chroma_entropy"] <= prompt_row["chroma_entropy"] + MAX_CHROMA_RISE,
            "rms_dbfs": median["rms_dbfs"] >= prompt_row["rms_dbfs"] - MAX_RMS_DROP,
            "no_copy": not any(row["copies"] for row in draws),
        },
    }


def simplest_prompts(clips: Tensor, sample_rate: int, count: int, prompt_samples: int) -> Tensor:
    """Tensor[N, T] clips -> Tensor[count, T]: those whose first ``prompt_samples`` have the lowest chroma entropy.

    Loudest-first clip choices are dense chords; a continuation must also keep a simple harmony (one note,
    an open fifth), so this picks the prompts of simplest harmony among them (lowest first).
    """
    entropy = torch.tensor([chroma_entropy(clip[:prompt_samples], sample_rate) for clip in clips])
    return clips[entropy.nan_to_num(float("inf")).argsort()[:count]]


def prompts_met(report: dict) -> int:
    """How many prompts of a :func:`continuation_report` meet every check on their own draws' medians."""
    return sum(all(p["checks"].values()) for p in report["prompts"])


def continuation_report(model, prompts: Tensor, sample_rate: int, seconds: float = 2.0, draws: int = 4,
                        seed: int = 0, local: Optional[Tensor] = None, **controls) -> dict:
    """Continue every row of Tensor[N, P] prompts; per prompt its figures, its draws' rows and :func:`judge`.

    local: Tensor[N, C, F], each prompt's conditioning frames (see :func:`continue_prompt`).

    ``overall`` judges all draws together against the prompts' median figures.
    """
    per_prompt, all_rows, prompt_rows = [], [], []
    for i, prompt in enumerate(prompts):
        audio = continue_prompt(model, prompt, int(round(seconds * sample_rate)), draws, seed + i,
                                local=None if local is None else local[i], **controls)
        prompt_row = tonality_figures(prompt, sample_rate)
        rows = [tonality_figures(a, sample_rate, prompt) for a in audio]
        per_prompt.append({"prompt": prompt_row, "draws": rows, **judge(prompt_row, rows)})
        all_rows += rows
        prompt_rows.append(prompt_row)
    prompts_median = {k: statistics.median(r[k] for r in prompt_rows)
                      for k in ("peak_energy_share", "chroma_entropy", "rms_dbfs")}
    return {"prompts": per_prompt, "prompt_median": prompts_median, "overall": judge(prompts_median, all_rows)}


