"""``wavegen sample``: draw audio from a trained WaveNet, streaming WAVs to disk as it goes."""

from __future__ import annotations

import argparse
from pathlib import Path

from wavegen.commands import add_threads_option, apply_threads, check_backend
from wavegen.errors import WavegenError


def register(sub) -> None:
    p = sub.add_parser("sample", help="sample audio from a trained WaveNet checkpoint",
                       description="Sample audio from a WaveNet checkpoint. Each stream is written to "
                       "OUT/sample_NNN.wav while it is generated (an interrupted run leaves a valid WAV of "
                       "what was generated) and a spectrogram PNG beside it at the end.",
                       epilog="Sampling settings not given here are the model's defaults: a shipped model's "
                       "registry entry, or the sampling block of the config a checkpoint was trained with "
                       "(e.g. sampling: {top_p: 0.97}); without one, plain sampling (all 1).")
    p.add_argument("checkpoint", nargs="?", help="a wavegen checkpoint (e.g. runs/NAME/checkpoints/last.pt); "
                   "omit it with --model")
    p.add_argument("--model", help="a shipped WaveNet by name instead of a checkpoint (e.g. piano-tiny; "
                   "its sampling defaults apply unless given here)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds to generate per stream (after the prompt)")
    p.add_argument("--num", type=int, default=1, help="streams generated together as one batch")
    p.add_argument("--temperature", type=float, default=None,
                   help="default: the model's own (below), else 1. μ-law models: softmax temperature, 0 is greedy (the argmax class); mixture-of-logistics "
                   "models: logistic-scale temperature, 0 takes the component's mean (with --mixture-temperature 0 "
                   "too, fully greedy)")
    p.add_argument("--top-p", type=float, default=None,
                   help="μ-law models (and lpc_mol models such as piano-tiny, whose mixture is spread over "
                   "μ-law classes): sample only from the most likely classes holding this much probability "
                   "(nucleus sampling), in (0, 1]; default: the model's own (below), else 1. Below 1 the draw is made in Python, one kernel call per sample "
                   "(much slower), whatever --backend")
    p.add_argument("--mixture-temperature", type=float, default=None,
                   help="default: the model's own (below), else 1. Mixture-of-logistics models: temperature of the mixture weights, 0 picks the most likely "
                   "component. Other than 1, sampled in Python like --top-p")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt", help="audio file whose start primes every stream")
    p.add_argument("--prompt-seconds", type=float, default=1.0, help="how much of --prompt to use")
    p.add_argument("--global-id", type=int, default=None, help="global conditioning id (models trained with it)")
    p.add_argument("--onsets", default="loop",
                   help="models told where notes are struck (piano-tiny): after the prompt, strike in its rhythm "
                   "(loop, the default; without a prompt, a steady pulse) or nowhere (none); other models ignore it")
    p.add_argument("--chunk", type=int, default=4000, help="samples generated per kernel call")
    p.add_argument("--backend", default="auto", help="kernel backend: auto, reference, cpu, cuda")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    add_threads_option(p, sequential=True)
    p.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA weights")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def _fill_sampling(args: argparse.Namespace, defaults: dict) -> None:
    """Each sampling setting not given on the command line: the model's default, else the plain 1."""
    for key in ("temperature", "top_p", "mixture_temperature"):
        if getattr(args, key) is None:
            setattr(args, key, float(defaults.get(key, 1.0)))


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from wavegen.audio.dsp import AudioConfig
    from wavegen.audio.io import StreamingWavWriter, read_audio
    from wavegen.audio.plots import save_spectrogram_png
    from wavegen.generate.onsets import check_plan, onset_plan
    from wavegen.generate.sampling import SamplingControls, generate_tokens
    from wavegen.models.registry import load_model

    if (args.model is None) == (args.checkpoint is None):
        raise WavegenError("give a WaveNet checkpoint or --model NAME (one of them)")
    if args.model:
        from wavegen.pretrained import entry

        _fill_sampling(args, entry(args.model).get("sampling") or {})
    if not 0 < args.seconds < float("inf"):  # also refuses nan
        raise WavegenError(f"--seconds must be a positive number, got {args.seconds}")
    if args.num < 1:
        raise WavegenError(f"--num must be at least 1, got {args.num}")
    # Settings given (or a shipped model's) are checked before the checkpoint loads; a checkpoint's
    # own defaults were checked when it was trained, and SamplingControls checks them all below.
    if args.temperature is not None and not args.temperature >= 0:
        raise WavegenError(f"--temperature must not be negative, got {args.temperature}")
    if args.mixture_temperature is not None and not args.mixture_temperature >= 0:
        raise WavegenError(f"--mixture-temperature must not be negative, got {args.mixture_temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise WavegenError(f"--top-p must be in (0, 1], got {args.top_p}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise WavegenError(f"--out must be a folder, but {args.out} is a file")
    if args.chunk < 1:
        raise WavegenError(f"--chunk must be at least 1, got {args.chunk}")
    try:
        check_plan(args.onsets)
    except ValueError as exc:
        raise WavegenError(f"--{exc}") from None
    check_backend(args.backend)
    apply_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.model:
        from wavegen.pretrained import shipped_file

        with shipped_file(args.model) as (path, _):
            model, ckpt = load_model(path, family="wavenet", device=args.device)
    else:
        from wavegen.checkpoint import sampling_defaults

        model, ckpt = load_model(args.checkpoint, family="wavenet", use_ema=not args.raw, device=args.device)
        _fill_sampling(args, sampling_defaults(ckpt))  # its training config's sampling block, if any
    try:
        SamplingControls(args.temperature, args.top_p, args.mixture_temperature).check(model.head.kind)
    except ValueError as exc:
        raise WavegenError(f"{exc} (--top-p / --mixture-temperature)") from None
    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    sr = audio_cfg.sample_rate
    out = Path(args.out)
    wavs = [out / f"sample_{i:03d}.wav" for i in range(args.num)]
    pngs = [w.with_suffix(".png") for w in wavs]
    existing = [str(p) for p in wavs + pngs if p.exists()]
    if existing and not args.overwrite:
        raise WavegenError(f"output already exists: {existing[0]} (pass --overwrite to replace)")
    gids = None
    if model.cfg.global_classes:
        gid = 0 if args.global_id is None else args.global_id
        if not 0 <= gid < model.cfg.global_classes:
            raise WavegenError(f"--global-id must be in [0, {model.cfg.global_classes}), got {gid}")
        gids = torch.full((args.num,), gid, dtype=torch.long, device=args.device)
    prompt_tokens, prompt_audio = None, None
    if args.prompt:
        prompt_audio = read_audio(args.prompt, sr)[: int(args.prompt_seconds * sr)]
        prompt_tokens = model.head.encode(prompt_audio).to(args.device)[None].repeat(args.num, 1)
    total = int(args.seconds * sr)
    local = onset_plan(model, None if prompt_audio is None else prompt_audio[None], args.num, total, args.onsets, sr)
    generator = torch.Generator().manual_seed(args.seed)
    writers = [StreamingWavWriter(w, sr, overwrite=args.overwrite) for w in wavs]
    pieces = [[] for _ in wavs]
    try:
        if prompt_audio is not None:
            for writer, piece in zip(writers, pieces):
                writer.write(prompt_audio)
                piece.append(prompt_audio)
        stream = generate_tokens(model, total, batch_size=args.num, local=local, global_ids=gids,
                                 prompt_tokens=prompt_tokens,
                                 temperature=args.temperature, generator=generator, chunk_size=args.chunk,
                                 backend=args.backend, top_p=args.top_p,
                                 mixture_temperature=args.mixture_temperature)
        with tqdm(total=total, desc="sample", unit="smp", unit_scale=True, dynamic_ncols=True) as bar:
            for tokens in stream:
                audio = model.head.decode(tokens).float().cpu()
                for b, (writer, piece) in enumerate(zip(writers, pieces)):
                    writer.write(audio[b])
                    piece.append(audio[b])
                bar.update(tokens.shape[1])
    finally:
        for writer in writers:
            writer.close()
    for png, piece in zip(pngs, pieces):
        save_spectrogram_png(png, torch.cat(piece), audio_cfg, title=png.stem)
    for wav in wavs:
        print(f"wrote {wav} and {wav.with_suffix('.png').name}")
    return 0
