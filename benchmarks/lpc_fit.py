"""How should the backward-adaptive linear predictor be fitted for piano? NLL and free-running figures.

On the embedded set's *training* split (the choice of the predictor inside ``piano-tiny`` is
made here, never on validation clips), for each predictor setting:

- teacher-forced NLL in bits per sample (μ-law 256), the LPC baseline of :mod:`wavegen.nn.lpc`
  with that order / window / refit interval, on ``--clips`` 3 s clips (loudest first);
- ``--free-run`` settings only: the predictor alone continues ``--prompts`` 1 s prompts for
  2 s, refitting on its own output, each sample drawn from its logistic and quantised to
  μ-law (4 draws each): median peak-energy share, chroma entropy, RMS and copy score
  (:mod:`wavegen.audio.metrics`), beside the prompts' own figures.

``lag`` is the Gaussian lag window's width in Hz (with the -40 dB white-noise correction when
on, as speech codecs use; off: no window and a -90 dB correction). ``method``: the windowed
autocorrelation fit or Burg's (:mod:`wavegen.nn.lpc`). ``--compare-methods``: only piano-tiny's
setting (160 / 1536 / 128) by both methods; ``--simplest``: prompts of simplest harmony (lowest
chroma entropy among the loudest) instead of the loudest.

    python benchmarks/lpc_fit.py --out docs/ar_study/lpc_fit.md
    python benchmarks/lpc_fit.py --compare-methods --simplest --clips 8 --out docs/ar_study/round3/lpc_methods.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# (order, window, refit, lag_hz, method)
AC, BURG = "autocorrelation", "burg"
GRID = [(32, 1024, 256, 60.0, AC), (32, 1024, 256, 0.0, AC), (128, 2048, 256, 60.0, AC), (128, 2048, 256, 0.0, AC),
        (128, 2048, 128, 0.0, AC), (128, 2048, 64, 0.0, AC), (128, 1536, 128, 0.0, AC), (128, 3072, 128, 0.0, AC),
        (96, 2048, 128, 0.0, AC), (160, 2048, 128, 0.0, AC), (160, 1536, 128, 0.0, AC), (200, 1536, 128, 0.0, AC),
        (256, 2048, 128, 0.0, AC), (160, 1536, 128, 0.0, BURG)]
FREE_RUN = [(32, 1024, 256, 60.0, AC), (128, 2048, 256, 60.0, AC), (32, 1024, 256, 0.0, AC), (128, 2048, 256, 0.0, AC),
            (160, 1536, 128, 0.0, AC), (160, 1536, 128, 0.0, BURG)]
METHODS_ONLY = [(160, 1536, 128, 0.0, AC), (160, 1536, 128, 0.0, BURG)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="write the markdown table here (default: print only)")
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--smoke", action="store_true", help="two settings, two clips (seconds)")
    p.add_argument("--compare-methods", action="store_true", help="only 160/1536/128, by both fitting methods")
    p.add_argument("--simplest", action="store_true", help="prompts of simplest harmony, not the loudest")
    return p.parse_args(argv)


def training_clips(count: int, seconds: float = 3.0):
    from wavegen.config import compose
    from wavegen.data import loudest_clips

    cfg = compose(["model=wavenet/tiny", "data.renderer=both", "logger=none",
                   f"train.segment_length={int(seconds * 16000)}"])
    return loudest_clips(cfg, "train", count, max_batches=(count + 1) // 2 + 2), int(cfg.audio.sample_rate)


def set_lag(lag_hz: float, sample_rate: int) -> None:
    from wavegen.nn import lpc

    lpc.LAG_SIGMA = lag_hz / sample_rate
    lpc.WHITE_NOISE = 1e-4 if lag_hz > 0 else 1e-9


def free_run(prompt, order: int, window: int, refit: int, seconds: float, draws: int, seed: int,
             method: str = AC):
    """The predictor alone continuing Tensor[P] for ``seconds``: Tensor[draws, N] (μ-law-quantised draws)."""
    import torch

    from wavegen.audio.dsp import mu_law_decode, mu_law_encode
    from wavegen.nn.lpc import LPCState

    quantise = lambda v: mu_law_decode(mu_law_encode(v.clamp(-1, 1))).float()
    generator = torch.Generator().manual_seed(seed)
    state = LPCState.empty(draws, order, window, refit, method=method)
    signal = quantise(prompt)[None].repeat(draws, 1)
    mean, scale = state.predictive(signal)
    mean, scale = mean[:, -1], scale[:, -1]
    out = []
    for _ in range(int(seconds * 16000)):
        u = torch.rand(draws, generator=generator, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
        value = quantise((mean + scale * (torch.log(u) - torch.log1p(-u))).float())
        out.append(value)
        mean, scale = state.predictive(value[:, None])
        mean, scale = mean[:, 0], scale[:, 0]
    return torch.stack(out, dim=1)


def main(argv=None) -> int:
    import torch

    from wavegen.audio.metrics import chroma_entropy, copies_prompt, peak_energy_share, rms_dbfs
    from wavegen.nn.lpc import LPCBaseline

    args = parse_args(argv)
    torch.set_num_threads(1)
    grid, free = (GRID[:2], FREE_RUN[:1]) if args.smoke else (GRID, FREE_RUN)
    if args.compare_methods:
        grid = free = METHODS_ONLY
    clips, sr = training_clips(2 if args.smoke else args.clips)
    count = 1 if args.smoke else args.prompts
    if args.simplest:
        from wavegen.generate.continuation import simplest_prompts

        pool, _ = training_clips(48)
        prompts = simplest_prompts(pool[:, :sr], sr, count, sr)
    else:
        prompts = clips[:count, :sr]
    lines = ["| order | window | refit | lag window | method | NLL bits/sample | peak share | chroma H | RMS dBFS | copy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    prompt_row = [statistics.median(f(p) for p in prompts) for f in
                  (peak_energy_share, lambda p: chroma_entropy(p, sr), rms_dbfs)]
    for order, window, refit, lag, method in grid:
        set_lag(lag, sr)
        started = time.process_time()
        bits = float(LPCBaseline(order, window, refit, method).nll_bits(clips).mean())
        figures = ["", "", "", ""]
        if (order, window, refit, lag, method) in free:
            rows = []
            for i, prompt in enumerate(prompts):
                run = free_run(prompt, order, window, refit, 1.0 if args.smoke else 2.0, args.draws, i, method)
                rows += [(peak_energy_share(r), chroma_entropy(r, sr), rms_dbfs(r), copies_prompt(r, prompt, sr))
                         for r in run]
            figures = [f"{statistics.median(r[k] for r in rows):.3f}" for k in range(4)]
        lag_text = f"{lag:.0f} Hz" if lag else "none"
        lines.append(f"| {order} | {window} | {refit} | {lag_text} | {method} | {bits:.3f} | " + " | ".join(figures) + " |")
        print(lines[-1], f"({time.process_time() - started:.0f} s)", flush=True)
    set_lag(0.0, sr)
    lines.append(f"| prompts (real piano) | | | | | | {prompt_row[0]:.3f} | {prompt_row[1]:.3f} | {prompt_row[2]:.1f} | |")
    text = (f"Backward-adaptive LPC on {clips.shape[0]} training clips of 3 s (embedded set, both renderings); "
            f"free runs: {prompts.shape[0]} {'simplest-harmony' if args.simplest else 'loudest'} prompts of 1 s x "
            f"{args.draws} draws, 2 s each, medians. "
            "`python benchmarks/lpc_fit.py`\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        from wavegen.atomic import atomic_write

        atomic_write(Path(args.out), text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
