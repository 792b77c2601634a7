"""``wavegen encode`` and ``wavegen decode``: audio <-> run-length code files through an autoencoder.

::

    wavegen encode runs/autoencoder_tiny/checkpoints/last.pt piece.wav -o piece.codes
    wavegen decode runs/autoencoder_tiny/checkpoints/last.pt piece.codes -o piece_decoded.wav
    wavegen encode --model piano-ae piece.wav -o piece.codes      # a shipped autoencoder by name
    wavegen decode --model piano-ae piece.codes -o piece_decoded.wav

A code file records the fingerprint of the weights that wrote it; decoding with
other weights is refused. An autoencoder with a WaveNet decoder samples the audio;
one with a mel decoder (``piano-ae``) predicts the log-mel and its shipped vocoder
turns that into audio. Both commands refuse to replace an existing output
unless given ``--overwrite``, and write their output atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wavegen.commands import add_threads_option, apply_threads, check_backend
from wavegen.errors import WavegenError


def _common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("paths", nargs="+", metavar=f"[CHECKPOINT] {what.upper()}",
                   help=f"an autoencoder checkpoint (e.g. runs/NAME/checkpoints/last.pt; omit it with --model) "
                   f"and the {what}")
    p.add_argument("--model", help="a shipped autoencoder by name instead of a checkpoint (e.g. piano-ae)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--raw", action="store_true",
                   help="use the raw weights instead of the EMA weights (codes written with one decode only with it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def register(sub) -> None:
    enc = sub.add_parser("encode", help="encode audio into a run-length code file with an autoencoder",
                         description="Encode an audio file into run-length events of scalar-quantised codes "
                         "(a versioned, checksummed .codes file) and print its rates.")
    _common(enc, "audio")  # input audio (wav, flac, ogg, mp3); resampled to the model's rate, mono
    enc.add_argument("-o", "--out", required=True, help="output code file (.codes)")
    enc.add_argument("--chunk-frames", type=int, default=4096,
                     help="code frames computed per encoder call (bounds memory; the result does not depend on it)")
    add_threads_option(enc)
    enc.set_defaults(func=run_encode)

    dec = sub.add_parser("decode", help="decode a code file to audio with the autoencoder that encoded it",
                         description="Decode a .codes file to audio with the decoder of the model that encoded "
                         "it: a WaveNet decoder samples the audio; a mel decoder (e.g. --model piano-ae) predicts "
                         "the log-mel and its shipped vocoder turns it into audio. The output has exactly the "
                         "encoded audio's length.")
    _common(dec, "codes")  # the code file written by `wavegen encode`
    dec.add_argument("-o", "--out", required=True, help="output audio file (.wav, .flac or .ogg)")
    dec.add_argument("--temperature", type=float, default=1.0, help="WaveNet decoder: sampling temperature; 0 is greedy")
    dec.add_argument("--seed", type=int, default=0, help="seeds the sampling noise (same seed, same audio)")
    dec.add_argument("--chunk", type=int, default=4000, help="WaveNet decoder: samples generated per kernel call")
    dec.add_argument("--backend", default="auto", help="WaveNet decoder: kernel backend: auto, reference, cpu, cuda")
    dec.add_argument("--steps", type=int, default=None,
                     help="mel decoder: the vocoder's diffusion steps (default: its stored schedule)")
    add_threads_option(dec, sequential=True)
    dec.set_defaults(func=run_decode)


def _input_path(args) -> str:
    """The input among ``paths``: alone with ``--model``, after the checkpoint without it."""
    if args.model and len(args.paths) != 1:
        raise WavegenError(f"with --model, give only the input (got {len(args.paths)} paths)")
    if not args.model and len(args.paths) != 2:
        raise WavegenError("give an autoencoder checkpoint and an input, or --model NAME and an input")
    return args.paths[-1]


def _load(args):
    """-> (model, checkpoint dict, device): the checkpoint's weights, or the shipped model ``--model`` names."""
    import torch

    from wavegen.models.registry import load_model

    apply_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.model:
        from wavegen.pretrained import shipped_file

        with shipped_file(args.model) as (path, _):
            model, state = load_model(path, family="autoencoder", device=device)
    else:
        model, state = load_model(args.paths[0], family="autoencoder", use_ema=not args.raw, device=device)
    return model, state, device


