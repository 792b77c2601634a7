"""``wavegen generate``: long-form music from a trained hierarchy, streamed to disk in bounded memory.

::

    wavegen generate --recipe piano_hierarchy_tiny --seconds 60 -o out.wav
    wavegen generate --prior P.pt --level2 L2.pt --level1 AE.pt --seconds 60 -o out.wav
    wavegen generate --recipe piano_hierarchy_tiny --down vocoder --seconds 60 -o out.wav

With ``--recipe``, the checkpoints (and the way down to audio) come from the recipe's
first ``generate`` stage (with ``--down``, the first one going down that way; ``--stage``
names one), its placeholders filled in for ``--root`` (default ``runs/<recipe>``);
options given here win. Writes ``out.wav``, ``out.png`` (spectrogram), one
``out.<level>.npy`` of codes per level (uint8[C, F]) and ``out.json`` (rates, timing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wavegen.commands import check_backend
from wavegen.errors import WavegenError

CHECKPOINT_OPTIONS = ("prior", "level2", "level1", "codes_to_mel", "vocoder")


def _add_arguments(p: argparse.ArgumentParser, for_recipe: bool = False) -> None:
    p.add_argument("--recipe", help="take the checkpoints from this recipe's generate stage")
    p.add_argument("--root", help="the recipe's run folder (default: runs/<recipe>)")
    p.add_argument("--stage", help="which generate stage of the recipe (default: the first)")
    p.add_argument("--prior", help="top prior checkpoint (family prior)")
    p.add_argument("--level2", help="level-2 autoencoder checkpoint (family prior with upper codes)")
    p.add_argument("--level1", help="level-1 autoencoder checkpoint (family autoencoder)")
    p.add_argument("--codes-to-mel", dest="codes_to_mel", help="codes -> mel checkpoint (family codes_to_mel)")
    p.add_argument("--vocoder", help="diffusion vocoder checkpoint (family vocoder)")
    p.add_argument("--down", choices=["wavenet", "vocoder"], default=None,
                   help="way down to audio: the level-1 WaveNet decoder, or codes -> mel -> vocoder "
                   "(default: the recipe's choice, else wavenet)")
    p.add_argument("-o", "--out", required=not for_recipe, help="output WAV file")
    p.add_argument("--seconds", type=float, default=None, help="seconds to generate (default 10)")
    p.add_argument("--seed", type=int, default=None, help="seeds every level's sampling (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of every level; 0 is greedy")
    p.add_argument("--chunk-frames", type=int, default=256, help="code frames decoded per step (bounds memory)")
    p.add_argument("--vocoder-steps", type=int, default=6, help="diffusion steps when the vocoder has no searched schedule")
    p.add_argument("--backend", default="auto", help="kernel backend: auto, reference, cpu, cuda")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: batch-1 sampling is a chain of small ops that extra "
                   "threads only slow down with synchronisation; 0 keeps torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate long-form music from a hierarchy (prior -> codes -> audio)",
                       description=__doc__.split("::")[0].strip())
    _add_arguments(p)
    p.set_defaults(func=run)


def recipe_arguments(name: str, root: Path | None, stage_name: str | None,
                     down: str | None = None) -> argparse.Namespace:
    """The options of a recipe's generate stage, its placeholders filled in for ``root``.

    The stage is ``stage_name``, else the first generate stage going ``down`` to audio that
    way (``wavenet`` or ``vocoder``), else the first generate stage.
    """
    from wavegen.recipes import load_recipe, stage_argv

    recipe = load_recipe(name)
    stages = [s for s in recipe.stages if s.command == "generate" and (stage_name is None or s.name == stage_name)]
    if not stages:
        which = f"generate stage named {stage_name!r}" if stage_name else "generate stage"
        raise WavegenError(f"recipe {recipe.name!r} has no {which}")
    root = root if root is not None else Path("runs") / recipe.name
    parser = argparse.ArgumentParser(prog=f"recipe {recipe.name}", add_help=False)
    _add_arguments(parser, for_recipe=True)
    parsed = []
    for stage in stages:
        try:
            parsed.append(parser.parse_args(stage_argv(stage, root)[1:]))
        except SystemExit:
            raise WavegenError(f"recipe {recipe.name!r}: stage {stage.name!r} has invalid generate arguments") from None
    if stage_name is None and down is not None:
        matching = [a for a in parsed if (a.down or "wavenet") == down]
        if not matching:
            raise WavegenError(f"recipe {recipe.name!r} has no generate stage going down by {down}")
        return matching[0]
    return parsed[0]


def run(args: argparse.Namespace) -> int:
    import torch

    from wavegen.hierarchy.assembly import generate_to_files, load_hierarchy

    if args.recipe:
        base = recipe_arguments(args.recipe, Path(args.root) if args.root else None, args.stage, args.down)
        for key in CHECKPOINT_OPTIONS + ("down", "seconds", "seed"):
            if getattr(args, key) is None:
                setattr(args, key, getattr(base, key))
        missing = [f"--{k.replace('_', '-')}" for k in CHECKPOINT_OPTIONS
                   if getattr(args, k) and not Path(getattr(args, k)).exists()]
        if missing:
            raise WavegenError(f"recipe {args.recipe!r} has not produced its checkpoints yet ({missing[0]} "
                               f"not found); run `wavegen recipe run {args.recipe}` first")
    if not args.prior:
        raise WavegenError("name a hierarchy: --recipe NAME, or checkpoints --prior ... --level1 ...")
    seconds = 10.0 if args.seconds is None else args.seconds
    if args.chunk_frames < 1:
        raise WavegenError(f"--chunk-frames must be at least 1, got {args.chunk_frames}")
    if args.temperature < 0:
        raise WavegenError(f"--temperature must not be negative, got {args.temperature}")
    if args.threads < 0:
        raise WavegenError(f"--threads must not be negative, got {args.threads}")
    check_backend(args.backend)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    h = load_hierarchy(args.prior, args.level1, args.level2, args.codes_to_mel, args.vocoder,
                       args.down or "wavenet", device)
    previous_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:  # restored afterwards: a recipe runs later stages in this same process
        generate_to_files(h, Path(args.out), seconds, seed=args.seed or 0, overwrite=args.overwrite,
                          temperature=args.temperature, progress=not args.no_progress,
                          chunk_frames=args.chunk_frames, vocoder_steps=args.vocoder_steps, backend=args.backend)
    finally:
        torch.set_num_threads(previous_threads)
    return 0
