"""A short CUDA kernel run for compute-sanitizer (benchmarks/gpu_check.sh): `debug` sizes (and a
head wider than the skip width), every cluster size, both heads, free-running and forced.

    compute-sanitizer --tool racecheck python benchmarks/gpu_smoke.py [--steps 8]

Forced runs are compared with the reference (logits within 1e-4); free-running runs exercise
the sampler under the sanitizer and are only checked to produce valid tokens (two backends'
free-running streams may legitimately part at a class boundary: tests/kernel_inputs.py).
Exits non-zero on a mismatch. Imports only torch and wavegen.{kernels,models.wavenet}.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wavegen.kernels import reference, wavenet_generate  # noqa: E402
from wavegen.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402

# conf/model/wavenet/debug.yaml, with dilations cut so a few steps wrap every ring buffer.
DEBUG = dict(layers=4, dilation_cycle=4, kernel_size=2, residual_channels=8, gate_channels=16, skip_channels=16)


def check(head: str, cluster: int, steps: int, batch: int) -> bool:
    classes = 256 if head == "categorical" else 4
    cfg = WaveNetConfig(**DEBUG, head=head, classes=classes, mixtures=classes)
    torch.manual_seed(cluster)
    model = WaveNet(cfg).eval()
    os.environ["WAVEGEN_CUDA_CLUSTER"] = str(cluster)
    g = torch.Generator().manual_seed(cluster)
    state = model.init_state(batch)
    bias = model.frame_bias(batch)
    frames = torch.zeros(steps, dtype=torch.long)
    uniforms = torch.rand(steps, batch, 2, generator=g)
    if head == "categorical":
        forced = torch.randint(0, classes, (batch, steps), generator=g)
    else:
        forced = torch.rand(batch, steps, generator=g) * 2 - 1
    q_ref = state.queues.clone()
    _, ref_logits = reference.wavenet_generate(model.pack(), q_ref, 0, state.next_input, bias, frames, uniforms,
                                               forced, return_logits=True)
    gpu = model.cuda()
    args = (gpu.pack(), state.queues.cuda(), 0, state.next_input.cuda(), bias.cuda(), frames.cuda(), uniforms.cuda())
    _, logits = wavenet_generate(*args, forced.cuda(), return_logits=True, backend="cuda")
    sampled, _ = wavenet_generate(*args, return_logits=False, backend="cuda")
    model.cpu()
    error = (logits.cpu() - ref_logits).abs().max().item()
    valid = bool(((sampled >= 0) & (sampled < classes)).all()) if head == "categorical" else \
        bool((sampled.abs() <= 1).all())
    ok = error <= 1e-4 and valid
    print(f"{head} cluster {cluster}: forced logits max error {error:.2e}, sampled tokens "
          f"{'valid' if valid else 'INVALID'} {'ok' if ok else 'MISMATCH'}", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--clusters", type=int, nargs="*", default=[1, 2, 4, 16])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    failures = sum(not check(head, cluster, args.steps, args.batch)
                   for head in ("categorical", "mol") for cluster in args.clusters)
    torch.cuda.synchronize()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