def _refuse_existing(path: Path, overwrite: bool) -> None:
    """Checked before any work, so a long run never ends in a refused write."""
    if path.is_dir():
        raise WavegenError(f"output path is a folder: {path}")
    if path.exists() and not overwrite:
        raise WavegenError(f"output file already exists: {path} (pass --overwrite to replace it)")


def run_encode(args: argparse.Namespace) -> int:
    from wavegen.audio.io import read_audio
    from wavegen.codes.codefile import CodeFile, write_code_file
    from wavegen.codes.stats import rate_statistics

    audio_path = _input_path(args)
    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    if args.chunk_frames < 1:
        raise WavegenError(f"--chunk-frames must be at least 1, got {args.chunk_frames}")
    model, _, device = _load(args)
    audio = read_audio(audio_path, model.sample_rate)
    indices = model.encode(audio.to(device), chunk_frames=args.chunk_frames).cpu()
    code = CodeFile.from_codes(indices, model.levels, model.hop, model.sample_rate, audio.numel(), model.fingerprint())
    write_code_file(out, code, overwrite=args.overwrite)
    stats = rate_statistics(indices, model.levels, model.hop, model.sample_rate)
    file_bits = out.stat().st_size * 8 / code.seconds
    print(f"wrote {out}: {code.seconds:.2f} s, {code.frames} frames, {len(code.events)} events "
          f"({stats.events_per_second:.1f} events/s; {stats.bits_per_second_naive:.0f} bits/s naive bound, "
          f"{stats.bits_per_second_entropy:.0f} bits/s entropy, {stats.bits_per_second_fixed:.0f} bits/s at a fixed "
          f"rate; file {file_bits:.0f} bits/s)")
    return 0


def run_decode(args: argparse.Namespace) -> int:
    import torch

    from wavegen.audio.io import write_audio
    from wavegen.codes.codefile import read_code_file

    codes_path = _input_path(args)
    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    if args.temperature < 0:
        raise WavegenError(f"--temperature must not be negative, got {args.temperature}")
    if args.chunk < 1:
        raise WavegenError(f"--chunk must be at least 1, got {args.chunk}")
    if args.steps is not None and args.steps < 1:
        raise WavegenError(f"--steps must be at least 1, got {args.steps}")
    check_backend(args.backend)
    model, state, device = _load(args)
    code = read_code_file(codes_path, fingerprint=model.fingerprint())
    # Same fingerprint implies the same config; these checks only make a hand-made file's error clear.
    if (code.sample_rate, code.hop, code.levels) != (model.sample_rate, model.hop, model.levels):
        raise WavegenError(
            f"{codes_path} holds codes at {code.sample_rate} Hz, hop {code.hop}, levels {code.levels}; the model "
            f"uses {model.sample_rate} Hz, hop {model.hop}, levels {model.levels}"
        )
    indices = code.codes()[None].to(device)
    generator = torch.Generator().manual_seed(args.seed)
    if model.decoder_kind == "mel":
        audio = _decode_through_mel(model, state, indices, code.num_samples, args.steps, generator, device)
    else:
        audio = _sample_wavenet(model, indices, code.num_samples, args, generator)
    write_audio(out, audio, model.sample_rate, overwrite=args.overwrite)
    print(f"wrote {out}: {audio.numel() / model.sample_rate:.2f} s from {len(code.events)} events")
    return 0


def _decode_through_mel(model, state, indices, num_samples: int, steps, generator, device):
    """codes -> the mel decoder's log-mel -> its shipped vocoder (the same path as wavegen.load(...).decode)."""
    from wavegen.api import mel_decoder_vocoder, vocode_to_length
    from wavegen.audio.dsp import AudioConfig

    vocoder = mel_decoder_vocoder(model, AudioConfig.from_mapping(state["audio"]), device)
    mel = model.decode_mel(indices, num_samples).cpu()
    return vocode_to_length(vocoder, mel, num_samples, steps, generator, progress=True)[0]


def _sample_wavenet(model, indices, num_samples: int, args, generator):
    import torch
    from tqdm import tqdm

    from wavegen.generate.autoencoder import decode_stream

    pieces = []
    stream = decode_stream(model, indices, num_samples, temperature=args.temperature, generator=generator,
                                 chunk_size=args.chunk, backend=args.backend)
    with tqdm(total=num_samples, desc="decode", unit="smp", unit_scale=True, dynamic_ncols=True) as bar:
        for chunk in stream:
            pieces.append(chunk[0].cpu())
            bar.update(chunk.shape[1])
    return torch.cat(pieces)
