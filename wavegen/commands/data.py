"""``wavegen data build|check``: build the configured dataset, or inspect every file of one.

    wavegen data build                          # the default embedded piano set
    wavegen data build data=embedded data.seed=3
    wavegen data check embedded_debug           # a dataset config by name
    wavegen data check /path/to/audio           # or any folder of audio files
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
