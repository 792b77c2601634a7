"""Which change bought what: the vocoder's MR-STFT on held-out clips against CPU minutes of training.

Arms, one change at a time (each trains on one thread for ``--minutes`` of process CPU time):

  old        the recipe before the few-step work, run from a checkout of that commit (--old-checkout)
  diffusion  + log-σ training levels, log-σ encoding, v-prediction, no clipping (white noise, old size)
  spectral   + SpecGrad-style noise shaped by the mel, level-normalised input
  stft       + MR-STFT loss on the clean estimate
  size       + the re-balanced `small` size (the previous shipped recipe, on the built-in piano only)
  energy     like `size` but with the PriorGrad-style energy prior instead of the spectral one
  denoiser   the STFT-domain denoiser with its training settings (batch 8 × 1 s, lr 1e-3): the
             shipped recipe, on the built-in piano only

Every arm's EMA weights vocode the same validation clips (6 steps, its own default schedule)
every ``--eval-every`` CPU minutes; the clips are saved and scored here with
:mod:`wavegen.audio.metrics`, beside Griffin-Lim on the same clips. Writes ``results.json``, a
markdown table and a plot into ``--out`` (default docs/ablation).

    python benchmarks/vocoder_ablation.py --old-checkout /tmp/wavegen-old --minutes 20
    python benchmarks/vocoder_ablation.py --report-only        # re-draw from results.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OLD_SIZE = ["model.upsample_channels=[256,128,64,32,24]", "model.downsample_channels=[8,16,32,64,128]",
            "model.mel_channels=256"]
BUILTIN = ["data.renderer=builtin"]
# The waveform-domain arms train as the recipe did before the STFT-domain denoiser.
WAVEFORM = ["model=vocoder/small", "train.batch_size=4", "train.segment_length=7680", "train.lr=5e-4"]
ARMS = {
    "old": None,  # the old checkout's own experiment=vocoder_piano
    "diffusion": [*WAVEFORM, "model.prior=white", "model.level_normalise=false", "objective.stft_weight=0", *OLD_SIZE,
                  *BUILTIN],
    "spectral": [*WAVEFORM, "objective.stft_weight=0", *OLD_SIZE, *BUILTIN],
    "stft": [*WAVEFORM, *OLD_SIZE, *BUILTIN],
    "size": [*WAVEFORM, *BUILTIN],
    "energy": [*WAVEFORM, "model.prior=energy", *BUILTIN],
    "denoiser": [*BUILTIN],
}


# ----------------------------------------------------------------------------- one arm (may run old code)


def run_arm(args: argparse.Namespace) -> None:
    """Train one arm in this process; save vocoded clips at every evaluation point.

    Uses only APIs that the old checkout has too (compose, build_task, build_sampler,
    task.loss, sample, default_schedule), so the same function drives both codes.
    """
    import copy

    import numpy as np
    import torch

    from wavegen.config import compose
    from wavegen.data import build_sampler
    from wavegen.diffusion.samplers import sample
    from wavegen.diffusion.schedules import default_schedule
    from wavegen.tasks import build_task

    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = compose(["experiment=vocoder_piano", *args.override])
    task = build_task(cfg)
    model = task.model.train()
    ema = copy.deepcopy(model).eval()
    sampler = build_sampler(cfg, "train")
    tc = cfg.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(tc.lr), betas=tuple(tc.betas), weight_decay=0.0)
    warmup, decay = int(tc.warmup_steps), float(tc.ema_decay)
    clips = torch.from_numpy(np.load(args.clips))
    from wavegen.diffusion.training import aligned_pair

    _, mel = aligned_pair(clips, task.audio)
    curve, step, cpu, next_eval = [], 0, 0.0, 0.0
    while True:
        if cpu >= next_eval:
            with torch.no_grad():
                vocoded = sample(ema, mel, default_schedule(6), torch.Generator().manual_seed(0))
            np.save(out / f"eval_{len(curve):03d}.npy", vocoded.numpy())
            curve.append({"step": step, "cpu_minutes": cpu / 60, "file": f"eval_{len(curve):03d}.npy"})
            (out / "curve.json").write_text(json.dumps(curve, indent=1))
            print(f"{args.name}: step {step}, {cpu / 60:.1f} CPU min", flush=True)
            next_eval += args.eval_every * 60
            if cpu >= args.minutes * 60:
                break
        t0 = time.process_time()
        for group in optimizer.param_groups:
            group["lr"] = float(tc.lr) * min(1.0, (step + 1) / max(warmup, 1))
        loss, _ = task.loss(model, sampler.batch(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(tc.grad_clip))
        optimizer.step()
        with torch.no_grad():
            d = min(decay, (1.0 + step) / (10.0 + step))
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1.0 - d)
        step += 1
        cpu += time.process_time() - t0


# ----------------------------------------------------------------------------- driver and report


def _clips(path: Path, count: int, seconds: float) -> None:
    """Validation clips of the built-in piano set, saved as one .npy Tensor[N, T]."""
    import numpy as np
    import torch

    from wavegen.audio.io import read_audio
    from wavegen.config import compose
    from wavegen.data import load_items

    cfg = compose(["experiment=vocoder_piano", *BUILTIN])
    items = [i for i in load_items(cfg.data, cfg.audio) if i.split == "validation"]
    length = int(seconds * 16000) // 256 * 256
    clips = []
    for item in items:
        wave = read_audio(item.path, 16000)
        for start in range(16000 * 5, wave.shape[0] - length, length * 3):
            clips.append(wave[start : start + length])
    np.save(path, torch.stack(clips[:count]).numpy())


def _score(clips, vocoded) -> dict:
    import torch

    from wavegen.audio.dsp import AudioConfig
    from wavegen.audio.metrics import log_mel_l1, log_spectral_distance, multi_resolution_stft_distance, peak_energy_share

    ref, est = torch.as_tensor(clips), torch.as_tensor(vocoded)[:, : clips.shape[-1]]
    return {"mr_stft": float(multi_resolution_stft_distance(ref, est)),
            "lsd_db": float(log_spectral_distance(ref, est)),
            "log_mel_l1": float(log_mel_l1(ref, est, AudioConfig())),
            "peak_share": sum(peak_energy_share(e) for e in est) / len(est)}


def _projected(clips, vocoded, iterations: int):
    """The vocoded clips finished by ``iterations`` of mel projection onto the reference clips' mels."""
    import torch

    from wavegen.audio.dsp import AudioConfig, project_to_mel
    from wavegen.diffusion.training import aligned_pair

    cfg = AudioConfig()
    _, mel = aligned_pair(torch.as_tensor(clips), cfg)
    est = torch.as_tensor(vocoded)
    return project_to_mel(est, mel[..., : est.shape[-1] // cfg.hop_length], cfg, iterations).numpy()


def _add_projection_row(results: dict, clips, work: Path, arm: str, iterations: int) -> None:
    """A row for ``arm``'s clips with the sampler's mel projection: a sampling change, no training."""
    import numpy as np

    points = [{**pt, **_score(clips, _projected(clips, np.load(work / arm / pt["file"]), iterations))}
              for pt in results["arms"][arm]["points"]]
    results["arms"][f"{arm}+projection"] = {"change": f"+ mel projection ×{iterations} at sampling (same weights)",
                                            "overrides": results["arms"][arm]["overrides"], "points": points}


def _griffin_lim(clips) -> dict:
    import torch

    from wavegen.audio.dsp import AudioConfig, griffin_lim, mel_spectrogram

    cfg = AudioConfig()
    ref = torch.as_tensor(clips)
    torch.manual_seed(0)
    gl = griffin_lim(mel_spectrogram(ref, cfg), cfg)[:, : ref.shape[-1]]
    return _score(ref.numpy(), gl.numpy())


def report(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    results = json.loads((out / "results.json").read_text())
    lines = ["| arm | change | steps | CPU min | MR-STFT | LSD dB | log-mel L1 | peak share |", "|---|---|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, arm in results["arms"].items():
        points = arm["points"]
        if not points:
            continue
        ax.plot([p["cpu_minutes"] for p in points], [p["mr_stft"] for p in points], marker="o", label=name)
        last = points[-1]
        lines.append(f"| {name} | {arm['change']} | {last['step']} | {last['cpu_minutes']:.1f} | {last['mr_stft']:.3f} | "
                     f"{last['lsd_db']:.2f} | {last['log_mel_l1']:.3f} | {last['peak_share']:.3f} |")
    gl = results["griffin_lim"]
    lines.append(f"| Griffin-Lim (64 it) | baseline | - | - | {gl['mr_stft']:.3f} | {gl['lsd_db']:.2f} | "
                 f"{gl['log_mel_l1']:.3f} | {gl['peak_share']:.3f} |")
    ax.axhline(gl["mr_stft"], color="k", ls="--", label="Griffin-Lim")
    ax.set_xlabel("training CPU minutes (one thread)")
    ax.set_ylabel(f"MR-STFT on {results.get('clips', '?')} validation clips (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=110)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    a = sub.add_parser("run-arm")
    a.add_argument("--name", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--clips", required=True)
    a.add_argument("--minutes", type=float, default=20)
    a.add_argument("--eval-every", type=float, default=4)
    a.add_argument("override", nargs="*")
    p.add_argument("--out", default="docs/ablation", help="results.json, table.md and ablation.png")
    p.add_argument("--work", default=".cache/ablation", help="the arms' runs and the evaluation clips")
    p.add_argument("--old-checkout", help="a checkout of the commit before the few-step work (arm `old`)")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--eval-every", type=float, default=4)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--projection", type=int, default=2,
                   help="mel-projection iterations of the extra row for the `denoiser` arm (0: no such row)")
    args = p.parse_args()
    if args.cmd == "run-arm":
        run_arm(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results_path = out / "results.json"
        results = json.loads(results_path.read_text())
        if args.projection and "denoiser" in results["arms"] and (Path(args.work) / "clips.npy").exists():
            import numpy as np

            _add_projection_row(results, np.load(Path(args.work) / "clips.npy"), Path(args.work), "denoiser",
                                args.projection)
            results_path.write_text(json.dumps(results, indent=1))
        report(out)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "clips.npy").exists():
        _clips(work / "clips.npy", args.clips, args.seconds)
    import numpy as np

    clips = np.load(work / "clips.npy")
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"arms": {}}
    results["griffin_lim"] = _griffin_lim(clips)
    results["clips"] = int(clips.shape[0])
    results["minutes_per_arm"] = args.minutes
    changes = {"old": "the recipe before", "diffusion": "log-σ levels, encoding, v-prediction, no clipping",
               "spectral": "+ spectral noise prior, level-normalised input", "stft": "+ MR-STFT loss on x̂",
               "size": "+ re-balanced small size", "energy": "energy prior instead of spectral",
               "denoiser": "STFT-domain denoiser (batch 8 × 1 s, lr 1e-3)"}
    here = Path(__file__).resolve()
    for name in args.arms.split(","):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        overrides = ARMS[name]
        if name == "old":
            if not args.old_checkout:
                print("skipping arm `old`: pass --old-checkout", flush=True)
                continue
            env["PYTHONPATH"] = str(Path(args.old_checkout).resolve())
            overrides = []
        cmd = [sys.executable, str(here), "run-arm", "--name", name, "--out", str(work / name),
               "--clips", str(work / "clips.npy"), "--minutes", str(args.minutes),
               "--eval-every", str(args.eval_every), *overrides]
        subprocess.run(cmd, env=env, check=True)
        curve = json.loads((work / name / "curve.json").read_text())
        points = [{**pt, **_score(clips, np.load(work / name / pt["file"]))} for pt in curve]
        results["arms"][name] = {"change": changes[name], "overrides": overrides, "points": points}
        if name == "denoiser" and args.projection:
            _add_projection_row(results, clips, work, name, args.projection)
        results_path.write_text(json.dumps(results, indent=1))
    report(out)


if __name__ == "__main__":
    main()
