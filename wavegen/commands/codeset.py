"""``wavegen codes dump``: encode a dataset (or a lower code set) into a code set for training priors.

::

    # level-1 codes of the configured dataset's train and validation splits
    wavegen codes dump runs/ae/checkpoints/last.pt -o runs/codes1              # its training data
    wavegen codes dump runs/ae/checkpoints/last.pt data=maestro -o runs/codes1 # or other data
    # level-2 codes: encode a level-1 code set with a level-2 autoencoder (family prior, model.upper set)
    wavegen codes dump runs/ae2/checkpoints/last.pt -o runs/codes2 --from-codeset runs/codes1
    # what a code set costs: events/s and bits/s (fixed-rate, naive run-length, entropy) per split
    wavegen codes stats runs/codes1

Trailing ``KEY=VALUE`` arguments are Hydra overrides choosing the data (``data=maestro``,
``data.root=...``); without them, the data the autoencoder was trained on is encoded. The manifest is written last, so an interrupted dump is never
mistaken for a finished one; an existing code set is refused without ``--overwrite``.
"""

from __future__ import annotations

import argparse

from wavegen.errors import WavegenError


def register(sub) -> None:
    p = sub.add_parser("codes", help="code sets: encode a dataset split into codes for training priors")
    actions = p.add_subparsers(dest="codes_command", metavar="<action>")
    actions.required = True
    dump = actions.add_parser("dump", help="encode dataset splits (or a lower code set) into a code set folder",
                              description=__doc__.split("::")[0].strip())
    dump.add_argument("checkpoint", help="an autoencoder checkpoint (audio -> codes) or a level-2 autoencoder "
                      "(family prior with upper codes; needs --from-codeset)")
    dump.add_argument("-o", "--out", required=True, help="output code set folder")
    dump.add_argument("overrides", nargs="*", help="Hydra overrides selecting the data (e.g. data=maestro)")
    dump.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                      help="split to encode (repeatable; default: train and validation)")
    dump.add_argument("--from-codeset", help="encode this code set's codes instead of audio (level 2)")
    dump.add_argument("--chunk-frames", type=int, default=4096, help="code frames per encoder call (bounds memory)")
    dump.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    dump.add_argument("--overwrite", action="store_true", help="replace an existing code set")
    dump.set_defaults(func=run_dump)
    stats = actions.add_parser("stats", help="events/s and bits/s of a code set, per split")
    stats.add_argument("codeset", help="a code set folder (from `wavegen codes dump`)")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    stats.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    import json

    from wavegen.codes.stats import rate_statistics
    from wavegen.hierarchy.codeset import load_codeset

    codeset = load_codeset(args.codeset)
    splits = sorted({item.split for item in codeset.items})
    rows = {split: rate_statistics(codeset.sequences(split), codeset.levels, codeset.hop, codeset.sample_rate)
            for split in splits}
    if args.json:
        print(json.dumps({split: r.to_dict() for split, r in rows.items()}, indent=1))
        return 0
    print(f"{codeset.root}: levels {codeset.levels}, hop {codeset.hop}, {codeset.frame_rate:g} frames/s")
    print(f"{'split':<12}{'seconds':>9}{'events/s':>10}{'mean run':>10}"
          f"{'bits/s fixed':>14}{'naive RLE':>11}{'entropy':>9}")
    for split, r in rows.items():
        print(f"{split:<12}{r.seconds:>9.1f}{r.events_per_second:>10.2f}{r.mean_run:>10.1f}"
              f"{r.bits_per_second_fixed:>14.0f}{r.bits_per_second_naive:>11.0f}{r.bits_per_second_entropy:>9.0f}")
    return 0


def run_dump(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from wavegen.hierarchy.codeset import CodeSetWriter, load_codeset
    from wavegen.hierarchy.provenance import weights_fingerprint
    from wavegen.models.registry import load_model

    splits = args.splits or ["train", "validation"]
    if args.chunk_frames < 1:
        raise WavegenError(f"--chunk-frames must be at least 1, got {args.chunk_frames}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model, state = load_model(args.checkpoint, family=("autoencoder", "prior"), device=device)
    family = state["family"]
    if family == "prior" and getattr(model, "encode", None) is None:
        raise WavegenError(f"{args.checkpoint} is a top prior; only autoencoders (level 1 or 2) encode codes")
    reads_audio = family == "autoencoder" or model.reads_audio
    if not reads_audio and not args.from_codeset:
        raise WavegenError("this level-2 autoencoder encodes level-1 codes: pass --from-codeset DIR")
    if reads_audio and args.from_codeset:
        raise WavegenError("--from-codeset needs a level-2 autoencoder on codes; this checkpoint encodes audio")
    levels = model.upper_levels if family == "prior" else model.levels

    if args.from_codeset:
        source = load_codeset(args.from_codeset)
        expected = state["model_config"].get("codes_fingerprint")
        if expected and expected != source.provenance:
            raise WavegenError(f"{args.checkpoint} was trained on codes of another autoencoder than {source.root}")
        if source.levels != model.levels:
            raise WavegenError(f"{source.root} holds levels {source.levels}; the model reads {model.levels}")
        writer = CodeSetWriter(args.out, model.upper_levels, model.hop, source.sample_rate, model.fingerprint(),
                               args.checkpoint, args.overwrite, weights_fingerprint(model))
        for split in splits:
            items = source.split_items(split)
            for item, codes in tqdm(list(zip(items, source.sequences(split))), desc=f"encode {split}",
                                    dynamic_ncols=True):
                upper = model.encode(codes.to(device)).cpu()
                writer.add(split, item.piece, upper, item.num_samples)
    else:
        from wavegen.audio.io import read_audio
        from wavegen.config import compose
        from wavegen.data import build_dataset

        if args.overrides:
            cfg = compose(args.overrides)
        else:  # by default, the data the autoencoder was trained on
            from omegaconf import OmegaConf

            cfg = OmegaConf.create({k: state["config"][k] for k in ("data", "audio")})
        sample_rate = int(cfg.audio.sample_rate)
        if sample_rate != int(state["audio"]["sample_rate"]):
            raise WavegenError(f"the audio config is at {sample_rate} Hz but the model at {state['audio']['sample_rate']} Hz")
        dataset = build_dataset(cfg.data, cfg.audio, log=print)
        writer = CodeSetWriter(args.out, levels, model.hop, sample_rate, model.fingerprint(),
                               args.checkpoint, args.overwrite, weights_fingerprint(model))
        for split in splits:
            for item in tqdm(dataset.get(split) or [], desc=f"encode {split}", dynamic_ncols=True):
                audio = read_audio(item.path, sample_rate)
                if family == "autoencoder":
                    indices = model.encode(audio.to(device), chunk_frames=args.chunk_frames).cpu()
                else:  # a level-2 autoencoder on audio (whole item at once: its encoder is small)
                    indices = model.encode(audio.to(device)).cpu()
                writer.add(split, item.piece, indices, audio.numel())
    codeset = writer.finish()
    frames = sum(it.frames for it in codeset.items)
    seconds = sum(it.num_samples for it in codeset.items) / codeset.sample_rate
    counts = ", ".join(f"{s}: {len(codeset.split_items(s))}" for s in splits)
    print(f"wrote code set {codeset.root}: {len(codeset.items)} items ({counts}), {seconds:.1f} s, {frames} frames "
          f"at {codeset.frame_rate:g} frames/s, levels {codeset.levels}")
    return 0
