"""``wavegen data build|check|prompt``: build the configured dataset, inspect every file of one, or cut a prompt.

    wavegen data build                          # the default embedded piano set
    wavegen data build data=embedded data.seed=3
    wavegen data check embedded_debug           # a dataset config by name
    wavegen data check /path/to/audio           # or any folder of audio files
    wavegen data prompt -o prompt.wav           # 1 s of a validation piece, to prime `wavegen sample`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wavegen.errors import WavegenError


def register(sub) -> None:
    p = sub.add_parser(
        "data",
        help="build the configured dataset or check a dataset's files",
        description="Build the configured dataset (the embedded piano set renders once and is reused) "
        "or check every file of a dataset or folder for problems.",
    )
    actions = p.add_subparsers(dest="data_action", metavar="<action>")
    actions.required = True

    build = actions.add_parser(
        "build",
        help="build (or reuse) the configured dataset and print its summary",
        description="Build the dataset selected by the config (Hydra overrides, e.g. data=embedded data.seed=1) "
        "and print counts and durations per split.",
    )
    build.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    build.add_argument("--decode", action="store_true", help="also fill the segment sampler's decode cache now")
    build.set_defaults(func=run_build)

    check = actions.add_parser(
        "check",
        help="check every file: readable, durations, sample rates, silence, clipping",
        description="Check a dataset (a config name from conf/data, e.g. maestro) or any folder of audio. "
        "Lists unreadable files with their reasons and flags files that are mostly silent or clip. "
        "Exits with status 1 if any file is unreadable.",
    )
    check.add_argument("dataset", help="a data config name (embedded, maestro, folder, ...) or a folder path")
    check.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    check.set_defaults(func=run_check)

    prompt = actions.add_parser(
        "prompt",
        help="write a short clip of a dataset split (a prompt for `wavegen sample --prompt`)",
        description="Cut --seconds of one file of a split of the configured dataset (by default the validation "
        "split, pieces no model trained on) and write it as a WAV: the loudest such stretch of the file, so the "
        "prompt is music, not a pause.",
    )
    prompt.add_argument("overrides", nargs="*", help="Hydra overrides (key=value) selecting the dataset")
    prompt.add_argument("-o", "--out", required=True, help="output WAV file")
    prompt.add_argument("--split", default="validation", help="train, validation or test (default: validation)")
    prompt.add_argument("--index", type=int, default=0, help="which file of the split, in name order")
    prompt.add_argument("--seconds", type=float, default=1.0)
    prompt.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    prompt.set_defaults(func=run_prompt)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_build(args: argparse.Namespace) -> int:
    from wavegen.config import compose
    from wavegen.data import build_dataset, summary_lines
    from wavegen.data.segments import DecodeCache

    cfg = compose(args.overrides)
    dataset = build_dataset(cfg.data, cfg.audio, log=_log)
    for line in summary_lines(dataset, name=f"{cfg.data.kind} dataset"):
        print(line)
    if "root" in cfg.data:
        print(f"root: {cfg.data.root}")
    if args.decode:
        cache = DecodeCache(cfg.data.get("cache_dir") or "~/.cache/wavegen/decoded", int(cfg.audio.sample_rate))
        items = [it for split in dataset.values() for it in split]
        for i, item in enumerate(items, start=1):
            cache.load(item.path)
            _log(f"decoded {i}/{len(items)}: {item.path.name}")
        print(f"decode cache: {cache.cache_dir}")
    return 0


def _compose_for_check(target: str, overrides: list[str]):
    from omegaconf import OmegaConf

    from wavegen.config import available_options, compose

    names = available_options("data")
    folder = Path(target).expanduser()
    if target in names and not folder.is_dir():
        return compose([f"data={target}", *overrides]), None
    if folder.exists() or "/" in target or target.startswith("."):
        cfg = compose(["data=folder", *overrides])
        # Set the path after composing: a path may hold characters Hydra's override grammar rejects.
        OmegaConf.update(cfg, "data.root", str(folder.absolute()), merge=False)
        return cfg, folder.absolute()
    raise WavegenError(f"'{target}' is neither a folder nor a data config (available: {', '.join(names)})")


def run_check(args: argparse.Namespace) -> int:
    from wavegen.data import load_items
    from wavegen.data.check import check_items
    from wavegen.data.files import expand_path

    cfg, folder = _compose_for_check(args.dataset, list(args.overrides))
    items = load_items(cfg.data, cfg.audio, strict=False, log=_log)
    root = folder or (expand_path(cfg.data.root) if "root" in cfg.data else None)
    print(f"checking {len(items)} files of the {cfg.data.kind} dataset at {root}")

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            _log(f"checked {done}/{total}")

    report = check_items(items, progress=progress if len(items) > 50 else None)
    for line in report.lines(root):
        print(line)
    return 1 if report.unreadable else 0


def run_prompt(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.io import read_audio, write_audio
    from wavegen.config import compose
    from wavegen.data import SPLITS, build_dataset

    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise WavegenError(f"--out must be a .wav file, got {out}")
    if out.exists() and not args.overwrite:
        raise WavegenError(f"output file already exists: {out} (pass --overwrite to replace it)")
    if not 0 < args.seconds < float("inf"):
        raise WavegenError(f"--seconds must be a positive number, got {args.seconds}")
    if args.split not in SPLITS:
        raise WavegenError(f"unknown split '{args.split}' (choose one of: {', '.join(SPLITS)})")
    cfg = compose(args.overrides)
    rate = int(cfg.audio.sample_rate)
    items = sorted(build_dataset(cfg.data, cfg.audio, log=_log).get(args.split) or [], key=lambda it: it.path.name)
    if not 0 <= args.index < len(items):
        raise WavegenError(f"--index must be in [0, {len(items)}) for the {args.split} split, got {args.index}")
    audio = read_audio(items[args.index].path, rate)
    n = int(round(args.seconds * rate))
    if audio.numel() < n:
        raise WavegenError(f"{items[args.index].path.name} is shorter than {args.seconds} s")
    # The loudest stretch, on a 0.1 s grid: a running sum of squares over every start.
    energy = torch.cat([audio.new_zeros(1), audio.double().pow(2).cumsum(0)])
    starts = torch.arange(0, audio.numel() - n + 1, max(1, rate // 10))
    best = int(starts[(energy[starts + n] - energy[starts]).argmax()])
    write_audio(out, audio[best : best + n], rate, overwrite=args.overwrite)
    print(f"wrote {out}: {args.seconds:g} s of {items[args.index].path.name} from {best / rate:.1f} s")
    return 0
