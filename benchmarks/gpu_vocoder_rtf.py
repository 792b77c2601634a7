"""Real-time factor of the `base` diffusion vocoder on a GPU (no Hydra: runs on a bare GPU machine).

    python benchmarks/gpu_vocoder_rtf.py                     # 10 s clip, batch 1, 6 steps, median of 5
    python benchmarks/gpu_vocoder_rtf.py --steps 6 2 1 --seconds 10
    python benchmarks/gpu_vocoder_rtf.py --device cpu --seconds 1 --repeats 1   # smoke test

RTF = seconds spent vocoding / seconds of audio produced (target on an H200: < 0.002 at 6
steps). Vocoding is wavegen.diffusion.samplers.sample under ``torch.inference_mode`` with the
fused FiLM and diffusion-update kernels where they build (``--plain`` forces the PyTorch
reference), float32 weights, random weights (the cost does not depend on what they learnt).
Whether TF32 is on for matmuls and cuDNN convolutions is printed beside the figures: it
decides which tensor-core path float32 convolutions take.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from common import describe_machine, synchronize  # noqa: E402  (sets sys.path)

from wavegen import kernels  # noqa: E402
from wavegen.audio.dsp import AudioConfig  # noqa: E402
from wavegen.diffusion.samplers import sample  # noqa: E402
from wavegen.diffusion.schedules import default_schedule  # noqa: E402
from wavegen.models.vocoder import VocoderConfig, WaveGradVocoder  # noqa: E402

TARGET_RTF = 0.002


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--steps", type=int, nargs="*", default=[6])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--plain", action="store_true", help="PyTorch reference ops instead of the fused kernels")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device (use --device cpu for a smoke test)")
    if args.plain:
        os.environ["WAVEGEN_KERNELS"] = "reference"
    fused = not args.plain and kernels.compiled_available(device)

    audio = AudioConfig()
    torch.manual_seed(0)
    model = WaveGradVocoder(VocoderConfig()).eval().to(device)
    frames = int(args.seconds * audio.sample_rate) // audio.hop_length
    clip_seconds = frames * audio.hop_length / audio.sample_rate
    g = torch.Generator().manual_seed(0)
    mel = (torch.randn(args.batch, audio.n_mels, frames, generator=g) * 2 - 6).to(device)

    rows = []
    for steps in args.steps:
        schedule = default_schedule(steps)

        def run() -> None:
            with torch.inference_mode():
                sample(model, mel, schedule, torch.Generator().manual_seed(1))

        run()  # warm-up: cuDNN algorithm choice, kernel build or load
        times = []
        for _ in range(args.repeats):
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times.append(time.perf_counter() - start)
        rtf = statistics.median(times) / clip_seconds
        rows.append({"steps": steps, "seconds": clip_seconds, "batch": args.batch, "rtf": rtf})

    print(describe_machine(device))
    tf32 = (f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
            f"cuDNN {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")
    print(f"base vocoder ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters), float32, "
          f"{clip_seconds:.2f} s clip, batch {args.batch}, {'fused kernels' if fused else 'PyTorch reference ops'}, "
          f"median of {args.repeats}; {tf32 if device == 'cuda' else 'CPU'}")
    for row in rows:
        verdict = ""
        if device == "cuda" and row["steps"] == 6:
            verdict = f"   target < {TARGET_RTF}: {'met' if row['rtf'] < TARGET_RTF else 'NOT met'}"
        print(f"  {row['steps']} steps: RTF {row['rtf']:.5f}{verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
