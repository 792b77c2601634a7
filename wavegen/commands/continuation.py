"""``wavegen eval continuation MODEL``: does an autoregressive model continue piano as piano?

Issue 12's acceptance measurement, for a WaveNet checkpoint or a shipped model's name.
Clips of ``--clip-seconds`` (3 s), ``--clips`` of them:

- ``--source validation`` (default) / ``train`` / ``test``: the loudest clips of that split of
  the dataset the Hydra overrides select (default: the embedded piano set in both renderings,
  what ``piano-tiny`` trained on; its validation pieces are held out from training);
- ``--source unseen``: corpus pieces the embedded set never selects, rendered by every
  installed SoundFont except FluidR3 (pianos no training data used; :mod:`wavegen.data.unseen`).

``--select simplest`` keeps, of ``--pool`` such clips per set, the ``--clips`` whose prompt has the
lowest chroma entropy (simple harmony, which loudest-first choices miss).

Per set of clips: teacher-forced NLL of each whole clip in bits per sample, beside the LPC
baseline (order 32, window 1024, refit 256) and, for a model with its own predictor, that
predictor's logistic alone; then each clip's first second is a prompt, ``--draws`` independent
continuations of ``--seconds`` are drawn at the model's default sampling settings (a shipped
model's registry entry, a checkpoint's training config's ``sampling`` block; or those given) and
judged (:mod:`wavegen.generate.continuation`). Choose sampling settings with ``--source train``,
never on the clips you report.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from wavegen.errors import WavegenError

SOURCES = ("validation", "train", "test", "unseen")


def register_eval(targets) -> None:
    p = targets.add_parser(
        "continuation",
        help="likelihood against the LPC baseline and primed continuations judged by pitch, harmony, level, copying",
        description="Score a WaveNet (a checkpoint or a shipped name) on held-out piano: teacher-forced NLL beside "
        "the LPC baseline, and continuations of 1 s prompts judged by peak-energy share (>= 0.5), chroma entropy "
        "(<= the prompt's + 0.3), RMS (>= the prompt's - 12 dB) and prompt copying.",
    )
    p.add_argument("model", help="a WaveNet checkpoint or a shipped model's name (e.g. piano-tiny)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides selecting the dataset (default: the embedded set in "
                   "both renderings, data.renderer=both)")
    p.add_argument("--source", default="validation", choices=SOURCES)
    p.add_argument("--clips", type=int, default=4, help="clips per set (unseen: pieces per SoundFont)")
    p.add_argument("--select", default="loudest", choices=("loudest", "simplest"),
                   help="the loudest clips (unseen: the first pieces), or the prompts of simplest harmony (lowest "
                   "chroma entropy) among --pool")
    p.add_argument("--pool", type=int, default=None, help="--select simplest: clips (unseen: pieces) to choose "
                   "from (default 4 x --clips)")
    p.add_argument("--clip-seconds", type=float, default=3.0)
    p.add_argument("--prompt-seconds", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=2.0, help="seconds continued after each prompt")
    p.add_argument("--draws", type=int, default=4, help="independent continuations per prompt")
    own = ("default: the model's own (a shipped model's registry entry, or the sampling block of the config a "
           "checkpoint was trained with), else 1")
    p.add_argument("--temperature", type=float, default=None, help=own)
    p.add_argument("--mixture-temperature", type=float, default=None, help=own)
    p.add_argument("--top-p", type=float, default=None, help=own)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the whole report to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def _split_clips(overrides: list[str], split: str, count: int, seconds: float) -> dict:
    from wavegen.config import compose
    from wavegen.data import loudest_clips

    # Default: what piano-tiny trained on; any data override replaces the default entirely.
    default = [] if any(o.lstrip("+~").startswith("data") for o in overrides) else ["data.renderer=both"]
    cfg = compose([*default, *overrides, "logger=none", f"train.segment_length={int(round(seconds * 16000))}"])
    return {f"{cfg.data.kind} {split}": loudest_clips(cfg, split, count)}


def _unseen_clips(count: int, seconds: float, rate: int) -> dict:
    import torch

    from wavegen.data.unseen import unseen_sets

    return {name: torch.stack([torch.from_numpy(clip) for clip in clips])
            for name, clips in unseen_sets(count, rate, seconds).items()}


def run(args: argparse.Namespace) -> int:
    import torch

    import wavegen
    from wavegen.atomic import atomic_write
    from wavegen.generate.continuation import continuation_report, prompts_met, simplest_prompts, teacher_forced_bits
    from wavegen.generate.sampling import SamplingControls
    from wavegen.nn.lpc import LPCBaseline, lpc_nll_bits

    if args.json and Path(args.json).exists() and not args.overwrite:
        raise WavegenError(f"output file already exists: {args.json} (pass --overwrite to replace it)")
    if args.pool is None:
        args.pool = 4 * args.clips if args.select == "simplest" else args.clips
    for name in ("clips", "draws", "pool"):
        if getattr(args, name) < 1:
            raise WavegenError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.pool < args.clips:
        raise WavegenError(f"--pool ({args.pool}) must be at least --clips ({args.clips})")
    if not 0 < args.prompt_seconds < args.clip_seconds:
        raise WavegenError("--prompt-seconds must be positive and shorter than --clip-seconds")
    model = wavegen.load(args.model)
    if model.family != "wavenet":
        raise WavegenError(f"{args.model} is a {model.family}, not a WaveNet")
    net = model.module.eval()
    rate = model.audio.sample_rate
    if rate != 16000:
        raise WavegenError(f"the held-out clips are 16 kHz; {args.model} works at {rate} Hz")
    controls = {"temperature": args.temperature, "mixture_temperature": args.mixture_temperature,
                "top_p": args.top_p}
    controls = {k: (v if v is not None else float(model.sampling.get(k, 1.0))) for k, v in controls.items()}
    try:  # a setting the head cannot use is refused up front, in one line
        SamplingControls(**controls).check(net.head.kind)
    except ValueError as exc:
        raise WavegenError(str(exc)) from None
    sets = (_unseen_clips(args.pool, args.clip_seconds, rate) if args.source == "unseen"
            else _split_clips(list(args.overrides), args.source, args.pool, args.clip_seconds))
    prompt = int(round(args.prompt_seconds * rate))
    if args.select == "simplest":
        sets = {name: simplest_prompts(clips, rate, args.clips, prompt) for name, clips in sets.items()}
    else:
        sets = {name: clips[: args.clips] for name, clips in sets.items()}
    report = {"model": args.model, "source": args.source, "select": args.select, "controls": controls, "sets": {}}
    print("| clips | NLL bits/sample | LPC-32 | own predictor | peak share | chroma H (prompt) | RMS dBFS (prompt) "
          "| copy (max) | all met | prompts met |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, clips in sets.items():
        started = time.process_time()
        bits, baseline = teacher_forced_bits(net, clips), lpc_nll_bits(clips)
        own = None
        if getattr(net.cfg, "lpc_order", 0):
            c = net.cfg
            own = float(LPCBaseline(c.lpc_order, c.lpc_window, c.lpc_refit, c.lpc_method).nll_bits(clips).mean())
        result = continuation_report(net, clips[:, :prompt], rate, args.seconds, args.draws, args.seed, **controls)
        m, pm = result["overall"]["median"], result["prompt_median"]
        max_copy = max(r["copy_score"] for p in result["prompts"] for r in p["draws"])
        met = all(result["overall"]["checks"].values()) and bits <= baseline - 0.5
        own_text = "" if own is None else f"{own:.3f}"
        print(f"| {name} ({clips.shape[0]}×{args.draws}) | {bits:.3f} | {baseline:.3f} | {own_text} | "
              f"{m['peak_energy_share']:.3f} | {m['chroma_entropy']:.2f} ({pm['chroma_entropy']:.2f}) | "
              f"{m['rms_dbfs']:.1f} ({pm['rms_dbfs']:.1f}) | {max_copy:.3f} | {'yes' if met else 'no'} | "
              f"{prompts_met(result)}/{clips.shape[0]} |", flush=True)
        report["sets"][name] = {"nll_bits": bits, "lpc32_bits": baseline, "own_predictor_bits": own,
                                "all_met": met, "prompts_met": prompts_met(result),
                                "cpu_seconds": time.process_time() - started, **result}
    if args.json:
        clean = json.loads(json.dumps(report, default=float).replace("NaN", "null"))
        atomic_write(args.json, (json.dumps(clean, indent=1) + "\n").encode("utf-8"))
    return 0
