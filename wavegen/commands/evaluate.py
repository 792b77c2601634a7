"""``wavegen eval <target> ...``: objective evaluation, one sub-command per kind of model.

``eval`` is a group: each target registers a parser under it. The vocoder's
target lives here; another model family adds its own by putting a module name
in ``EVAL_MODULES`` whose ``register_eval(targets)`` adds a sub-parser.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from wavegen.errors import WavegenError

# Modules (under wavegen.commands) that add targets to `wavegen eval`.
EVAL_MODULES: list[str] = ["tonality", "continuation"]


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
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="evaluate only the first this many seconds of each piece (0: whole pieces)")
    p.add_argument("--seeds", type=int, default=3, help="noise seeds per row (mean and spread are reported)")
    p.add_argument("--seed", type=int, default=0, help="the first noise seed")
    p.add_argument("--eta", type=float, default=1.0,
                   help="sampler stochasticity, 0 (deterministic) .. 1 (DDPM, the default)")
    p.add_argument("--mel-projection", type=int, default=None,
                   help="mel-projection iterations that finish each vocoding (default: the checkpoint's stored "
                        "count; a row without it is added at the default step count when that count is above 0)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--griffin-lim-iters", type=int, default=64, help="0 leaves the Griffin-Lim row out")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run_vocoder)


def run_vocoder(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.dsp import AudioConfig
    from wavegen.diffusion.schedules import default_schedule
    from wavegen.models.vocoder.checkpoint import load_vocoder, stored_mel_projection, stored_schedule, vocoder_extra
    from wavegen.evaluation.vocoder import evaluate_griffin_lim, evaluate_vocoder, format_table
    from wavegen.evaluation.heldout import held_out_pieces

    steps = _steps_list(args.steps)
    if args.seeds < 1 or args.max_seconds < 0:
        raise WavegenError("--seeds must be at least 1 and --max-seconds not negative")
    if not 0.0 <= args.eta <= 1.0:
        raise WavegenError(f"--eta must lie in [0, 1], got {args.eta}")
    if args.mel_projection is not None and args.mel_projection < 0:
        raise WavegenError(f"--mel-projection must be 0 or more, got {args.mel_projection}")
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
    pieces = held_out_pieces(ckpt, args.source, args.max_seconds)
    seeds = list(range(args.seed, args.seed + args.seeds))
    eta = args.eta
    log = lambda line: print(line, flush=True)  # noqa: E731

    rows = []
    stored = (vocoder_extra(ckpt).get("schedules") or {})
    projection = stored_mel_projection(ckpt) if args.mel_projection is None else args.mel_projection
    suffix = f" + mel projection ×{projection}" if projection else ""
    for n in steps:
        schedule = stored_schedule(ckpt, n)
        label = f"diffusion ({'searched' if str(n) in stored else 'default'} schedule){suffix}"
        rows.append(evaluate_vocoder(model, pieces, audio_cfg, schedule, label, seeds, eta, log, projection))
        if str(n) in stored and stored[str(n)] != default_schedule(n).to_list():
            rows.append(evaluate_vocoder(model, pieces, audio_cfg, default_schedule(n),
                                         f"diffusion (default schedule){suffix}", seeds, eta, log, projection))
        if projection and n == len(stored_schedule(ckpt)):
            rows.append(evaluate_vocoder(model, pieces, audio_cfg, schedule, label.replace(suffix, "") +
                                         ", no mel projection", seeds, eta, log, 0))
    for path, (student, student_ckpt) in zip(args.student, students):
        student_projection = stored_mel_projection(student_ckpt) if args.mel_projection is None else projection
        rows.append(evaluate_vocoder(student, pieces, audio_cfg, stored_schedule(student_ckpt),
                                     f"distilled {Path(path).name}" +
                                     (f" + mel projection ×{student_projection}" if student_projection else ""),
                                     seeds, eta, log, student_projection))
    if args.griffin_lim_iters > 0:
        rows.append(evaluate_griffin_lim(pieces, audio_cfg, args.griffin_lim_iters, seeds, log))
    total_seconds = sum(p.shape[-1] for p in pieces) / audio_cfg.sample_rate
    print(format_table(rows, len(pieces), total_seconds))
    if args.json:
        from wavegen.data.files import write_json_atomic

        payload = {"checkpoint": str(args.checkpoint), "source": args.source, "pieces": len(pieces),
                   "seconds": total_seconds, "seeds": seeds, "eta": eta, "threads": torch.get_num_threads(),
                   "rows": [r.to_dict() for r in rows]}
        write_json_atomic(Path(args.json), payload)
    return 0
