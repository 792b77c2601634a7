"""Which autoregressive set-up learns piano on a CPU? Train each arm for the same CPU minutes, then compare.

Each arm is a list of Hydra overrides on top of the common ones. Per arm the script

1. trains with one thread until ``--minutes`` of this process's CPU time have passed
   (``train.max_minutes`` with ``train.minutes_clock=cpu``; validation time counts too),
   validating every ``--val-every`` steps (the learning curve);
2. scores the EMA weights on one common set of held-out clips (the validation split of
   the common data config, so arms trained on other data are still comparable):
   teacher-forced NLL in bits per sample, beside the LPC baseline's NLL on the same
   clips under the same quantisation (:mod:`wavegen.nn.lpc`: order 32, window 1024,
   refit 256);
3. continues ``--prompts`` 1 s prompts from that validation split for 2 s, ``--draws``
   streams each (4 independent random draws, generated as one batch), and reports the
   median peak-energy share, chroma entropy, RMS (dBFS) and prompt-copy score
   (:mod:`wavegen.audio.metrics`).

Outputs in ``--out``: ``results.json``, ``results.md`` (the table), ``learning_curves.png``
and one run folder per arm. Reference points (issue 12): real piano 0.91-0.96 peak share,
2.3-3.1 bits chroma entropy; white noise ~0 / 3.57; copy score >= 0.9 is copying.

    python benchmarks/ar_study.py --out runs/ar_study --minutes 20
    python benchmarks/ar_study.py --out /tmp/smoke --minutes 0.3 --smoke   # minutes, end to end
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/ar_study.py` from a checkout
    sys.path.insert(0, str(ROOT))

# Arms: name -> Hydra overrides (on top of COMMON and --override).
ARMS: dict[str, list[str]] = {
    "baseline": ["model=wavenet/tiny"],
    "lpc32": ["model=wavenet/tiny_lpc"],
    "mol": ["model=wavenet/tiny", "model.head=mol"],
    "mol_lpc32": ["model=wavenet/tiny_lpc", "model.head=mol"],
    "input_noise": ["model=wavenet/tiny", "train.input_noise=0.01"],
    # The tiny WaveNet on an order-160 predictor's residual (head lpc_mol, components centred on the
    # prediction: the shipped piano-tiny's model), and the same with the components' means free.
    "piano_tiny": ["model=wavenet/piano_tiny"],
    "piano_tiny_shift": ["model=wavenet/piano_tiny", "model.lpc_mean_shift=true"],
    "fluidsynth": ["model=wavenet/tiny", "data.renderer=fluidsynth"],  # own data root: see arm_overrides
    # Round 2, one change at a time from piano_tiny: width, depth (receptive field 1,023 -> 2,047 samples),
    # many short segments at the same samples per step, input noise against exposure bias, one renderer.
    "pt_wide": ["model=wavenet/piano_tiny", "model.residual_channels=64", "model.gate_channels=128",
                "model.skip_channels=128"],
    "pt_deep": ["model=wavenet/piano_tiny", "model.layers=20"],
    "pt_short": ["model=wavenet/piano_tiny", "train.batch_size=32", "train.segment_length=2048"],
    "pt_noise": ["model=wavenet/piano_tiny", "train.input_noise=0.005"],
    "pt_fluidsynth": ["model=wavenet/piano_tiny", "data.renderer=fluidsynth"],
    # LPCNet's pre-emphasis (0.85): the model learns x[t] - 0.85 x[t-1]; its NLL and LPC columns are in
    # that domain (compare their difference), its continuations are de-emphasised before judging.
    "pt_preemph": ["model=wavenet/piano_tiny", "train.pre_emphasis=0.85"],
    # The mixture's components started at different widths (log scales -1 .. 1 around the predictor's):
    # at piano_tiny's init they are identical, get identical gradients and train as one logistic.
    "pt_spread": ["model=wavenet/piano_tiny", "model.lpc_mixture_spread=1.0"],
    # The predictor fitted by Burg's method (no analysis window: narrower resonances when refitted on
    # its own output).
    "pt_burg": ["model=wavenet/piano_tiny", "model.lpc_method=burg"],
}
COMMON = ["logger=none", "train.threads=1", "train.progress=false", "train.minutes_clock=cpu",
          "train.steps=100000", "train.checkpoint_every=100000", "train.warmup_steps=20"]
SMOKE = ["data=embedded_debug", "train.batch_size=2", "train.segment_length=2048", "train.val_batches=1"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (one run folder per arm inside)")
    p.add_argument("--minutes", type=float, required=True, help="CPU minutes of training per arm")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated arms (default: all of {list(ARMS)})")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="a Hydra override applied to every arm (repeatable)")
    p.add_argument("--val-every", type=int, default=50, help="steps between validations (learning-curve points)")
    p.add_argument("--eval-clips", type=int, default=16, help="held-out clips scored for NLL")
    p.add_argument("--prompts", type=int, default=2, help="1 s prompts continued per arm")
    p.add_argument("--draws", type=int, default=4, help="random continuations per prompt (median reported)")
    p.add_argument("--prompt-seconds", type=float, default=1.0)
    p.add_argument("--continue-seconds", type=float, default=2.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--smoke", action="store_true", help=f"tiny data and batches for a quick end-to-end check: {SMOKE}")
    p.add_argument("--overwrite", action="store_true", help="retrain arms whose run folder exists")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- training


def arm_overrides(name: str, common: list[str]) -> list[str]:
    """The full override list of one arm; a data-changing arm gets its own dataset folder."""
    from wavegen.config import compose

    overrides = common + ARMS[name]
    if any(o.startswith("data.renderer=") for o in ARMS[name]):
        # The embedded set rebuilds its folder when a parameter changes: give this arm its own folder
        # instead of re-rendering the common one back and forth.
        root = str(compose(common).data.root)
        overrides.append(f"data.root={root}_{name}")
    return overrides


def emphasis_of(cfg) -> float:
    """The arm's pre-emphasis coefficient (0: none)."""
    return float(cfg.train.get("pre_emphasis", 0.0) or 0.0)


