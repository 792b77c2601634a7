"""Sweep the CUDA WaveNet kernel's launch shapes on a GPU (tuning aid for benchmarks/gpu_check.sh).

For the `base` model, times the kernel with every cluster size (WAVEGEN_CUDA_CLUSTER), two
block sizes (WAVEGEN_CUDA_THREADS) and, at large batch, a few streams-per-cluster values
(WAVEGEN_CUDA_STREAMS), next to the planner's own choice. Configurations that cannot run
on the device are listed as such.

    python benchmarks/cuda_cluster_sweep.py [--weights float16]
"""

from __future__ import annotations

import argparse
import os

import torch

from common import describe_machine, rate, table, time_call  # noqa: E402  (sets sys.path)

from wavegen.kernels import build, wavenet_generate  # noqa: E402
from wavegen.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def run_rate(model, batch, n, dtype, env) -> str:
    for key in ("WAVEGEN_CUDA_CLUSTER", "WAVEGEN_CUDA_THREADS", "WAVEGEN_CUDA_STREAMS"):
        os.environ.pop(key, None)
    os.environ.update({k: str(v) for k, v in env.items()})
    packed = model.pack()
    state = model.init_state(batch, device="cuda")
    bias = model.frame_bias(batch)
    frames = torch.zeros(n, dtype=torch.long, device="cuda")
    uniforms = torch.rand(n, batch, 2, device="cuda")

    def run():
        wavenet_generate(packed, state.queues, state.t, state.next_input, bias, frames, uniforms, backend="cuda",
                         weights_dtype=dtype)

    try:
        run()
        wall, _ = time_call(run, "cuda", 3)
    except RuntimeError as exc:
        return "cannot run: " + str(exc).split(":")[-1].strip()[:60]
    return rate(n * batch / wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="float32", choices=list(DTYPES))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if not build.load("cuda").ok:
        raise SystemExit(f"CUDA kernels did not build: {build.status()['cuda'].error}")
    model = WaveNet(WaveNetConfig()).eval().cuda()
    dtype = DTYPES[args.weights]
    rows = []
    for batch, n in ((1, 8000), (16, 4000), (256, 1000)):
        rows.append([batch, "planner", "-", "-", run_rate(model, batch, n, dtype, {})])
        for cluster in (1, 2, 4, 8, 16):
            for threads in (256, 512):
                streams_options = [0] if batch < 256 else [0, 2, 4, 8, 16]
                for streams in streams_options:
                    env = {"WAVEGEN_CUDA_CLUSTER": cluster, "WAVEGEN_CUDA_THREADS": threads}
                    if streams:
                        env["WAVEGEN_CUDA_STREAMS"] = streams
                    rows.append([batch, cluster, threads, streams or "auto", run_rate(model, batch, n, dtype, env)])
        print(f"batch {batch} done", flush=True)
    print(describe_machine("cuda"))
    print(f"base WaveNet, weights {args.weights}; samples/s summed over the batch (median of 3)")
    print(table(["batch", "cluster", "threads", "streams/cluster", "samples/s"], rows))


if __name__ == "__main__":
    main()
