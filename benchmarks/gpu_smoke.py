"""A short CUDA kernel run for compute-sanitizer (benchmarks/gpu_check.sh): small sizes, every
cluster size, both heads; checks the result against the reference and exits non-zero if it
differs."""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wavegen.kernels import reference, wavenet_generate  # noqa: E402
from wavegen.models.wavenet import WaveNet, WaveNetConfig  # noqa: E402


def main() -> int:
    torch.set_grad_enabled(False)
    failures = 0
    for head in ("categorical", "mol"):
        cfg = WaveNetConfig(layers=6, dilation_cycle=6, residual_channels=16, gate_channels=24, skip_channels=20,
                            head=head, classes=32, mixtures=3, kernel_size=3)
        model = WaveNet(cfg).eval()
        for cluster in (1, 2, 4, 16):
            os.environ["WAVEGEN_CUDA_CLUSTER"] = str(cluster)
            B, n = 3, 40
            packed = model.pack()
            state = model.init_state(B)
            bias = model.frame_bias(B)
            frames = torch.zeros(n, dtype=torch.long)
            uniforms = torch.rand(n, B, 2)
            q = state.queues.clone()
            ref, ref_logits = reference.wavenet_generate(packed, q, 0, state.next_input, bias, frames, uniforms,
                                                         return_logits=True)
            gpu = model.cuda()
            tokens, logits = wavenet_generate(gpu.pack(), state.queues.cuda(), 0, state.next_input.cuda(),
                                              bias.cuda(), frames.cuda(), uniforms.cuda(), return_logits=True,
                                              backend="cuda")
            model.cpu()
            error = (logits.cpu() - ref_logits).abs().max().item()
            ok = error <= 1e-4 and (torch.equal(tokens.cpu(), ref) if head == "categorical" else True)
            print(f"{head} cluster {cluster}: max logit error {error:.2e} {'ok' if ok else 'MISMATCH'}", flush=True)
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