def train_arm(name: str, overrides: list[str], run_dir: Path, minutes: float, val_every: int) -> dict:
    from wavegen.config import compose
    from wavegen.train.loop import train

    cfg = compose(overrides + [f"train.run_dir={run_dir}", f"train.max_minutes={minutes}",
                               f"train.val_every={val_every}", f"name=ar_study_{name}"])
    started = time.process_time()
    result = train(cfg)
    curve = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "val_bits_per_sample" in row:
            curve.append({"step": row["step"], "cpu_minutes": row["train_minutes"],
                          "val_bits_per_sample": row["val_bits_per_sample"]})
    # The LPC baseline on the very clips the learning curve was measured on (the run's validation set).
    import torch

    from wavegen.data import build_sampler
    from wavegen.nn.lpc import lpc_nll_bits

    from wavegen.audio.dsp import pre_emphasis

    own = build_sampler(cfg, "validation").validation_batches(int(cfg.train.val_batches))
    own_audio = pre_emphasis(torch.cat([b["audio"] for b in own]), emphasis_of(cfg))
    quantisation = "mol" if cfg.model.head == "mol" else "mulaw"
    return {"steps": int(result["step"]), "pre_emphasis": emphasis_of(cfg),
            "cpu_minutes": (time.process_time() - started) / 60.0, "curve": curve,
            "own_val_bits_per_sample": curve[-1]["val_bits_per_sample"] if curve else None,
            "own_val_lpc_bits": lpc_nll_bits(own_audio, quantisation, classes=int(cfg.model.classes),
                                             bits=int(cfg.model.bits))}


# ----------------------------------------------------------------------------- evaluation


def held_out(common: list[str], segment_seconds: float | None, count: int):
    """Tensor[N, T] clips from the common data's validation split (``segment_seconds=None``: training length)."""
    from wavegen.config import compose
    from wavegen.data import loudest_clips

    cfg = compose(common)
    if segment_seconds is not None:
        cfg = compose(common + [f"train.segment_length={int(round(segment_seconds * int(cfg.audio.sample_rate)))}"])
    return loudest_clips(cfg, "validation", count), int(cfg.audio.sample_rate)


