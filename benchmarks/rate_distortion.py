"""Rate against distortion: variable-rate codes (slowness on) vs fixed-rate codes (slowness off).

Trains small autoencoders on the embedded piano set, then measures on its
validation split:

- rate: events/s, and bits/s three ways (see wavegen.codes.stats): sent frame by
  frame (fixed rate), the naive run-length bound (tuple + run length per event), and
  the empirical entropy of the events;
- distortion: the log-mel L1 of a small non-causal network trained to predict the
  log-mel from the frozen codes (a probe of what the codes can give back,
  deterministic, and independent of how far the WaveNet decoder has trained); the
  decoder's teacher-forced NLL given the codes (bits per sample over
  the whole split), the same under codes of other music (the piece's codes shifted
  by half its length) and their difference in bits per second, i.e. how much
  likelihood the codes buy; and the log-mel L1 and multi-resolution STFT distance
  between clips and reconstructions *sampled* by the WaveNet decoder from the codes.

Usage (from the repository root)::

    # train variants (each on one thread; run two at once in the background)
    python benchmarks/rate_distortion.py train variable --steps 1000 --overrides train.batch_size=4
    python benchmarks/rate_distortion.py train fixed --steps 1000 --overrides train.batch_size=4
    # a codes -> log-mel probe per variant (the mel its codes can give back)
    python benchmarks/rate_distortion.py probe variable fixed --steps 600
    # measure trained variants (merged into runs/rate_distortion/results.json), print the table
    python benchmarks/rate_distortion.py evaluate --variants variable fixed
    # the table of everything measured so far, and the rate-distortion plot
    python benchmarks/rate_distortion.py plot --png docs/images/rate_distortion.png

Variants (see VARIANTS): ``variable_10``, ``variable`` and ``variable_30`` (hop 64,
slowness steered to 10, 20 or 30 events/s); ``fixed_hop1024``, ``fixed`` and
``fixed_hop64`` (no slowness, hop 1024, 512 or 64: 244, 488 or 3906 bits/s sent frame
by frame; ``fixed`` costs about what ``variable`` does).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "rate_distortion"

VARIANTS = {
    "variable": ("autoencoder_tiny", ["model.slowness.target_events_per_second=20"],
                 "hop 64, slowness on (target 20 events/s)"),
    "variable_30": ("autoencoder_tiny", ["model.slowness.target_events_per_second=30"],
                    "hop 64, slowness on (target 30 events/s)"),
    "variable_10": ("autoencoder_tiny", ["model.slowness.target_events_per_second=10"],
                    "hop 64, slowness on (target 10 events/s)"),
    "fixed": ("autoencoder_tiny_fixed", [], "hop 512, slowness off"),
    "fixed_hop1024": ("autoencoder_tiny_fixed", ["model.hop=1024"], "hop 1024, slowness off"),
    "fixed_hop64": ("autoencoder_tiny", ["model.slowness.target_events_per_second=null",
                                         "model.slowness.initial_weight=0.0"], "hop 64, slowness off"),
}


# ----------------------------------------------------------------------------- training


def train(args) -> None:
    for name in args.variants:
        experiment, overrides, _ = VARIANTS[name]
        run_dir = RUNS / name
        argv = [sys.executable, "-m", "wavegen.cli", "train", f"experiment={experiment}", *overrides,
                f"train.run_dir={run_dir}", f"train.steps={args.steps}", f"train.threads={args.threads}",
                "train.progress=false", *args.overrides]
        print("+", " ".join(argv[2:]), flush=True)
        start = time.time()
        subprocess.run(argv, check=True, cwd=ROOT)
        (run_dir / "train_seconds.txt").write_text(f"{time.time() - start:.0f}\n")


# The probe's residual units, per code hop: seven units whose dilations add up to
# 8192 / hop - 1, so every probe sees the same +-8192 samples (0.51 s) of codes around
# each mel frame with the same number of parameters. (With one set of dilations for
# all, a hop-64 probe would see 8x less time than a hop-512 one: too little to find
# the onset of a note whose code has not changed for a few hundred milliseconds.)
PROBE_DILATIONS = {64: [1, 2, 4, 8, 16, 32, 64], 512: [1, 1, 1, 2, 2, 4, 4], 1024: [1, 1, 1, 1, 1, 1, 1]}


def train_probe(args) -> None:
    """Train a codes -> log-mel network on each variant's frozen codes: the mel its codes can give back."""
    from wavegen.models.registry import load_model

    for name in args.variants:
        ckpt = RUNS / name / "checkpoints" / "last.pt"
        model, _ = load_model(ckpt, family="autoencoder")
        levels = "[" + ",".join(str(v) for v in model.levels) + "]"
        dilations = "[" + ",".join(str(d) for d in PROBE_DILATIONS[model.hop]) + "]"
        argv = [sys.executable, "-m", "wavegen.cli", "train", "experiment=hierarchy_tiny_codes_to_mel",
                f"autoencoder={ckpt}", f"model.levels={levels}", f"model.hop={model.hop}",
                f"model.dilations={dilations}",
                f"train.run_dir={RUNS / name / 'probe'}", f"train.steps={args.steps}", f"train.threads={args.threads}",
                "train.progress=false", *args.overrides]
        print("+", " ".join(argv[2:]), flush=True)
        subprocess.run(argv, check=True, cwd=ROOT)


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def teacher_forced_nll(model, audio: torch.Tensor, indices: torch.Tensor, chunk: int = 16000) -> tuple[float, int]:
    """Summed NLL (nats) of Tensor[T] audio given its codes LongTensor[C, F], and the sample count.

    Chunks carry the decoder's receptive field of real context, so the result equals
    one pass over the whole piece (up to the silence before sample 0).
    """
    decoder, head = model.decoder, model.decoder.head
    local = model.decode_codes(indices[None])
    tokens = head.encode(audio[None])
    inputs = torch.cat([head.silence(1)[:, None].to(tokens.dtype), tokens[:, :-1]], dim=1)
    hop = model.hop
    # Enough real past for the causal stack and for the frame network's left neighbour.
    context = max(decoder.receptive_field, hop * (decoder.cfg.local_kernel // 2 + 1))
    total, count = 0.0, 0
    for start in range(0, audio.numel(), chunk):
        stop = min(start + chunk, audio.numel())
        lo = max(0, start - context) // hop * hop  # whole frames, so local frames line up
        logits = decoder(inputs[:, lo:stop], local=local[..., lo // hop :])
        nll = head.nll(logits[..., start - lo :], tokens[:, start:stop])
        total += float(nll.sum())
        count += stop - start
    return total, count


@torch.no_grad()
def probe_log_mel_l1(ckpt: Path, mels: list[torch.Tensor], codes: list[torch.Tensor]) -> float:
    """Mean |log-mel - probe(codes)| over every frame of the split's Tensor[1, n_mels, M] mels (nan without a probe)."""
    from wavegen.models.registry import load_model

    if not ckpt.exists():
        return float("nan")
    probe, _ = load_model(ckpt, family="codes_to_mel")
    total, count = 0.0, 0
    for target, idx in zip(mels, codes):
        error = (probe(idx[None], target.shape[-1]) - target).abs()
        total += float(error.sum())
        count += error.numel()
    return total / count


def clip_starts(lengths: list[int], clips: int, clip_samples: int, align: int) -> list[tuple[int, int]]:
    """(piece, start) pairs spread over the pieces, starts aligned to ``align`` samples."""
    usable = [i for i, n in enumerate(lengths) if n >= clip_samples + align]
    out = []
    for k in range(clips):
        piece = usable[k % len(usable)]
        round_ = k // len(usable)
        span = lengths[piece] - clip_samples
        start = int(span * ((round_ * 0.37 + 0.2) % 0.9)) // align * align
        out.append((piece, start))
    return out


def evaluate(args) -> None:
    from wavegen.audio.dsp import AudioConfig, mel_spectrogram
    from wavegen.audio.io import read_audio
    from wavegen.codes.stats import rate_statistics
    from wavegen.data import build_dataset
    from wavegen.audio.metrics import log_mel_l1, multi_resolution_stft_distance
    from wavegen.models.registry import load_model

    torch.set_num_threads(args.threads)
    names = [n for n in args.variants if (RUNS / n / "checkpoints" / "last.pt").exists()]
    if not names:
        sys.exit(f"no trained variants under {RUNS}; run the train step first")
    first = load_model(RUNS / names[0] / "checkpoints" / "last.pt", family="autoencoder")[1]
    cfg = first["config"]
    audio_cfg = AudioConfig.from_mapping(cfg["audio"])
    sr = audio_cfg.sample_rate
    items = build_dataset(cfg["data"], cfg["audio"])["validation"]
    pieces = [read_audio(item.path, sr) for item in items]
    seconds_total = sum(p.numel() for p in pieces) / sr
    clip_samples = int(args.seconds * sr)
    starts = clip_starts([p.numel() for p in pieces], args.clips, clip_samples, align=4096)
    originals = torch.stack([pieces[i][s : s + clip_samples] for i, s in starts])
    chance = float(log_mel_l1(originals, originals.roll(1, dims=0), audio_cfg))
    print(f"validation: {len(pieces)} pieces, {seconds_total:.1f} s; {len(starts)} clips of {args.seconds} s "
          f"for sampled reconstructions (temperature {args.temperature})", flush=True)
    mels = [mel_spectrogram(p[None].float(), audio_cfg) for p in pieces]
    rows = []
    previous = {r["variant"]: r for r in load_results().get("rows", [])}
    for name in names:
        model, state = load_model(RUNS / name / "checkpoints" / "last.pt", family="autoencoder")
        t0 = time.time()
        codes = [model.encode(p, chunk_frames=2048) for p in pieces]
        probe_l1 = probe_log_mel_l1(RUNS / name / "probe" / "checkpoints" / "last.pt", mels, codes)
        if args.probe_only:  # re-measure a retrained probe, keep the rest of the row
            rows.append({**previous[name], "probe_log_mel_l1": probe_l1})
            print(f"{name}: probe log-mel L1 {probe_l1:.3f}", flush=True)
            continue
        stats = rate_statistics(codes, model.levels, model.hop, sr)
        nll, nll_other, count = 0.0, 0.0, 0
        for piece, idx in zip(pieces, codes):
            n, c = teacher_forced_nll(model, piece, idx)
            # The same piece under codes shifted by half its length: codes of the right kind,
            # but about other music. The NLL it costs is what the right codes are worth.
            n_other, _ = teacher_forced_nll(model, piece, idx.roll(idx.shape[-1] // 2, dims=-1))
            nll += n
            nll_other += n_other
            count += c
        frames = -(-clip_samples // model.hop)  # starts are multiples of every hop
        clip_codes = torch.stack([codes[i][:, s // model.hop : s // model.hop + frames] for i, s in starts])
        generator = torch.Generator().manual_seed(args.seed)
        t1 = time.time()
        from wavegen.generate.autoencoder import decode

        recon = decode(model, clip_codes, clip_samples, temperature=args.temperature, generator=generator,
                             chunk_size=4000, backend=args.backend)
        sample_seconds = time.time() - t1
        train_seconds = (RUNS / name / "train_seconds.txt")
        row = {
            "variant": name,
            "setting": VARIANTS.get(name, ("", [], ""))[2],
            "steps": int(state["step"]),
            "train_minutes": float(train_seconds.read_text()) / 60 if train_seconds.exists() else float("nan"),
            "hop": model.hop,
            "frames_per_second": stats.frame_rate,
            "events_per_second": stats.events_per_second,
            "bits_per_second_naive": stats.bits_per_second_naive,
            "bits_per_second_entropy": stats.bits_per_second_entropy,
            "bits_per_second_fixed_equivalent": stats.bits_per_second_fixed,
            "nll_bits_per_sample": nll / count / math.log(2),
            "nll_bits_per_sample_other_codes": nll_other / count / math.log(2),
            "code_value_bits_per_second": (nll_other - nll) / count / math.log(2) * sr,
            "probe_log_mel_l1": probe_l1,
            "log_mel_l1": float(log_mel_l1(originals, recon, audio_cfg)),
            "mr_stft": float(multi_resolution_stft_distance(originals, recon)),
            "sampling_seconds": sample_seconds,
            "eval_seconds": time.time() - t0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        print(f"{name}: measured in {row['eval_seconds']:.0f} s (sampling {sample_seconds:.0f} s)", flush=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    results = load_results()
    merged = {r["variant"]: r for r in results.get("rows", [])}
    merged.update({r["variant"]: r for r in rows})
    order = [n for n in VARIANTS if n in merged]
    results.update({"rows": [merged[n] for n in order], "chance_log_mel_l1": chance,
                    "constant_log_mel_l1": constant_log_mel_l1(cfg, mels, audio_cfg),
                    "clips": len(starts), "clip_seconds": args.seconds, "temperature": args.temperature})
    from wavegen.atomic import atomic_write

    atomic_write(RUNS / "results.json", json.dumps(results, indent=1).encode("utf-8"))
    print_table(results)


def load_results() -> dict:
    path = RUNS / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


@torch.no_grad()
def constant_log_mel_l1(cfg, validation_mels: list[torch.Tensor], audio_cfg) -> float:
    """The probe's floor without information: L1 of the training split's per-bin median log-mel."""
    from wavegen.audio.dsp import mel_spectrogram
    from wavegen.audio.io import read_audio
    from wavegen.data import build_dataset

    train_items = build_dataset(cfg["data"], cfg["audio"])["train"]
    mels = torch.cat([mel_spectrogram(read_audio(item.path, audio_cfg.sample_rate)[None], audio_cfg)[0]
                      for item in train_items], dim=-1)
    median = mels.median(dim=-1, keepdim=True).values
    errors = [(mel[0] - median).abs() for mel in validation_mels]
    return float(sum(e.sum() for e in errors) / sum(e.numel() for e in errors))


def sent_bits(row: dict) -> float:
    """What a code costs as sent: frame by frame without slowness, run-length events with it."""
    return row["bits_per_second_naive"] if row["variant"].startswith("variable") else row["bits_per_second_fixed_equivalent"]


def print_table(results: dict) -> None:
    rows = results["rows"]
    print()
    print("| variant | setting | steps | events/s | bits/s as sent | bits/s: fixed-rate / naive RLE / entropy | "
          "log-mel L1 from codes (probe) | NLL bits/sample (other codes) | NLL saved, bits/s | "
          "log-mel L1 (sampled) | MR-STFT (sampled) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['setting']} | {r['steps']} | {r['events_per_second']:.1f} | {sent_bits(r):.0f} | "
              f"{r['bits_per_second_fixed_equivalent']:.0f} / {r['bits_per_second_naive']:.0f} / "
              f"{r['bits_per_second_entropy']:.0f} | {r['probe_log_mel_l1']:.3f} | "
              f"{r['nll_bits_per_sample']:.3f} ({r['nll_bits_per_sample_other_codes']:.3f}) | "
              f"{r['code_value_bits_per_second']:.0f} | {r['log_mel_l1']:.3f} | {r['mr_stft']:.3f} |")
    print(f"\nprobe without information (training split's median log-mel): {results['constant_log_mel_l1']:.3f}")
    print(f"sampled clips: {results['clips']} x {results['clip_seconds']} s at temperature {results['temperature']}; "
          f"chance level (log-mel L1 between different clips): {results['chance_log_mel_l1']:.3f}")


def plot(args) -> None:
    """Probe log-mel L1 against bits/s, variable-rate and fixed-rate codes as two curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load_results()
    if not results.get("rows"):
        sys.exit(f"no results under {RUNS}; run the evaluate step first")
    print_table(results)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for kind, marker in (("variable", "o"), ("fixed", "s")):
        rows = sorted((r for r in results["rows"] if r["variant"].startswith(kind)), key=sent_bits)
        x = [sent_bits(r) for r in rows]
        ax.plot(x, [r["probe_log_mel_l1"] for r in rows], marker=marker, label=f"{kind} rate, as sent")
        ax.plot([r["bits_per_second_entropy"] for r in rows], [r["probe_log_mel_l1"] for r in rows],
                marker=marker, linestyle=":", fillstyle="none", label=f"{kind} rate, run-length entropy")
        for r, xi in zip(rows, x):
            ax.annotate(r["variant"], (xi, r["probe_log_mel_l1"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axhline(results["constant_log_mel_l1"], color="grey", linewidth=0.8, label="no information")
    ax.set_xscale("log")
    ax.set_xlabel("code bits per second")
    ax.set_ylabel("log-mel L1 of the codes -> mel probe")
    ax.set_title("Rate against distortion, embedded piano validation split")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    for action, func, steps, what in (("train", train, 1500, "train variants (one after another)"),
                                      ("probe", train_probe, 600, "train a codes -> log-mel probe on each "
                                                                  "trained variant's codes")):
        t = sub.add_parser(action, help=what)
        t.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
        t.add_argument("--steps", type=int, default=steps)
        t.add_argument("--threads", type=int, default=1)
        t.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides for every run")
        t.set_defaults(func=func)
    g = sub.add_parser("plot", help="print the table from results.json and draw rate against distortion")
    g.add_argument("--png", default=str(RUNS / "rate_distortion.png"))
    g.set_defaults(func=plot)
    e = sub.add_parser("evaluate", help="measure every trained variant and print the table")
    e.add_argument("--variants", nargs="+", default=list(VARIANTS))
    e.add_argument("--clips", type=int, default=24)
    e.add_argument("--seconds", type=float, default=2.5)
    e.add_argument("--temperature", type=float, default=1.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--backend", default="auto")
    e.add_argument("--probe-only", action="store_true", help="re-measure only the probes of measured variants")
    e.set_defaults(func=evaluate)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
