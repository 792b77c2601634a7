"""``wavegen eval <target> ...``: objective evaluation, one sub-command per kind of model.

``eval`` is a group: each target registers a parser under it. The vocoder's
target lives here; another model family adds its own by putting a module name
in ``EVAL_MODULES`` whose ``register_eval(targets)`` adds a sub-parser.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from pathlib import Path

from wavegen.errors import WavegenError

# Modules (under wavegen.commands) that add targets to `wavegen eval`.
EVAL_MODULES: list[str] = ["tonality"]


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model on held-out audio (wavegen eval <target> ...)")
    targets = p.add_subparsers(dest="eval_target", metavar="<target>")
    targets.required = True
    _register_vocoder(targets)
    for name in EVAL_MODULES:
        importlib.import_module(f"wavegen.commands.{name}").register_eval(targets)


def _steps_list(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise WavegenError(f"--steps must be comma-separated integers, got {text!r}") from None
    if not steps or any(s < 1 for s in steps):
        raise WavegenError(f"--steps must list positive step counts, got {text!r}")
    return steps


def _register_vocoder(targets) -> None:
    p = targets.add_parser(
        "vocoder",
        help="log-mel L1, multi-resolution STFT distance, log-spectral distance and real-time factor",
        description="Vocode held-out clips from their mels with several step counts (and distilled students) "
        "and print metrics beside a Griffin-Lim reconstruction from the same mels.",
    )
    p.add_argument("checkpoint", help="a vocoder checkpoint")
    p.add_argument("source", help="held-out audio: a split of the checkpoint's dataset (validation, test) "
                   "or an audio file / folder")
    p.add_argument("--steps", default="50,25,6", help="step counts to evaluate (comma-separated); each uses "
                   "the checkpoint's stored schedule for that count, else the default one")
    p.add_argument("--student", action="append", default=[], metavar="CKPT",
                   help="a distilled student checkpoint to add as a row (repeatable)")
    p.add_argument("--clips", type=int, default=8, help="number of held-out clips")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--griffin-lim-iters", type=int, default=64, help="0 leaves the Griffin-Lim row out")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run_vocoder)


def run_vocoder(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.dsp import AudioConfig
    from wavegen.diffusion.schedules import default_schedule
    from wavegen.models.vocoder.checkpoint import load_vocoder, stored_schedule, vocoder_extra
    from wavegen.models.vocoder.evaluation import (evaluate_griffin_lim, evaluate_vocoder, format_table)
    from wavegen.models.vocoder.heldout import held_out_clips

    steps = _steps_list(args.steps)
    if args.clips < 1 or args.seconds <= 0:
        raise WavegenError("--clips must be at least 1 and --seconds positive")
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise WavegenError(f"output file already exists: {args.json} (pass --overwrite to replace it)")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, ckpt = load_vocoder(args.checkpoint)
    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    students = [load_vocoder(path) for path in args.student]
    for path, (_, student_ckpt) in zip(args.student, students):
        if student_ckpt["audio"] != ckpt["audio"]:
            raise WavegenError(f"{path} was trained with other audio settings than {args.checkpoint}")
    clips = held_out_clips(ckpt, args.source, args.clips, args.seconds)

    rows = []
    stored = (vocoder_extra(ckpt).get("schedules") or {})
    for n in steps:
        schedule = stored_schedule(ckpt, n)
        label = f"diffusion ({'searched' if str(n) in stored else 'default'} schedule)"
        rows.append(evaluate_vocoder(model, clips, audio_cfg, schedule, label, args.seed))
        print(f"  {rows[-1].name}, {n} steps: log-mel L1 {rows[-1].log_mel_l1:.4f}", flush=True)
        if str(n) in stored and stored[str(n)] != default_schedule(n).to_list():
            rows.append(evaluate_vocoder(model, clips, audio_cfg, default_schedule(n),
                                         "diffusion (default schedule)", args.seed))
    for path, (student, student_ckpt) in zip(args.student, students):
        schedule = stored_schedule(student_ckpt)
        rows.append(evaluate_vocoder(student, clips, audio_cfg, schedule, f"distilled {Path(path).name}", args.seed))
    if args.griffin_lim_iters > 0:
        rows.append(evaluate_griffin_lim(clips, audio_cfg, args.griffin_lim_iters))
    total_seconds = clips.numel() / audio_cfg.sample_rate
    print(format_table(rows, clips.shape[0], total_seconds))
    if args.json:
        from wavegen.audio.io import new_file_mode

        payload = {"checkpoint": str(args.checkpoint), "source": args.source, "clips": clips.shape[0],
                   "seconds": total_seconds, "threads": torch.get_num_threads(),
                   "rows": [r.to_dict() for r in rows]}
        tmp = Path(args.json).with_name(f".{Path(args.json).name}.tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, args.json)
    return 0
