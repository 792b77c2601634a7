"""Incremental sampling (queues) against recomputing the receptive field for every sample.

Naive autoregressive sampling runs the full forward pass over the last receptive-field
samples to get each new one: O(receptive field) work per sample. The incremental step keeps
per-layer queues and does O(layers) work per sample (Fast WaveNet, arXiv 1611.09482). This
script measures both, one CPU thread, for `base` (20 layers, receptive field 2,047) and a
deeper model (3 cycles of dilations 1..512 = 30 layers, receptive field 3,070), at batch 1
and 16. The incremental step is timed twice: through the PyTorch reference and through the
compiled kernel. The recompute path is slow, so it times only a few samples.

    python benchmarks/incremental_vs_recompute.py [--quick]
"""

from __future__ import annotations

import argparse

import torch

from common import describe_machine, rate, table, time_call  # noqa: E402  (sets sys.path)

from wavegen.kernels import build, wavenet_generate  # noqa: E402
from wavegen.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402

MODELS = {
    "base": WaveNetConfig(layers=20, dilation_cycle=10),
    "deep (30 layers)": WaveNetConfig(layers=30, dilation_cycle=10),
}


def recompute_rate(model: WaveNet, batch: int, samples: int, repeats: int) -> float:
    """Samples/s when every sample runs the full forward pass over the receptive field."""
    rf = model.receptive_field
    generator = torch.Generator().manual_seed(0)
    window = torch.randint(0, model.cfg.classes, (batch, rf), generator=generator)

    def run():
        tokens = window
        for _ in range(samples):
            logits = model(tokens[:, -rf:])[:, :, -1]  # only the last position is needed
            nxt = model.head.sample(logits, torch.rand(batch, 2, generator=generator))
            tokens = torch.cat([tokens[:, 1:], nxt[:, None]], dim=1)

    _, cpu = time_call(run, "cpu", repeats)
    return samples * batch / cpu


def incremental_rate(model: WaveNet, batch: int, samples: int, backend: str, repeats: int) -> float:
    packed = model.pack()
    state = model.init_state(batch)
    bias = model.frame_bias(batch)
    frame_index = torch.zeros(samples, dtype=torch.long)
    uniforms = torch.rand(samples, batch, 2, generator=torch.Generator().manual_seed(0))

    def run():
        wavenet_generate(packed, state.queues, state.t, state.next_input, bias, frame_index, uniforms,
                         backend=backend)

    run()  # warm-up
    _, cpu = time_call(run, "cpu", repeats)
    return samples * batch / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    kernel_ok = build.load("cpu").ok

    rows = []
    for name, cfg in MODELS.items():
        model = WaveNet(cfg).eval()
        for batch in (1, 16):
            rec_n = 1 if args.quick else (4 if batch == 1 else 2)
            ref_n = 20 if args.quick else (200 if batch == 1 else 50)
            ker_n = 100 if args.quick else (2000 if batch == 1 else 300)
            recompute = recompute_rate(model, batch, rec_n, args.repeats)
            reference = incremental_rate(model, batch, ref_n, "reference", args.repeats)
            kernel = incremental_rate(model, batch, ker_n, "cpu", args.repeats) if kernel_ok else float("nan")
            rows.append([name, model.receptive_field, batch, rate(recompute), rate(reference), rate(kernel),
                         f"{reference / recompute:.0f}", f"{kernel / recompute:.0f}"])
            print(f"{name} batch {batch} done", flush=True)

    print()
    print(describe_machine("cpu"))
    print("one CPU thread; rates from process CPU time (median of 3 runs); random weights, mu-law 256, k=2")
    print(table(["model", "receptive field", "batch", "recompute /s", "incremental ref /s",
                 "incremental kernel /s", "ref x recompute", "kernel x recompute"], rows))


if __name__ == "__main__":
    main()
