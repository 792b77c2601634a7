"""Where a continuation's chroma rise comes from: its partials, or the noise between them.

Takes the same tuning prompts as ``simple_harmony_probe.py --source tuning`` (the ``--prompts`` of
simplest harmony among ``--pool`` unseen pieces from ``--piece-offset`` on, on ``--soundfont``'s
piano; pieces no evaluation reads), continues each ``--draws`` times at the model's sampling
defaults, and splits every clip's chroma entropy (the acceptance figure: mean over frames) in two
by the peak mask of the peak-energy share (:func:`wavegen.audio.metrics.peak_mask`):

- ``peaks``: the chroma of the power in the narrow peaks only (the partials);
- ``floor``: the chroma of the rest (the noise between them).

It also asks whether a draw plays the notes the prompt ended on: the prompt's last 0.25 s has a
strongest three pitch classes (by chroma power), and a draw *strays* when its own strongest class
(of its peaks) is not one of them.

    python benchmarks/chroma_rise_sources.py --soundfont /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 \\
        --piece-offset 48 --seed 0 --out runs/sources_set2.json
    python benchmarks/chroma_rise_sources.py --table runs/sources_set*.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/chroma_rise_sources.py` from a checkout
    sys.path.insert(0, str(ROOT))

END_SECONDS = 0.25  # the prompt's end whose notes a continuation should keep playing
END_CLASSES = 3


def split_entropy(audio, sample_rate: int) -> dict:
    """Tensor[T] -> the chroma entropy (bits, mean over frames) of the whole spectrum, of its peaks only and
    of the rest, and the peaks' pitch-class shares (12 floats, summing to 1).

    All three parts are binned into pitch classes with the whole spectrum's tuning (librosa would otherwise
    estimate one per part, and the floor's, from noise, is arbitrary), so the split differs from the whole
    only in which bins it keeps."""
    import numpy as np

    from wavegen.audio.metrics import _librosa, chroma_frame_entropy, peak_mask, power_spectrogram

    librosa = _librosa()
    power = power_spectrogram(audio)
    mask = peak_mask(power)
    tuning = librosa.estimate_tuning(S=power, sr=sample_rate, bins_per_octave=12)
    out = {}
    for name, part in (("all", power), ("peaks", power * mask), ("floor", power * ~mask)):
        chroma = librosa.feature.chroma_stft(S=part, sr=sample_rate, norm=None, tuning=tuning)
        entropy = chroma_frame_entropy(chroma)
        out[name] = float(entropy.mean()) if entropy.size else float("nan")
        if name == "peaks":
            total = chroma.sum()
            out["peak_classes"] = (chroma.sum(axis=1) / total if total > 0 else np.zeros(12)).tolist()
    return out


def end_classes(prompt, sample_rate: int) -> list[int]:
    """Tensor[P] prompt -> the strongest :data:`END_CLASSES` pitch classes of its last :data:`END_SECONDS`."""
    import numpy as np

    from wavegen.audio.metrics import _librosa

    end = prompt[-int(END_SECONDS * sample_rate):].float().numpy()
    chroma = _librosa().feature.chroma_stft(y=end, sr=sample_rate, norm=None).sum(axis=1)
    return [int(c) for c in np.argsort(-chroma)[:END_CLASSES]]


def strongest_class(row: dict) -> int:
    """The pitch class holding most of a clip's peak power (``split_entropy``'s ``peak_classes``)."""
    shares = row["peak_classes"]
    return max(range(12), key=lambda c: shares[c])


def strays(row: dict, ends: list[int]) -> bool:
    """Whether a draw (``split_entropy`` of it) plays loudest a class the prompt's end (``end_classes``) did not."""
    return strongest_class(row) not in ends


def measure(args) -> dict:
    import torch

    import wavegen
    from benchmarks.simple_harmony_probe import tuning_clips
    from wavegen.generate.continuation import continue_prompt, simplest_prompts

    torch.set_num_threads(1)
    model = wavegen.load(args.model)
    net = model.module.eval()
    rate = model.sample_rate  # 1 s prompts, 2 s continued, at the model's own rate
    clips = simplest_prompts(tuning_clips(args.pool, args.piece_offset, rate, 3.0, args.soundfont), rate,
                             args.prompts, rate)
    prompts = []
    for clip in clips:
        prompt = clip[:rate]
        ends = end_classes(prompt, rate)
        draws = continue_prompt(net, prompt, 2 * rate, args.draws, args.seed, **model.sampling)
        rows = []
        for draw in draws:
            row = split_entropy(draw, rate)
            row["strays"] = strays(row, ends)
            rows.append(row)
        prompts.append({"prompt": split_entropy(prompt, rate), "end_classes": ends, "draws": rows})
        print(f"prompt {prompts[-1]['prompt']['all']:.2f} bits: draws "
              + ", ".join(f"{r['all']:.2f} (peaks {r['peaks']:.2f}{', strays' if r['strays'] else ''})" for r in rows),
              flush=True)
    return {"model": args.model, "soundfont": str(args.soundfont), "piece_offset": args.piece_offset,
            "seed": args.seed, "prompts": prompts}


def table(paths: list[Path]) -> str:
    """Markdown: per file, the median rise (draw minus prompt) of each part's entropy; how much the noise between
    the partials adds to the whole spectrum's entropy (all minus peaks only) in the prompts and in the draws;
    and the strays."""
    lines = ["| file | draws | rise, all | rise, peaks only | rise, floor only | all minus peaks: prompts | draws "
             "| draws that stray | rise of straying draws | rise of the others |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in paths:
        report = json.loads(Path(path).read_text())
        rise = {k: [] for k in ("all", "peaks", "floor")}
        stray, kept, floor_prompts, floor_draws = [], [], [], []
        for p in report["prompts"]:
            floor_prompts.append(p["prompt"]["all"] - p["prompt"]["peaks"])
            for d in p["draws"]:
                floor_draws.append(d["all"] - d["peaks"])
                for k in rise:
                    rise[k].append(d[k] - p["prompt"][k])
                (stray if d["strays"] else kept).append(d["all"] - p["prompt"]["all"])
        med = lambda v: f"{statistics.median(v):+.2f}" if v else "-"
        n = len(rise["all"])
        lines.append(f"| {Path(path).name} | {n} | {med(rise['all'])} | {med(rise['peaks'])} | {med(rise['floor'])} "
                     f"| {med(floor_prompts)} | {med(floor_draws)} | {len(stray)}/{n} | {med(stray)} | {med(kept)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="piano-tiny")
    p.add_argument("--soundfont", type=Path)
    p.add_argument("--piece-offset", type=int, default=48)
    p.add_argument("--pool", type=int, default=64)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--table", nargs="+", type=Path, help="print the table of earlier --out files and stop")
    args = p.parse_args(argv)
    if args.table:
        missing = [str(f) for f in args.table if not f.is_file()]
        if missing:
            print(f"error: no such report: {missing[0]}", file=sys.stderr)
            return 2
        print(table(args.table))
        return 0
    if args.out is None or args.soundfont is None:
        print("error: --out and --soundfont are needed to measure (or --table to print earlier reports)",
              file=sys.stderr)
        return 2
    if not args.soundfont.is_file():
        print(f"error: no such soundfont: {args.soundfont}", file=sys.stderr)
        return 2
    from wavegen.atomic import atomic_write

    report = measure(args)
    atomic_write(args.out, json.dumps(report, indent=1).encode("utf-8"))
    print(table([args.out]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
