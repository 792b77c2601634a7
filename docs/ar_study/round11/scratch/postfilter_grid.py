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


def fit(full: np.ndarray) -> np.ndarray:
    """np[T] prompt + continuation -> np[J, ORDER]: the predictor's coefficients of every block (the same for every
    (g1, g2), so fitted once per clip)."""
    coeffs = block_coefficients(torch.from_numpy(full[None]).float(), ORDER, WINDOW, REFIT, len(full), "burg")
    return coeffs[0].double().numpy()


def postfilter(full: np.ndarray, coeffs: np.ndarray, start: int, g1: float, g2: float) -> np.ndarray:
    """np[T] prompt + continuation, its :func:`fit` -> np[T - start]: the continuation postfiltered (g1 == g2:
    unchanged)."""
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


def prepare(data: dict) -> list[dict]:
    """Per clip of a saved set, what no setting changes: the prompt's chroma entropy and level, and each draw
    (prompt + continuation) with its :func:`fit`."""
    clips = []
    for clip, draws in zip(data["clips"], data["draws"]):
        prompt = clip[:RATE]
        fulls = [np.concatenate([prompt.numpy(), draw.numpy()]) for draw in draws]
        clips.append({"chroma": chroma_entropy(prompt, RATE), "rms": rms_dbfs(prompt), "draws": draws,
                      "fulls": [(full, fit(full)) for full in fulls]})
    return clips


def judge(clips: list[dict], setting) -> tuple[int, list, list]:
    """Prompts met (chroma, peak share, RMS; 4-draw medians), each prompt's chroma rise and median peak share."""
    met, rises, peaks = 0, [], []
    for clip in clips:
        chroma, peak, rms = [], [], []
        for draw, (full, coeffs) in zip(clip["draws"], clip["fulls"]):
            y = draw if setting is None else torch.from_numpy(postfilter(full, coeffs, RATE, *setting)).float()
            chroma.append(chroma_entropy(y, RATE))
            peak.append(peak_energy_share(y))
            rms.append(rms_dbfs(y))
        rise = statistics.median(chroma) - clip["chroma"]
        rises.append(rise)
        peaks.append(statistics.median(peak))
        met += rise <= 0.3 and peaks[-1] >= 0.5 and statistics.median(rms) >= clip["rms"] - 12
    return met, rises, peaks


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--grid", nargs="+", required=True, help="g1,g2 pairs")
    args = p.parse_args()
    torch.set_num_threads(1)
    saved = [torch.load(f) for f in args.files]
    data = [prepare(d) for d in saved]
    grid = [tuple(float(g) for g in pair.split(",")) for pair in args.grid]
    base = [judge(d, None) for d in data]
    base_rise, base_peak = sum((b[1] for b in base), []), sum((b[2] for b in base), [])
    print(f"no filter: met {[b[0] for b in base]}, rise max {max(base_rise):+.2f} median {statistics.median(base_rise):+.2f}")
    # The real next 2 s of every clip: its fit and its own figures, once for the whole grid.
    real_clips = []
    for c in torch.cat([d["clips"] for d in saved]):
        rest = c[RATE:]
        real_clips.append((c.numpy(), fit(c.numpy()), rest, chroma_entropy(rest, RATE), peak_energy_share(rest)))
    for setting in grid:
        res = [judge(d, setting) for d in data]
        rise, peak = sum((r[1] for r in res), []), sum((r[2] for r in res), [])
        real = [(chroma_entropy(y, RATE) - chroma, peak_energy_share(y) - share, float(log_mel_l1(rest, y, AudioConfig())))
                for full, coeffs, rest, chroma, share in real_clips
                for y in [torch.from_numpy(postfilter(full, coeffs, RATE, *setting)).float()]]
        real = np.array(real).mean(0)
        print(f"g1 {setting[0]}, g2 {setting[1]}: met {[r[0] for r in res]}, rise max {max(rise):+.2f} "
              f"median {statistics.median(rise):+.2f}, paired {np.mean(np.subtract(rise, base_rise)):+.3f}, "
              f"peak share paired {np.mean(np.subtract(peak, base_peak)):+.3f} | real piano: chroma {real[0]:+.3f}, "
              f"peak share {real[1]:+.3f}, log-mel L1 {real[2]:.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
