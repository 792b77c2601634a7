"""An autoencoder's way back to audio, scored against its input and against the vocoder on the true mel.

    python benchmarks/piano_ae_eval.py MODEL --set train [--clips 8 --seconds 4]   # for choices
    python benchmarks/piano_ae_eval.py MODEL --set validation                      # whole held-out pieces
    python benchmarks/piano_ae_eval.py MODEL --set unseen [--pieces 3 --seconds 10] # pianos never trained on

MODEL: a mel-decoder autoencoder checkpoint or a shipped name (``piano-ae``). Sets: clips of the
embedded set's training split (make choices on these); every validation piece whole (held out by
piece); and unseen compositions (``wavegen.data.unseen.unseen_pieces``) played by the SoundFonts
TimGM6mb and MuseScore General Lite, pianos the training data never used. Rows per set:

- ``input``: the clips themselves (peak-energy share and chroma entropy of real piano);
- ``vocoder(true mel)``: the autoencoder's vocoder on the clips' own log-mel (the ceiling of the way down);
- ``autoencoder``: ``decode(encode(x))``: codes -> predicted log-mel -> the vocoder;
  ``mel L1 (no vocoder)`` is the predicted log-mel against the clips' own.

Figures from :mod:`wavegen.audio.metrics`: log-mel L1 to the input (over all frames), peak-energy share and
chroma entropy (means over clips). Code rates from :func:`wavegen.codes.stats.rate_statistics`.
Seed 0 for the vocoder. Prints a markdown table; ``--json`` saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

def data_checkpoint(experiment: str) -> dict:
    """The data and audio config of ``experiment`` in the shape held_out_* functions read."""
    from omegaconf import OmegaConf

    from wavegen.config import compose

    cfg = compose([f"experiment={experiment}"])
    return {"config": {"data": OmegaConf.to_container(cfg.data, resolve=True)},
            "audio": OmegaConf.to_container(cfg.audio, resolve=True)}


def clip_sets(args, audio) -> dict:
    """name -> list of Tensor[T] clips."""
    from wavegen.evaluation.heldout import held_out_clips, held_out_pieces

    ckpt = data_checkpoint(args.experiment)
    if args.set == "train":
        return {"train clips": list(held_out_clips(ckpt, "train", args.clips, args.seconds, args.offset))}
    if args.set == "validation":
        return {"validation pieces": held_out_pieces(ckpt, "validation")}
    import torch

    from wavegen.data.unseen import unseen_pieces, unseen_sets

    print(f"unseen pieces: {', '.join(unseen_pieces(args.pieces))}", file=sys.stderr)
    # Whole mel frames, so the decoded audio lines up with the input sample for sample.
    seconds = int(args.seconds * audio.sample_rate) // audio.hop_length * audio.hop_length / audio.sample_rate
    return {name: [torch.from_numpy(clip) for clip in clips]
            for name, clips in unseen_sets(args.pieces, audio.sample_rate, seconds, args.offset).items()}


def score(reference: list, estimate: list, cfg) -> dict:
    import numpy as np
    import torch

    from wavegen.audio.dsp import mel_spectrogram
    from wavegen.audio.metrics import chroma_entropy, peak_energy_share

    l1 = [(mel_spectrogram(x, cfg) - mel_spectrogram(y, cfg)).abs() for x, y in zip(reference, estimate)]
    return {
        "log_mel_l1": float(torch.cat([d.reshape(-1) for d in l1]).mean()),
        "peak_share": float(np.mean([peak_energy_share(y) for y in estimate])),
        "chroma_entropy": float(np.mean([chroma_entropy(y, cfg.sample_rate) for y in estimate])),
    }


def evaluate(model, clips: list) -> dict:
    import torch

    from wavegen.codes.stats import rate_statistics

    cfg, vocoder = model.audio, model.vocoder
    codes = [model.encode(x) for x in clips]
    decoded = [model.decode(c, x.shape[-1], generator=torch.Generator().manual_seed(0)) for c, x in zip(codes, clips)]
    true_mel = [vocoder.vocode(vocoder.mel(x), generator=torch.Generator().manual_seed(0))[: x.shape[-1]]
                for x in clips]
    mel_l1 = torch.cat([(model.decode_mel(c, x.shape[-1])[..., : vocoder.mel(x).shape[-1]] - vocoder.mel(x))
                        .abs().reshape(-1) for c, x in zip(codes, clips)]).mean()
    stats = rate_statistics(codes, model.module.levels, model.hop, model.sample_rate)
    input_row = score(clips, clips, cfg)
    input_row["log_mel_l1"] = 0.0
    return {
        "seconds": sum(x.shape[-1] for x in clips) / cfg.sample_rate,
        "rows": {"input": input_row, "vocoder(true mel)": score(clips, true_mel, cfg),
                 "autoencoder": score(clips, decoded, cfg)},
        "mel_l1_no_vocoder": float(mel_l1),
        "rates": stats.to_dict(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a mel-decoder autoencoder checkpoint or a shipped name (piano-ae)")
    p.add_argument("--set", choices=("train", "validation", "unseen"), required=True)
    p.add_argument("--experiment", default="autoencoder_piano_mel", help="whose data config names the splits")
    p.add_argument("--clips", type=int, default=8, help="train: clips")
    p.add_argument("--pieces", type=int, default=3, help="unseen: compositions")
    p.add_argument("--seconds", type=float, default=4.0, help="train/unseen: seconds per clip")
    p.add_argument("--offset", type=float, default=5.0, help="train/unseen: where clips start")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()

    import torch

    import wavegen

    torch.set_num_threads(args.threads)
    model = wavegen.load(args.model)
    results = {name: evaluate(model, clips) for name, clips in clip_sets(args, model.audio).items()}
    print("| clips | system | log-mel L1 | peak share | chroma entropy |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        for system, row in r["rows"].items():
            print(f"| {name} ({r['seconds']:.1f} s) | {system} | {row['log_mel_l1']:.3f} | {row['peak_share']:.3f} | "
                  f"{row['chroma_entropy']:.2f} |")
        rates = r["rates"]
        print(f"| {name} | mel L1 (no vocoder) {r['mel_l1_no_vocoder']:.3f}; {rates['events_per_second']:.1f} "
              f"events/s, {rates['bits_per_second_naive']:.0f} bits/s run-length (naive), "
              f"{rates['bits_per_second_entropy']:.0f} entropy, {rates['bits_per_second_fixed']:.0f} raw frames | | | |")
    if args.json:
        from wavegen.atomic import atomic_write

        atomic_write(Path(args.json), json.dumps({"model": args.model, "set": args.set, "results": results},
                                                 indent=1).encode("utf-8"))


if __name__ == "__main__":
    main()
