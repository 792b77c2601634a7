"""``wavegen train [overrides...]``: train any model family from the Hydra configs."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (Hydra overrides, e.g. experiment=quickstart train.steps=500)",
        description="Train a model. Arguments are Hydra overrides: experiment=NAME, model=wavenet/base, "
        "data=maestro, train.steps=1000, logger=wandb ... Re-running the same command resumes from the "
        "last checkpoint in train.run_dir. Under torchrun, every rank shares one run directory. "
        "Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, saves it and exits 130 / 143 "
        "(a second signal stops at once). One process at a time may train in a run directory.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from wavegen.config import compose
    from wavegen.train.loop import train
    from wavegen.train.stopping import Interrupted

    cfg = compose(args.overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    try:
        result = train(cfg)
    except Interrupted as stopped:  # SIGINT/SIGTERM: the step it finished is saved
        if os.environ.get("RANK", "0") == "0":
            print(stopped, file=sys.stderr, flush=True)
        return stopped.exit_code
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary (rank 0's) rather than one per process
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
        print(f"done: {shown} -> {cfg.train.run_dir}/checkpoints/last.pt", flush=True)
    return 0
