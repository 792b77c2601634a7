"""Autoregressive sampling speed of the `base` WaveNet: PyTorch reference vs compiled kernels.

`base`: 20 layers (dilations 1..512 twice), R=64, G=128, S=256, kernel size 2, mu-law 256
classes, random weights (speed does not depend on them). Each row times whole calls of
``wavegen.kernels.wavenet_generate`` (n samples per call, all streams) and reports samples
per second summed over the batch; "x real time" divides by 16,000 samples/s.

    python benchmarks/wavenet_speed.py                  # CPU, one thread, batch 1 and 16
    python benchmarks/wavenet_speed.py --device cuda    # GPU, batch 1, 16 and 256
    python benchmarks/wavenet_speed.py --quick          # fewer samples (smoke test)

On the CPU the rate is given from wall time and from process CPU time: on a shared, busy
machine the second is the fairer figure (it leaves out time other programs held the core).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import torch

from common import SAMPLE_RATE, describe_machine, rate, table, time_call  # noqa: E402  (sets sys.path)

from wavegen.kernels import build, wavenet_generate  # noqa: E402
from wavegen.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# What the CUDA kernel is built to reach on an H100/H200-class GPU: (batch, samples/s, per stream?).
CUDA_TARGETS = [(1, 64_000, True), (256, 4_000_000, False)]


@dataclass
class Row:
    backend: str
    weights: str
    batch: int
    samples: int
    wall_rate: float
    cpu_rate: float


def measure(model: WaveNet, device: str, backend: str, batch: int, n: int, weights: str, repeats: int) -> Row:
    packed = model.pack()
    state = model.init_state(batch, device=device)
    bias = model.frame_bias(batch).to(device)
    frame_index = torch.zeros(n, dtype=torch.long, device=device)
    uniforms = torch.rand(n, batch, 2, generator=torch.Generator().manual_seed(0)).to(device)
    dtype = DTYPES[weights]

    def run(steps=n):
        wavenet_generate(packed, state.queues, state.t, state.next_input, bias, frame_index[:steps],
                         uniforms[:steps], backend=backend, weights_dtype=dtype)

    run(min(n, 8))  # warm-up: build or load the extension, lay out the weights
    wall, cpu = time_call(run, device, repeats)
    return Row(backend, weights if backend != "reference" else "float32", batch, n, n * batch / wall,
               n * batch / cpu if device == "cpu" else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batches", type=int, nargs="*", help="default: 1 16 (cpu), 1 16 256 (cuda)")
    parser.add_argument("--weights", nargs="*", default=["float32", "float16", "bfloat16"], choices=list(DTYPES))
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads on the CPU (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="few samples, for a smoke test")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    device = args.device
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    batches = args.batches or ([1, 16] if device == "cpu" else [1, 16, 256])
    model = WaveNet(WaveNetConfig()).eval().to(device)
    if not build.load(device).ok:
        raise SystemExit(f"the {device} kernels did not build: {build.status()[device].error}")

    scale = 0.1 if args.quick else 1.0
    rows = []
    for batch in batches:
        if device == "cpu":
            ref_n = max(8, int((200 if batch == 1 else 40) * scale))
            kernel_n = max(16, int((4000 if batch == 1 else 600) * scale))
        else:
            ref_n = max(8, int(100 * scale))
            kernel_n = max(64, int({1: 20000, 16: 8000}.get(batch, 2000) * scale))
        reference_row = measure(model, device, "reference", batch, ref_n, "float32", args.repeats)
        rows.append(reference_row)
        for weights in args.weights:
            rows.append(measure(model, device, device, batch, kernel_n, weights, args.repeats))
        print(f"batch {batch} done", flush=True)

    cfg = model.cfg
    print()
    print(describe_machine(device))
    print(f"model: base WaveNet - {cfg.layers} layers, dilations 1..{max(cfg.dilations)}, R={cfg.residual_channels}, "
          f"G={cfg.gate_channels}, S={cfg.skip_channels}, k={cfg.kernel_size}, mu-law {cfg.classes}; "
          f"{'one CPU thread' if device == 'cpu' and args.threads == 1 else device}")
    headers = ["backend", "weights", "batch", "samples", "samples/s (wall)", "x ref", "x real time"]
    if device == "cpu":
        headers += ["samples/s (cpu time)", "x ref (cpu)"]
    if device == "cuda":
        headers.append("per stream/s")
    lines = []
    for row in rows:
        ref = next(r for r in rows if r.batch == row.batch and r.backend == "reference")
        line = [row.backend, row.weights, row.batch, row.samples, rate(row.wall_rate),
                f"{row.wall_rate / ref.wall_rate:.1f}", f"{row.wall_rate / SAMPLE_RATE:.2f}"]
        if device == "cpu":
            line += [rate(row.cpu_rate), f"{row.cpu_rate / ref.cpu_rate:.1f}"]
        if device == "cuda":
            line.append(rate(row.wall_rate / row.batch))
        lines.append(line)
    print(table(headers, lines))
    if device == "cuda":
        for batch, target, per_stream in CUDA_TARGETS:
            kernel_rows = [r for r in rows if r.batch == batch and r.backend == "cuda"]
            if not kernel_rows:
                continue
            figures = ", ".join(
                f"{r.weights} {rate(r.wall_rate / (batch if per_stream else 1))} "
                f"({'met' if r.wall_rate / (batch if per_stream else 1) >= target else 'NOT met'})"
                for r in kernel_rows)
            print(f"target at batch {batch}: >= {rate(target)} samples/s {'per stream' if per_stream else 'summed'}"
                  f" - {figures}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([row.__dict__ for row in rows], f, indent=1)


if __name__ == "__main__":
    main()
