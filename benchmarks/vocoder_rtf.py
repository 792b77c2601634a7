"""Real-time factor of the diffusion vocoder at 16 kHz: plain PyTorch ops vs the fused kernels.

    python benchmarks/vocoder_rtf.py                          # base size, 6/2/1 steps, 2 threads, 2 s, median of 3
    python benchmarks/vocoder_rtf.py --sizes base,small --seconds 4 --repeats 5
    python benchmarks/vocoder_rtf.py --checkpoint runs/vocoder_piano/train/checkpoints/last.pt
    python benchmarks/vocoder_rtf.py --model piano-16k --steps 6,2   # the shipped model, its stored settings

Real-time factor = seconds spent vocoding / seconds of audio produced (below 1 is faster
than real time). "plain" runs every op through the PyTorch reference
(``WAVEGEN_KERNELS=reference``); "fused" lets :mod:`wavegen.kernels` use its compiled
FiLM + leaky ReLU and diffusion-update kernels where they build. Both run under
``torch.inference_mode`` through :func:`wavegen.diffusion.samplers.sample`. Weights are
random unless a checkpoint is given: the cost does not depend on what they learnt.
Also prints the work per step (GFLOP per second of audio) to compare with the machine,
and times Griffin-Lim (64 iterations, the evaluation's baseline) on the same mel in the
same run, so the ratio between the two does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(size: str):
    from omegaconf import OmegaConf

    from wavegen.config import compose
    from wavegen.models.registry import build_model

    cfg = compose([f"model=vocoder/{size}"])
    return build_model("vocoder", OmegaConf.to_container(cfg.model, resolve=True)).eval()


def gflop_per_audio_second(model, hop: int, sample_rate: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    frames = 16
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, frames * hop), torch.zeros(1, model.cfg.n_mels, frames), torch.tensor([0.5]))
    return counter.get_total_flops() / (frames * hop / sample_rate) / 1e9


def time_sample(model, mel, schedule, repeats: int, mel_projection: int = 0) -> float:
    import torch

    from wavegen.diffusion.samplers import sample

    sample(model, mel[..., :8], schedule, torch.Generator().manual_seed(0))  # warm-up, kernels loaded
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        sample(model, mel, schedule, torch.Generator().manual_seed(r), mel_projection=mel_projection)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="base", help="comma-separated model sizes (conf/model/vocoder)")
    parser.add_argument("--checkpoint", help="benchmark this vocoder checkpoint instead of random-weight sizes")
    parser.add_argument("--model", help="benchmark this shipped vocoder (wavegen.pretrained) instead")
    parser.add_argument("--steps", default="6,2,1")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mel-projection", type=int, default=None,
                        help="projection iterations after sampling (default: a checkpoint's stored count, else 0)")
    args = parser.parse_args()

    import torch

    from wavegen import kernels
    from wavegen.audio.dsp import AudioConfig
    from wavegen.diffusion.schedules import default_schedule

    torch.set_num_threads(args.threads)
    audio = AudioConfig()
    fused_ok = kernels.compiled_available("cpu")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"compiled CPU kernels: {'yes' if fused_ok else 'no (fused = reference)'}")
    if args.checkpoint or args.model:
        from wavegen.models.vocoder.checkpoint import load_vocoder

        if args.model:
            from wavegen.pretrained import shipped_file

            with shipped_file(args.model) as (path, _):
                model, ckpt = load_vocoder(path)
        else:
            model, ckpt = load_vocoder(args.checkpoint)
        audio = AudioConfig.from_mapping(ckpt["audio"])
        models = {args.model or Path(args.checkpoint).name: model}
        if args.mel_projection is None:
            from wavegen.models.vocoder.checkpoint import stored_mel_projection

            args.mel_projection = stored_mel_projection(ckpt)
    else:
        models = {size: build(size) for size in args.sizes.split(",")}
    frames = int(args.seconds * audio.sample_rate) // audio.hop_length
    mel = torch.randn(1, audio.n_mels, frames, generator=torch.Generator().manual_seed(0)) * 2 - 6
    projection = args.mel_projection or 0
    print(f"{frames * audio.hop_length / audio.sample_rate:.2f} s of audio per run, median of {args.repeats}; "
          f"{projection} mel-projection iteration(s) after sampling")
    print(f"{'model':>12s} {'params':>8s} {'GFLOP/step·s':>13s} {'steps':>5s} {'plain RTF':>10s} "
          f"{'fused RTF':>10s} {'plain/fused':>11s}")
    previous = os.environ.get("WAVEGEN_KERNELS")
    try:
        for name, model in models.items():
            params = sum(p.numel() for p in model.parameters()) / 1e6
            work = gflop_per_audio_second(model, audio.hop_length, audio.sample_rate)
            for n in [int(s) for s in args.steps.split(",")]:
                schedule = default_schedule(n)
                seconds_of_audio = frames * audio.hop_length / audio.sample_rate
                os.environ["WAVEGEN_KERNELS"] = "reference"
                plain = time_sample(model, mel, schedule, args.repeats, projection) / seconds_of_audio
                if previous is None:
                    os.environ.pop("WAVEGEN_KERNELS")
                else:
                    os.environ["WAVEGEN_KERNELS"] = previous
                fused = time_sample(model, mel, schedule, args.repeats, projection) / seconds_of_audio
                print(f"{name:>12s} {params:7.2f}M {work:13.1f} {n:5d} {plain:10.3f} {fused:10.3f} "
                      f"{plain / fused:10.2f}x", flush=True)
        from wavegen.audio.dsp import griffin_lim

        griffin_lim(mel[..., :8], audio, n_iter=64)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            griffin_lim(mel, audio, n_iter=64)
            times.append(time.perf_counter() - t0)
        print(f"{'griffin-lim':>12s} {'-':>8s} {'-':>13s} {'64 it':>5s} "
              f"{statistics.median(times) / (frames * audio.hop_length / audio.sample_rate):10.3f}")
    finally:
        if previous is None:
            os.environ.pop("WAVEGEN_KERNELS", None)
        else:
            os.environ["WAVEGEN_KERNELS"] = previous


if __name__ == "__main__":
    main()
