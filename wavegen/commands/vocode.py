"""``wavegen vocode CKPT INPUT -o OUT.wav``: mel (or audio) -> waveform with the diffusion vocoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from wavegen.commands import add_threads_option, apply_threads
from wavegen.errors import WavegenError

# The comparison PNG shows at most this much audio (a long piece would be unreadable).
PNG_SECONDS = 60.0


def register(sub) -> None:
    p = sub.add_parser(
        "vocode",
        help="turn a log-mel spectrogram (.npy/.npz) or an audio file into audio with a vocoder checkpoint",
        description="Vocode with a diffusion vocoder checkpoint. INPUT is a natural-log mel [n_mels, frames] "
        "(.npy, with an optional sidecar .json holding sample_rate/hop_length, or .npz with arrays mel, "
        "sample_rate, hop_length) or an audio file (analysis-resynthesis). Long inputs are vocoded in "
        "overlapping chunks with constant memory. Writes OUT (a WAV) and OUT with .png: the input and "
        "output spectrograms.",
    )
    p.add_argument("paths", nargs="+", metavar="[CHECKPOINT] INPUT",
                   help="a vocoder checkpoint (omit it with --model) and the input: a mel .npy / .npz, or an audio file")
    p.add_argument("--model", help="a shipped vocoder by name instead of a checkpoint (wavegen.pretrained)")
    p.add_argument("-o", "--out", required=True, help="output .wav file")
    p.add_argument("--steps", type=int, default=None,
                   help="diffusion steps; default: the checkpoint's stored (searched or distilled) schedule")
    p.add_argument("--seed", type=int, default=0, help="noise seed (the output is deterministic for a seed)")
    p.add_argument("--mel-projection", type=int, default=None,
                   help="iterations pulling the output onto the input mel at the end (default: the model's stored count)")
    p.add_argument("--chunk-frames", type=int, default=512, help="mel frames vocoded at once")
    p.add_argument("--overlap-frames", type=int, default=32, help="frames shared by neighbouring chunks")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    add_threads_option(p)
    p.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA weights")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _save_mel_comparison(png: Path, log_mel, audio, cfg) -> None:
    """Input mel above the vocoded audio's mel, one colour scale."""
    from wavegen.audio.plots import clip_to_dynamic_range, log_mel_image, save_mel_panels_png

    seconds = max(audio.numel(), 1) / cfg.sample_rate
    save_mel_panels_png(png, [(clip_to_dynamic_range(log_mel.numpy()), "input mel"),
                              (log_mel_image(audio, cfg), "vocoded")], seconds, cfg)


def run(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.dsp import AudioConfig, mel_frames
    from wavegen.audio.io import write_audio
    from wavegen.audio.plots import save_spectrogram_comparison_png
    from wavegen.diffusion.samplers import check_chunking, vocode_stream
    import time

    from tqdm import tqdm

    from wavegen.models.vocoder.checkpoint import load_vocoder, stored_mel_projection, stored_schedule
    from wavegen.commands.vocode_inputs import load_input

    apply_threads(args.threads)
    out = Path(args.out)
    png = out.with_suffix(".png")
    if out.suffix.lower() != ".wav":
        raise WavegenError(f"output must be a .wav file, got {out}")
    for path in (out, png):
        if path.exists() and not args.overwrite:
            raise WavegenError(f"output file already exists: {path} (pass --overwrite to replace it)")
    if args.steps is not None and args.steps < 1:
        raise WavegenError(f"--steps must be at least 1, got {args.steps}")
    if args.mel_projection is not None and args.mel_projection < 0:
        raise WavegenError(f"--mel-projection must be 0 or more, got {args.mel_projection}")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_chunking(args.chunk_frames, args.overlap_frames)
    if args.model and len(args.paths) != 1:
        raise WavegenError(f"with --model, give only the input (got {len(args.paths)} paths)")
    if not args.model and len(args.paths) != 2:
        raise WavegenError("give a vocoder checkpoint and an input, or --model NAME and an input")
    input_path = args.paths[-1]
    if args.model:
        from wavegen.pretrained import shipped_file

        with shipped_file(args.model) as (path, _):
            model, ckpt = load_vocoder(path, device=args.device)
    else:
        model, ckpt = load_vocoder(args.paths[0], device=args.device, use_ema=not args.raw)
    audio_cfg = AudioConfig.from_mapping(ckpt["audio"])
    given = load_input(input_path, audio_cfg)
    schedule = stored_schedule(ckpt, args.steps)
    projection = stored_mel_projection(ckpt) if args.mel_projection is None else args.mel_projection
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    bar = None if args.no_progress else tqdm(total=given.num_samples / audio_cfg.sample_rate, unit="s", desc="vocoding",
                                               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]")
    pieces = []
    for piece in vocode_stream(model, given.log_mel, schedule, generator, args.chunk_frames, args.overlap_frames,
                               mel_projection=projection):
        pieces.append(piece[0].float().cpu())
        if bar is not None:
            bar.update(min(piece.shape[-1] / audio_cfg.sample_rate, bar.total - bar.n))  # float sums may overshoot
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    vocoded = torch.cat(pieces)[: given.num_samples]
    write_audio(out, vocoded, audio_cfg.sample_rate, overwrite=args.overwrite)
    shown = int(PNG_SECONDS * audio_cfg.sample_rate)
    if given.audio is not None:
        save_spectrogram_comparison_png(png, given.audio[:shown], vocoded[:shown], audio_cfg,
                                        titles=("input", f"vocoded ({len(schedule)} steps)"))
    else:
        frames = mel_frames(shown, audio_cfg)
        _save_mel_comparison(png, given.log_mel[0, :, :frames], vocoded[:shown], audio_cfg)
    duration = vocoded.numel() / audio_cfg.sample_rate
    print(f"wrote {out} ({duration:.2f} s of audio, {len(schedule)} steps) and {png.name}; vocoded in {seconds:.1f} s, "
          f"real-time factor {seconds / max(duration, 1e-9):.3f} on {torch.get_num_threads()} thread(s)")
    return 0
