"""One-off diagnostic of round 11: a codec-style LPC postfilter A(z/g1) / A(z/g2) on saved continuations
(``save_continuations.py``), and on the same clips' real next 2 s, for a grid of (g1, g2).

A(z) is piano-tiny's own predictor (Burg, order 160, window 1536, refitted every 128 samples on the audio so
far); the filter runs block by block from the prompt's end, and the level is matched to the unfiltered clip's
over sliding 2048-sample windows. Prints, per setting, the prompts met and the chroma rise of the continuations
(paired against no filter), and what the filter does to real piano (chroma entropy, peak share, log-mel L1).

    python docs/ar_study/round11/scratch/postfilter_grid.py set2.pt set3.pt --grid 0.9,0.98 0.98,0.99
"""
import argparse
import statistics
import sys

import numpy as np
import torch
from scipy.signal import lfilter, lfiltic

from wavegen.audio.dsp import AudioConfig
from wavegen.audio.metrics import chroma_entropy, log_mel_l1, peak_energy_share, rms_dbfs
from wavegen.nn.lpc import block_coefficients

RATE, REFIT, ORDER, WINDOW = 16000, 128, 160, 1536


def postfilter(full: np.ndarray, start: int, g1: float, g2: float) -> np.ndarray:
    """np[T] prompt + continuation -> np[T - start]: the continuation postfiltered (g1 == g2: unchanged)."""
    coeffs = block_coefficients(torch.from_numpy(full[None]).float(), ORDER, WINDOW, REFIT, len(full), "burg")
    coeffs = coeffs[0].double().numpy()
    k = np.arange(1, ORDER + 1)
    x = full.astype(np.float64)
    y_prev = np.pad(x[max(0, start - ORDER):start][::-1], (0, max(0, ORDER - start)))  # the prompt passes as it is
    out = np.zeros(len(full) - start)
    for j in range(start // REFIT, (len(full) + REFIT - 1) // REFIT):
        b = np.concatenate([[1.0], -coeffs[j] * g1**k])
        a = np.concatenate([[1.0], -coeffs[j] * g2**k])
        lo, hi = j * REFIT, min(len(full), (j + 1) * REFIT)
        x_prev = x[max(0, lo - ORDER):lo][::-1]
        y, _ = lfilter(b, a, x[lo:hi], zi=lfiltic(b, a, y_prev, np.pad(x_prev, (0, ORDER - len(x_prev)))))
        out[lo - start:hi - start] = y
        y_prev = np.concatenate([y[::-1], y_prev])[:ORDER]
    window = np.ones(2048) / 2048
    e_in, e_out = np.convolve(x[start:] ** 2, window, "same"), np.convolve(out**2, window, "same")
    return out * np.sqrt((e_in + 1e-12) / (e_out + 1e-12))


def judge(data: dict, setting) -> tuple[int, list, list]:
    """Prompts met (chroma, peak share, RMS; 4-draw medians), each prompt's chroma rise and median peak share."""
    met, rises, peaks = 0, [], []
    for clip, draws in zip(data["clips"], data["draws"]):
        prompt = clip[:RATE]
        chroma, peak, rms = [], [], []
        for draw in draws:
            y = draw if setting is None else torch.from_numpy(
                postfilter(np.concatenate([prompt.numpy(), draw.numpy()]), RATE, *setting)).float()
            chroma.append(chroma_entropy(y, RATE))
            peak.append(peak_energy_share(y))
            rms.append(rms_dbfs(y))
        rise = statistics.median(chroma) - chroma_entropy(prompt, RATE)
        rises.append(rise)
        peaks.append(statistics.median(peak))
        met += rise <= 0.3 and peaks[-1] >= 0.5 and statistics.median(rms) >= rms_dbfs(prompt) - 12
    return met, rises, peaks


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--grid", nargs="+", required=True, help="g1,g2 pairs")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = [torch.load(f) for f in args.files]
    grid = [tuple(float(g) for g in pair.split(",")) for pair in args.grid]
    base = [judge(d, None) for d in data]
    base_rise, base_peak = sum((b[1] for b in base), []), sum((b[2] for b in base), [])
    print(f"no filter: met {[b[0] for b in base]}, rise max {max(base_rise):+.2f} median {statistics.median(base_rise):+.2f}")
    clips = torch.cat([d["clips"] for d in data])
    for setting in grid:
        res = [judge(d, setting) for d in data]
        rise, peak = sum((r[1] for r in res), []), sum((r[2] for r in res), [])
        real = [(chroma_entropy(y, RATE) - chroma_entropy(c[RATE:], RATE), peak_energy_share(y) - peak_energy_share(c[RATE:]),
                 float(log_mel_l1(c[RATE:], y, AudioConfig())))
                for c in clips for y in [torch.from_numpy(postfilter(c.numpy(), RATE, *setting)).float()]]
        real = np.array(real).mean(0)
        print(f"g1 {setting[0]}, g2 {setting[1]}: met {[r[0] for r in res]}, rise max {max(rise):+.2f} "
              f"median {statistics.median(rise):+.2f}, paired {np.mean(np.subtract(rise, base_rise)):+.3f}, "
              f"peak share paired {np.mean(np.subtract(peak, base_peak)):+.3f} | real piano: chroma {real[0]:+.3f}, "
              f"peak share {real[1]:+.3f}, log-mel L1 {real[2]:.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
