"""Level 2 on level-1 codes or on audio: which models the level-1 codes better at the same upper rate?

Both designs have the same decoder (a WaveNet over level-1 joint code indices) and the
same upper codes (levels and frames per second); they differ only in what the encoder
reads. This script scores two trained level-2 autoencoders on the whole validation
split: the level-1 codes' NLL in bits per frame (teacher forced, given the upper codes
that model's own encoder makes), and the upper codes' own rates.

    # level 1 and the level-2-on-codes model come from the tiny recipe:
    wavegen recipe run piano_hierarchy_tiny --stage ae1 --stage codes1 --stage ae2
    wavegen train experiment=hierarchy_tiny_level2_audio autoencoder=runs/piano_hierarchy_tiny/ae1/checkpoints/last.pt \\
        train.run_dir=runs/level2_audio
    python benchmarks/level2_quality.py --level1 runs/piano_hierarchy_tiny/ae1/checkpoints/last.pt \\
        --on-codes runs/piano_hierarchy_tiny/ae2/checkpoints/last.pt --on-audio runs/level2_audio/checkpoints/last.pt
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@torch.no_grad()
def level1_nll_bits(model, audio: torch.Tensor, codes: torch.Tensor) -> tuple[float, int, torch.Tensor]:
    """Summed NLL (bits) of one piece's level-1 codes, the frames scored, and the upper codes.

    audio: Tensor[T] cut to whole upper frames; codes: its level-1 codes LongTensor[C1, F].
    Both designs score the same frames: the first level-1 frame (which the design on codes
    cannot predict) is left out.
    """
    from wavegen.codes.joint import to_joint

    tokens = to_joint(codes, model.levels)
    if model.reads_audio:
        start = torch.zeros(1, dtype=torch.long)
        logits = model(torch.cat([start, tokens])[None], torch.cat([codes[:, :1], codes], dim=1)[None], audio[None])
        logits, targets = logits[..., 1:], tokens[1:]
        upper = model.encode(audio)
    else:
        # Frames 1..F-1 are predicted; the upper codes come from those frames plus a held last one.
        logits = model(tokens[None], codes[None])
        targets = tokens[1:]
        upper = model.encode(codes[:, 1:])
    nll = F.cross_entropy(logits.float(), targets[None], reduction="sum")
    return float(nll) / math.log(2), targets.numel(), upper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level1", required=True, help="the level-1 autoencoder checkpoint")
    parser.add_argument("--on-codes", required=True, help="level-2 autoencoder reading level-1 codes")
    parser.add_argument("--on-audio", required=True, help="level-2 autoencoder reading audio")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from wavegen.audio.io import read_audio
    from wavegen.codes.stats import rate_statistics
    from wavegen.data import build_dataset
    from wavegen.models.registry import load_model

    torch.set_num_threads(args.threads)
    level1, state = load_model(args.level1, family="autoencoder")
    sr = int(state["audio"]["sample_rate"])
    items = build_dataset(state["config"]["data"], state["config"]["audio"])[args.split]
    pieces = [read_audio(item.path, sr) for item in items]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{args.split} split: {len(pieces)} piece(s), {sum(p.numel() for p in pieces) / sr:.1f} s")
    designs = {"level-1 codes": load_model(args.on_codes, family="prior"),
               "audio": load_model(args.on_audio, family="prior")}
    for path, (model, _) in zip((args.on_codes, args.on_audio), designs.values()):
        if model.levels != level1.levels or model.cfg.hop != level1.hop:
            sys.exit(f"error: {path} models levels {model.levels} at hop {model.cfg.hop}, level 1 has "
                     f"{level1.levels} at hop {level1.hop}")
    # Both designs score the same audio: whole frames of either upper hop. Its level-1 codes are encoded once.
    hop = math.lcm(*(model.hop for model, _ in designs.values()))
    pieces = [p[: p.numel() // hop * hop] for p in pieces]
    codes = [level1.encode(p) for p in pieces]
    print("| level 2 reads | encoder parameters | steps | level-1 NLL, bits/frame | bits/s | "
          "upper events/s | upper bits/s: fixed-rate / entropy |")
    print("|---|---|---|---|---|---|---|")
    for label, (model, mstate) in designs.items():
        bits, frames, uppers = 0.0, 0, []
        for piece, piece_codes in zip(pieces, codes):
            b, n, upper = level1_nll_bits(model, piece, piece_codes)
            bits, frames = bits + b, frames + n
            uppers.append(upper)
        stats = rate_statistics(uppers, model.upper_levels, model.hop, sr)
        encoder_params = sum(p.numel() for p in model.encoder.parameters())
        per_frame = bits / frames
        print(f"| {label} | {encoder_params / 1e3:.1f} k | {int(mstate['step'])} | {per_frame:.3f} | "
              f"{per_frame * sr / level1.hop:.0f} | {stats.events_per_second:.1f} | "
              f"{stats.bits_per_second_fixed:.0f} / {stats.bits_per_second_entropy:.0f} |", flush=True)


if __name__ == "__main__":
    main()