def continuation_figures(model, prompts, sample_rate: int, seconds: float, draws: int, temperature: float,
                         top_p: float, emphasis: float = 0.0) -> dict:
    """Median figures over every (prompt, draw) continuation, and every row.

    A model of pre-emphasised audio continues the emphasised prompt; prompt and continuation are
    de-emphasised together (the filter's state carries over) and the continuation is judged."""
    import torch

    from wavegen.audio.dsp import de_emphasis, pre_emphasis
    from wavegen.generate.continuation import continue_prompt
    from wavegen.audio.metrics import tonality_figures

    controls = {"temperature": temperature, "top_p": top_p} if model.cfg.head != "mol" else {"temperature": temperature}
    rows = []
    for i, prompt in enumerate(prompts):
        started = time.perf_counter()
        heard = pre_emphasis(prompt, emphasis)
        audio = continue_prompt(model, heard, int(seconds * sample_rate), draws, seed=i, **controls)
        if emphasis:
            whole = torch.cat([heard[None].expand(draws, -1), audio], dim=1)
            audio = de_emphasis(whole.double(), emphasis).float()[:, prompt.numel():]
        elapsed = time.perf_counter() - started
        rows += [{"prompt": i, "draw": d, **tonality_figures(a, sample_rate, prompt), "generation_seconds": elapsed / draws}
                 for d, a in enumerate(audio)]
    keys = ["peak_energy_share", "chroma_entropy", "rms_dbfs", "copy_score"]
    finite = lambda k: [r[k] for r in rows if r[k] == r[k]]  # chroma entropy is NaN for silence
    median = {k: (statistics.median(finite(k)) if finite(k) else float("nan")) for k in keys}
    median["copies"] = sum(bool(r["copies"]) for r in rows)
    return {"median": median, "rows": rows}


def prompt_figures(prompts, sample_rate: int) -> dict:
    """The same figures for the prompts themselves: what real (validation) audio scores."""
    from wavegen.audio.metrics import tonality_figures

    rows = [tonality_figures(p, sample_rate) for p in prompts]
    return {k: statistics.median(r[k] for r in rows) for k in ("peak_energy_share", "chroma_entropy", "rms_dbfs")}


# ----------------------------------------------------------------------------- reporting


