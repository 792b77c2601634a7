"""``wavegen vocoder search-schedule|distill``: make a trained diffusion vocoder fast.

- ``search-schedule CKPT``: grid-search a few-step noise schedule on held-out clips,
  scored by log-mel L1, and store it in the checkpoint (atomic rewrite); ``wavegen
  vocode`` then uses it by default.
- ``distill CKPT -o STUDENT.pt``: train a 1- or 2-step student to reproduce the
  checkpoint's multi-step output, written as its own vocoder checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wavegen.errors import WavegenError


def register(sub) -> None:
    p = sub.add_parser("vocoder", help="diffusion vocoder tools: search-schedule, distill")
    actions = p.add_subparsers(dest="vocoder_command", metavar="<action>")
    actions.required = True

    s = actions.add_parser(
        "search-schedule",
        help="grid-search a few-step noise schedule and store it in the checkpoint",
        description="Coarse-to-fine coordinate search over betas in {1..9}x10^k (monotone), scored by the "
        "log-mel L1 of vocoded held-out clips. The best schedule is stored in the checkpoint (atomically) "
        "and becomes the default of `wavegen vocode`.",
    )
    s.add_argument("checkpoint", help="a vocoder checkpoint (rewritten in place unless --dry-run)")
    s.add_argument("--source", default="validation",
                   help="held-out audio: a split of the checkpoint's dataset, or an audio file / folder")
    s.add_argument("--steps", type=int, default=6, help="number of steps of the schedule to search")
    s.add_argument("--start", default="auto",
                   help="starting schedule: auto (best of the published and default ones), wavegrad, diffwave, "
                   "default, stored, or comma-separated betas")
    s.add_argument("--clips", type=int, default=4, help="held-out clips scored per schedule")
    s.add_argument("--seconds", type=float, default=1.0, help="length of each clip")
    s.add_argument("--max-evals", type=int, default=120, help="at most this many schedules are scored")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    s.add_argument("--mel-projection", default="0",
                   help="comma-separated mel-projection iteration counts to try after the schedule is found; the "
                        "one with the lowest MR-STFT on the same clips is stored (wavegen.audio.dsp.project_to_mel)")
    s.add_argument("--dry-run", action="store_true", help="print the result without storing it")
    s.set_defaults(func=run_search)

    d = actions.add_parser(
        "distill",
        help="distil a 1- or 2-step student from a trained vocoder",
        description="Train a copy of the vocoder to reproduce, in --steps steps, what the checkpoint's "
        "stored multi-step schedule produces from the same starting noise (L1 + multi-resolution STFT). "
        "The student is written as its own checkpoint; evaluate it with "
        "`wavegen eval vocoder TEACHER validation --student STUDENT`.",
    )
    d.add_argument("checkpoint", help="the teacher: a trained vocoder checkpoint")
    d.add_argument("-o", "--out", required=True, help="student checkpoint to write (.pt)")
    d.add_argument("--steps", type=int, default=1, choices=(1, 2), help="student steps")
    d.add_argument("--teacher-steps", type=int, default=None,
                   help="teacher steps (default: the checkpoint's stored default, usually the searched 6)")
    d.add_argument("--iterations", type=int, default=300)
    d.add_argument("--batch-size", type=int, default=4)
    d.add_argument("--seconds", type=float, default=0.48, help="length of each training segment")
    d.add_argument("--lr", type=float, default=1e-4)
    d.add_argument("--truth-weight", type=float, default=1.0,
                   help="weight of the student's MR-STFT distance to the training clip")
    d.add_argument("--teacher-weight", type=float, default=0.5,
                   help="weight of its MR-STFT distance to the teacher's output from the same noise")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing student checkpoint")
    d.set_defaults(func=run_distill)


def _starting_points(spec: str, steps: int, ckpt: dict):
    from wavegen.diffusion.schedules import DIFFWAVE_FAST_6, WAVEGRAD_6, NoiseSchedule, default_schedule
    from wavegen.models.vocoder.checkpoint import stored_schedule

    published = {"wavegrad": WAVEGRAD_6, "diffwave": DIFFWAVE_FAST_6}
    if spec == "auto":
        points = {"default": default_schedule(steps), "stored": stored_schedule(ckpt, steps)}
        if steps == 6:
            points.update({name: NoiseSchedule(b) for name, b in published.items()})
        return points
    if spec in published:
        if steps != 6:
            raise WavegenError(f"--start {spec} is a 6-step schedule but --steps is {steps}")
        return {spec: NoiseSchedule(published[spec])}
    if spec == "default":
        return {spec: default_schedule(steps)}
    if spec == "stored":
        return {spec: stored_schedule(ckpt, steps)}
    try:
        betas = tuple(float(b) for b in spec.split(","))
    except ValueError:
        raise WavegenError(f"--start must be auto, wavegrad, diffwave, default, stored or comma-separated betas, "
                           f"got {spec!r}") from None
    if len(betas) != steps:
        raise WavegenError(f"--start lists {len(betas)} betas but --steps is {steps}")
    if list(betas) != sorted(betas):
        raise WavegenError("--start betas must be non-decreasing (the search keeps schedules monotone)")
    return {"given": NoiseSchedule(betas)}


def run_search(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.dsp import AudioConfig
    from wavegen.diffusion.schedules import NoiseSchedule
    from wavegen.diffusion.search import fmt, log_mel_score, mr_stft_score, search_schedule
    from wavegen.models.vocoder.checkpoint import load_vocoder, store_schedule, update_vocoder_extra
    from wavegen.evaluation.heldout import held_out_clips

    if args.steps < 1:
        raise WavegenError(f"--steps must be at least 1, got {args.steps}")
    try:
        projections = sorted({int(k) for k in str(args.mel_projection).split(",") if k.strip()})
    except ValueError:
        raise WavegenError(f"--mel-projection takes comma-separated whole numbers, got {args.mel_projection!r}") from None
    if not projections or min(projections) < 0:
        raise WavegenError(f"--mel-projection needs counts of 0 or more, got {args.mel_projection!r}")
    if args.clips < 1 or args.seconds <= 0 or args.max_evals < 1:
        raise WavegenError("--clips and --max-evals must be at least 1 and --seconds positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, ckpt = load_vocoder(args.checkpoint)
    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    starts = _starting_points(args.start, args.steps, ckpt)
    clips = held_out_clips(ckpt, args.source, args.clips, args.seconds)
    score = log_mel_score(model, clips, audio_cfg, seed=args.seed)
    scored = {}
    for name, schedule in starts.items():
        if schedule.betas not in {s.betas for s, _ in scored.values()}:
            scored[name] = (schedule, score(schedule))
            print(f"start {name:8s} {fmt(schedule.betas)}: log-mel L1 {scored[name][1]:.4f}", flush=True)
    name, (start, _) = min(scored.items(), key=lambda kv: kv[1][1])
    # The search keeps schedules monotone, so it starts from the sorted betas.
    monotone = NoiseSchedule(tuple(sorted(start.betas)))
    result = search_schedule(score, monotone, max_evaluations=args.max_evals,
                             log=lambda s: print(s, flush=True))
    info = {**result.summary(), "start_name": name, "source": args.source, "clips": int(clips.shape[0]),
            "seconds": args.seconds, "seed": args.seed}
    print(f"best {fmt(result.schedule.betas)}: log-mel L1 {result.score:.4f} "
          f"(start {name} {result.start_score:.4f}, {result.evaluations} schedules scored)")
    projection = projections[0]
    if len(projections) > 1:
        scores = {k: mr_stft_score(model, clips, audio_cfg, result.schedule, k, seed=args.seed) for k in projections}
        for k, value in scores.items():
            print(f"mel projection x{k}: MR-STFT {value:.4f}", flush=True)
        projection = min(scores, key=scores.get)
        info["mel_projection_mr_stft"] = {str(k): v for k, v in scores.items()}
    if args.dry_run:
        return 0
    store_schedule(args.checkpoint, result.schedule, make_default=True, search_info=info)
    update_vocoder_extra(args.checkpoint, {"mel_projection": projection})
    print(f"stored the {args.steps}-step schedule and {projection} mel-projection iteration(s) in {args.checkpoint}")
    return 0


def _training_batches(ckpt: dict, batch_size: int, seconds: float, seed: int):
    from omegaconf import OmegaConf

    from wavegen.data import build_sampler

    config = ckpt.get("config") or {}
    if "data" not in config:
        raise WavegenError("the teacher checkpoint stores no data config to distil on")
    hop = int(ckpt["audio"]["hop_length"])
    segment = max(1, int(seconds * int(ckpt["audio"]["sample_rate"])) // hop) * hop
    cfg = OmegaConf.create({**config, "seed": seed,
                            "train": {**config.get("train", {}), "batch_size": batch_size, "segment_length": segment}})
    sampler = build_sampler(cfg, "train")
    step = 0
    while True:
        yield sampler.batch(step)["audio"]
        step += 1


def run_distill(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.dsp import AudioConfig
    from wavegen.diffusion.distill import DistillSettings, distill
    from wavegen.models.vocoder.checkpoint import load_vocoder, save_student, stored_mel_projection, stored_schedule

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise WavegenError(f"output file already exists: {out} (pass --overwrite to replace it)")
    if args.iterations < 1 or args.batch_size < 1 or args.seconds <= 0 or args.lr <= 0:
        raise WavegenError("--iterations and --batch-size must be at least 1; --seconds and --lr positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher, ckpt = load_vocoder(args.checkpoint)
    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    teacher_schedule = stored_schedule(ckpt, args.teacher_steps)
    student_schedule = stored_schedule(ckpt, args.steps)
    if len(student_schedule) >= len(teacher_schedule):
        raise WavegenError(f"the student ({args.steps} steps) must take fewer steps than the teacher "
                           f"({len(teacher_schedule)})")
    settings = DistillSettings(iterations=args.iterations, lr=args.lr, truth_weight=args.truth_weight,
                               teacher_weight=args.teacher_weight, seed=args.seed,
                               mel_projection=stored_mel_projection(ckpt))
    batches = _training_batches(ckpt, args.batch_size, args.seconds, args.seed)
    student, losses = distill(teacher, teacher_schedule, student_schedule, batches, audio_cfg, settings,
                              log=lambda s: print(s, flush=True))
    info = {"teacher": str(args.checkpoint), "teacher_schedule": teacher_schedule.to_list(),
            "steps": len(student_schedule), "iterations": args.iterations, "batch_size": args.batch_size,
            "seconds": args.seconds, "lr": args.lr, "truth_weight": args.truth_weight,
            "teacher_weight": args.teacher_weight,
            "first_loss": losses[0], "final_loss": sum(losses[-10:]) / len(losses[-10:]),
            "steps_trained": args.iterations}
    save_student(out, ckpt, student, student_schedule, info, overwrite=args.overwrite)
    print(f"wrote {out}: a {len(student_schedule)}-step student of {args.checkpoint} "
          f"({len(teacher_schedule)} steps); loss {info['first_loss']:.4f} -> {info['final_loss']:.4f}")
    return 0
