"""One-off diagnostic of round 12 (not part of the toolkit): does a strike stray because its burst is random?

A free-running continuation strikes a note by drawing a burst of wide, independent samples, which the predictor's
filter 1/A(z) rings. White noise has a flat spectrum only in expectation: each partial's share of one burst's
energy is random (its power exponentially distributed), so in one draw a faint partial of the prompt can come out
louder than the notes the prompt ended on. An impulse of the same energy has an exactly flat spectrum and rings
every partial at the level the filter holds it.

For each of the round's tuning prompts (``simple_harmony_probe.py``'s selection: the 8 of simplest harmony among
64 unseen pieces from ``--piece-offset``, on ``--soundfont``'s piano), the filter the predictor holds at the
prompt's end (Burg, each of ``--orders``, the last 1536 samples) is struck from rest by ``--draws`` white bursts of
128 samples and by one impulse of the same energy; each 0.5 s response is judged like a continuation's draw
(``chroma_rise_sources.py``): its chroma entropy, and whether its strongest pitch class (of its peaks) is one of
the prompt's last 0.25 s's strongest three (if not, it *strays*).

    python docs/ar_study/round12/scratch/burst_chroma.py --soundfont /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 \\
        --piece-offset 48 --orders 160 256 --out F
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.signal import lfilter

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from benchmarks.chroma_rise_sources import end_classes, split_entropy, strays  # noqa: E402
from benchmarks.simple_harmony_probe import tuning_clips  # noqa: E402
from wavegen.atomic import atomic_write  # noqa: E402
from wavegen.generate.continuation import simplest_prompts  # noqa: E402
from wavegen.nn.lpc import fit_lpc  # noqa: E402

RATE, WINDOW, BURST, SECONDS = 16000, 1536, 128, 0.5


def judge(response: np.ndarray, ends: list[int]) -> dict:
    row = split_entropy(torch.from_numpy(response.astype(np.float32)), RATE)
    return {"all": row["all"], "peaks": row["peaks"], "strays": strays(row, ends)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--soundfont", required=True)
    p.add_argument("--piece-offset", type=int, default=48)
    p.add_argument("--orders", type=int, nargs="+", default=[160, 256])
    p.add_argument("--draws", type=int, default=32)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    clips = simplest_prompts(tuning_clips(64, args.piece_offset, RATE, 3.0, args.soundfont), RATE, 8, RATE)
    rng = np.random.default_rng(0)
    length = int(SECONDS * RATE)
    impulse = np.zeros(BURST)
    impulse[0] = np.sqrt(BURST)
    prompts = [clip[:RATE] for clip in clips]
    ends = [end_classes(prompt, RATE) for prompt in prompts]  # what each prompt holds: measured once, for every order
    entropies = [split_entropy(prompt, RATE)["all"] for prompt in prompts]
    results = {}
    for order in args.orders:
        results[str(order)] = rows = []
        for prompt, end, entropy in zip(prompts, ends, entropies):
            a = fit_lpc(prompt[None, -WINDOW:], order, "burg")[0].double().numpy()
            denominator = np.concatenate([[1.0], -a])

            def ring(excitation):
                response = lfilter([1.0], denominator, np.pad(excitation, (0, length - len(excitation))))
                return response / max(np.abs(response).max(), 1e-12) * 0.5  # the level does not enter the chroma

            white = [judge(ring(rng.standard_normal(BURST)), end) for _ in range(args.draws)]
            row = {"prompt": entropy, "end_classes": end, "impulse": judge(ring(impulse), end), "white": white}
            rows.append(row)
            print(f"order {order}, prompt {row['prompt']:.2f}: impulse {row['impulse']['all']:.2f}"
                  f"{' strays' if row['impulse']['strays'] else ''}; white median "
                  f"{statistics.median(w['all'] for w in white):.2f}, strays {sum(w['strays'] for w in white)}/"
                  f"{len(white)}", flush=True)
    atomic_write(Path(args.out), json.dumps({"piece_offset": args.piece_offset, "orders": results}, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