def markdown(results: dict) -> str:
    lines = [
        f"# AR study: {results['minutes']} CPU minutes per arm, {results['eval_clips']} held-out clips, "
        f"{results['prompts']} prompts x {results['draws']} draws",
        "",
        f"Prompts (validation audio): peak share {results['prompt_figures']['peak_energy_share']:.3f}, "
        f"chroma entropy {results['prompt_figures']['chroma_entropy']:.2f}, "
        f"RMS {results['prompt_figures']['rms_dbfs']:.1f} dBFS. Piano 0.91-0.96 / 2.3-3.1; noise ~0 / 3.57.",
        "",
        "| arm | steps | CPU min | NLL bits/sample | LPC bits/sample | own val | own val LPC | peak share | chroma H "
        "| RMS dBFS | faded | copy score | copies | gen s/stream |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    quiet = results["prompt_figures"]["rms_dbfs"] - 12.0  # issue 12's level target
    for name, arm in results["arms"].items():
        m = arm["continuation"]["median"]
        rows = arm["continuation"]["rows"]
        gen = statistics.median(r["generation_seconds"] for r in rows)
        faded = sum(r["rms_dbfs"] < quiet for r in rows)
        lines.append(
            f"| {name} | {arm['steps']} | {arm['cpu_minutes']:.2f} | {arm['nll_bits']:.3f} | {arm['lpc_bits']:.3f} "
            f"| {arm['own_val_bits_per_sample']:.3f} | {arm['own_val_lpc_bits']:.3f} | {m['peak_energy_share']:.3f} "
            f"| {m['chroma_entropy']:.2f} "
            f"| {m['rms_dbfs']:.1f} | {faded}/{len(rows)} | {m['copy_score']:.3f} | {m['copies']}/{len(rows)} "
            f"| {gen:.1f} |")
    lines += ["", "NLL and LPC: teacher-forced on the same held-out clips (the loudest of the common validation "
              "split), same quantisation (μ-law 256 or 16-bit). Own val / own val LPC: the training run's last "
              "validation (train.val_batches x batch_size clips of the arm's own data) and the LPC baseline on "
              "those clips. Figures: medians over every prompt x draw; faded: draws more than 12 dB below the "
              "prompts' median RMS; gen s/stream: wall seconds to generate "
              "one stream (the streams of a prompt are generated together). A pre-emphasised arm's NLL, LPC and own-val "
              "columns are in its emphasised domain: compare their differences, not the values."]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, arm in results["arms"].items():
        curve = arm["curve"]
        line, = ax.plot([c["cpu_minutes"] for c in curve], [c["val_bits_per_sample"] for c in curve],
                        marker="o", label=name)
        ax.axhline(arm["own_val_lpc_bits"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("CPU minutes (one thread)")
    ax.set_ylabel("validation NLL, bits per sample")
    ax.set_title("Each arm's validation NLL (dotted: LPC baseline, same clips and quantisation)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from wavegen.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def collect(out: Path, results: dict) -> None:
    """Fill ``results['arms']`` from every ``out/<arm>/arm.json`` (in ARMS order) and write the table and plot."""
    results["arms"] = {name: json.loads((out / name / "arm.json").read_text())
                       for name in ARMS if (out / name / "arm.json").exists()}
    write_atomic(out / "results.json", json.dumps(results, indent=1, default=float))
    write_atomic(out / "results.md", markdown(results))
    plot(results, out / "learning_curves.png")


def write_atomic(path: Path, text: str) -> None:
    from wavegen.atomic import atomic_write

    atomic_write(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    import shutil

    import torch

    from wavegen.audio.dsp import pre_emphasis
    from wavegen.generate.continuation import teacher_forced_bits
    from wavegen.nn.lpc import lpc_nll_bits
    from wavegen.models.registry import load_model

    args = parse_args(argv)
    torch.set_num_threads(1)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"error: unknown arm(s) {unknown}; choose from {list(ARMS)}")
    if not args.minutes > 0:
        raise SystemExit("error: --minutes must be positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = COMMON + (SMOKE if args.smoke else []) + args.override

    clips, sample_rate = held_out(common, None, args.eval_clips)
    prompts, _ = held_out(common, args.prompt_seconds, args.prompts)
    results = {"minutes": args.minutes, "common_overrides": common, "eval_clips": int(clips.shape[0]),
               "prompts": int(prompts.shape[0]), "draws": args.draws, "temperature": args.temperature,
               "top_p": args.top_p, "prompt_figures": prompt_figures(prompts, sample_rate), "arms": {}}
    for name in arms:
        overrides = arm_overrides(name, common)
        run_dir = out / name
        if run_dir.exists() and args.overwrite:
            shutil.rmtree(run_dir)
        if (run_dir / "arm.json").exists():
            print(f"== {name}: measured already ({run_dir / 'arm.json'}; --overwrite retrains it)", flush=True)
            continue
        if run_dir.exists():
            raise SystemExit(f"error: {run_dir} exists without a finished arm.json (pass --overwrite to retrain)")
        print(f"== {name}: {' '.join(ARMS[name])}", flush=True)
        arm = {"overrides": overrides, **train_arm(name, overrides, run_dir, args.minutes, args.val_every)}
        model, _ = load_model(run_dir / "checkpoints" / "last.pt", family="wavenet", use_ema=True)
        model.eval()
        quantisation = "mol" if model.cfg.head == "mol" else "mulaw"
        heard = pre_emphasis(clips, arm["pre_emphasis"])  # the domain the arm's model learnt
        arm["nll_bits"] = teacher_forced_bits(model, heard)
        arm["lpc_bits"] = lpc_nll_bits(heard, quantisation, classes=model.cfg.classes, bits=model.cfg.bits)
        arm["continuation"] = continuation_figures(model, prompts, sample_rate, args.continue_seconds, args.draws,
                                                   args.temperature, args.top_p, arm["pre_emphasis"])
        write_atomic(run_dir / "arm.json", json.dumps(arm, indent=1, default=float))
        m = arm["continuation"]["median"]
        print(f"   {arm['steps']} steps, NLL {arm['nll_bits']:.3f} bits (LPC {arm['lpc_bits']:.3f}); continuation "
              f"peak share {m['peak_energy_share']:.3f}, chroma {m['chroma_entropy']:.2f}, "
              f"copy {m['copy_score']:.3f}", flush=True)
        # Rewritten after every arm, from every finished arm in --out: a stopped study keeps what it
        # measured, and studies run side by side (other --arms, same --out) share one table.
        collect(out, results)
    collect(out, results)
    print(markdown(results))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'learning_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
