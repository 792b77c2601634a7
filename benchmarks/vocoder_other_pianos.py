"""A vocoder against Griffin-Lim on compositions and pianos it never trained on.

    python benchmarks/vocoder_other_pianos.py CKPT_OR_NAME [--pieces 3] [--seconds 10] [--steps 6]

Compositions: the first ``--pieces`` corpus pieces that the embedded dataset (default
spec, seed 0) does not select, so neither split holds them. Pianos: every General MIDI
SoundFont found in ``--soundfonts`` (default: the .sf2/.sf3 files under
/usr/share/sounds), rendered by fluidsynth, plus the built-in synthesiser. The training
data holds only the built-in piano and FluidR3, so any other SoundFont's piano is
unseen (Debian: ``timgm6mb-soundfont``, ``musescore-general-soundfont-small``). Each
row: ``--seconds`` from ``--offset`` of each piece, MR-STFT / LSD / log-mel L1 / peak
share from :mod:`wavegen.audio.metrics`, the vocoder at ``--steps`` (seed 0) and Griffin-Lim
(64 iterations) on the same mel. Prints a markdown table; ``--json`` saves the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a vocoder checkpoint or the name of a shipped one")
    p.add_argument("--tag", default="", help="a label for this run's vocoder rows")
    p.add_argument("--pieces", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--offset", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--mel-projection", type=int, default=None, help="default: the model's stored count")
    p.add_argument("--soundfonts", default="/usr/share/sounds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()

    import numpy as np
    import torch

    import wavegen
    from wavegen.audio.dsp import griffin_lim
    from wavegen.data.unseen import installed_soundfonts, render_unseen, unseen_pieces
    from wavegen.audio.metrics import log_mel_l1, log_spectral_distance, multi_resolution_stft_distance, peak_energy_share

    torch.set_num_threads(args.threads)
    vocoder = wavegen.load(args.model)
    cfg = vocoder.audio
    pieces = unseen_pieces(args.pieces)
    pianos = [("built-in", None)] + [(sf.stem, sf) for sf in installed_soundfonts(args.soundfonts)]
    rows = []
    for piano, path in pianos:
        clips = []
        for piece in pieces:
            # Whole mel frames, so the vocoder's output lines up with the input sample for sample.
            length = int(args.seconds * cfg.sample_rate) // cfg.hop_length * cfg.hop_length
            clip = render_unseen(piece, cfg.sample_rate, length / cfg.sample_rate, args.offset, path)
            clips.append(torch.from_numpy(clip))
        x = torch.stack(clips)
        mel = torch.stack([vocoder.mel(c) for c in clips])
        out = vocoder.vocode(mel, steps=args.steps, generator=torch.Generator().manual_seed(0),
                             mel_projection=args.mel_projection)
        torch.manual_seed(0)
        gl = griffin_lim(mel, cfg)[:, : x.shape[-1]]
        for name, y in ((f"vocoder {args.steps} steps{args.tag}", out), ("griffin-lim", gl)):
            rows.append({
                "piano": piano, "system": name,
                "log_mel_l1": float(log_mel_l1(x, y, cfg)),
                "mr_stft": float(multi_resolution_stft_distance(x, y)),
                "lsd_db": float(log_spectral_distance(x, y)),
                "peak_share": float(np.mean([peak_energy_share(c) for c in y])),
                "reference_peak_share": float(np.mean([peak_energy_share(c) for c in x])),
            })
        print(f"{piano}: done", file=sys.stderr, flush=True)
    print(f"{len(pieces)} unseen piece(s) × {args.seconds:g} s per piano: {', '.join(pieces)}")
    print("| piano | system | log-mel L1 | MR-STFT | LSD dB | peak share (input) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['piano']} | {r['system']} | {r['log_mel_l1']:.3f} | {r['mr_stft']:.3f} | {r['lsd_db']:.2f} | "
              f"{r['peak_share']:.3f} ({r['reference_peak_share']:.3f}) |")
    if args.json:
        Path(args.json).write_text(json.dumps({"pieces": pieces, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
