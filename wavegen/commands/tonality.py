"""``wavegen eval tonality FILE... [--prompt FILE] [--json OUT]``: is it pitched sound, and is it a copy?

Per file: the peak-energy share and chroma entropy (:mod:`wavegen.audio.metrics`; real piano
scores about 0.91-0.96 and 2.3-3.1 bits, white noise about 0 and 3.57), the RMS level in
dBFS, and with ``--prompt`` the largest normalised cross-correlation of any 0.25 s
window of the file against the prompt (``copies`` when >= 0.9).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wavegen.errors import WavegenError


def register_eval(targets) -> None:
    p = targets.add_parser(
        "tonality",
        help="peak-energy share, chroma entropy, RMS and (with --prompt) prompt copying of audio files",
        description="Tell pitched sound from noise and catch continuations that copy their prompt. Prints, per "
        "file, the peak-energy share (piano 0.91-0.96, noise ~0), chroma entropy in bits (piano 2.3-3.1, "
        "noise 3.57), RMS in dBFS and, with --prompt, the largest normalised cross-correlation of any "
        "0.25 s window of the file against the prompt (>= 0.9: copies).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files to measure (e.g. generated continuations)")
    p.add_argument("--prompt", help="the prompt the files continue: check whether they copy it")
    p.add_argument("--window", type=float, default=0.25, help="seconds per compared window (with --prompt)")
    p.add_argument("--after-prompt", action="store_true",
                   help="the files begin with the prompt (as `wavegen sample --prompt` writes them): measure only "
                   "what follows it")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def _format(name: str, row: dict) -> str:
    text = (f"{name}: peak share {row['peak_energy_share']:.3f}  chroma entropy {row['chroma_entropy']:.2f} bits  "
            f"RMS {row['rms_dbfs']:.1f} dBFS")
    if "copy_score" in row:
        text += f"  copy {row['copy_score']:.3f}{' COPIES THE PROMPT' if row['copies'] else ''}"
    return text


def run(args: argparse.Namespace) -> int:
    from wavegen.atomic import atomic_write
    from wavegen.audio.io import read_audio, read_audio_frames
    from wavegen.audio.metrics import tonality_figures

    if not 0 < args.window < float("inf"):
        raise WavegenError(f"--window must be a positive number of seconds, got {args.window}")
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise WavegenError(f"output file already exists: {args.json} (pass --overwrite to replace it)")
    if args.json and Path(args.json).is_dir():
        raise WavegenError(f"--json must name a file, but {args.json} is a folder")
    # Read everything before printing or writing anything: a bad file fails the command up front.
    clips = []
    for path in args.files:
        data, rate = read_audio_frames(path)
        clips.append((path, read_audio(path, rate), rate))
    prompt_path = args.prompt
    if prompt_path:
        read_audio_frames(prompt_path)  # one clear error line for a bad prompt
    rows = []
    for path, audio, rate in clips:
        prompt = read_audio(prompt_path, rate) if prompt_path else None
        if prompt is not None and prompt.numel() < int(round(args.window * rate)):
            raise WavegenError(f"--prompt {prompt_path} is shorter than one --window ({args.window} s)")
        if args.after_prompt:
            if prompt is None:
                raise WavegenError("--after-prompt needs --prompt")
            if audio.numel() <= prompt.numel():
                raise WavegenError(f"{path} is no longer than its prompt: nothing follows it")
            audio = audio[prompt.numel():]
        row = {"file": str(path), "sample_rate": rate, **tonality_figures(audio, rate, prompt, args.window)}
        rows.append(row)
        print(_format(str(path), row), flush=True)
    if args.json:
        # JSON has no NaN: a silent file's chroma entropy is written as null.
        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in rows]
        payload = {"prompt": prompt_path, "window_s": args.window, "rows": clean}
        atomic_write(args.json, (json.dumps(payload, indent=1, allow_nan=False) + "\n").encode("utf-8"))
    return 0
