"""Training throughput on one GPU: audio samples per second for the `base` WaveNet and the `base`
vocoder, to size a MAESTRO run.

    python benchmarks/gpu_train_throughput.py                        # CUDA, conf/train defaults (8 x 8192)
    python benchmarks/gpu_train_throughput.py --batch 16 --steps 20
    python benchmarks/gpu_train_throughput.py --device cpu --quick   # smoke test of the script itself

Each step is what wavegen.train.loop.Trainer.train_step does: the task's loss under the
family's autocast (bf16 for the categorical WaveNet; float32 for the vocoder, see
``autocast_dtype``), backward, gradient clipping, AdamW and the EMA update. Batches are random
audio already on the device (data loading is not measured: the loader renders segments on
CPU workers ahead of the GPU). "samples/s" counts the audio samples of the batches trained
per second; the epoch column divides one pass over MAESTRO v3's ~199 hours of audio at 16 kHz
by it. Imports only torch, numpy and wavegen (no Hydra), so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import torch

from common import describe_machine, rate, synchronize, table  # noqa: E402  (sets sys.path)

from wavegen.train.ema import EMA  # noqa: E402
from wavegen.train.loop import autocast_dtype  # noqa: E402

MAESTRO_HOURS = 199.2  # MAESTRO v3.0.0, all splits
SAMPLE_RATE = 16000


def build_task(name: str):
    """The task (loss, model, autocast choice) of the `base` size of ``name``, built without Hydra."""
    if name == "wavenet":
        from wavegen.models.wavenet import WaveNetConfig
        from wavegen.tasks.wavenet import WaveNetTask

        cfg = SimpleNamespace(model=WaveNetConfig().to_dict(), audio=SimpleNamespace(sample_rate=SAMPLE_RATE),
                              train={})
        return WaveNetTask(cfg)
    from wavegen.audio.dsp import AudioConfig
    from wavegen.models.vocoder import VocoderConfig
    from wavegen.tasks.vocoder import VocoderTask

    return VocoderTask(VocoderConfig(), AudioConfig(sample_rate=SAMPLE_RATE))


def measure(name: str, device: str, batch: int, segment: int, steps: int, warmup: int) -> dict:
    task = build_task(name)
    model = task.model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ema = EMA(model, 0.999)
    dtype = autocast_dtype(task, "auto", device)
    g = torch.Generator().manual_seed(0)
    audio = (0.3 * torch.randn(batch, segment, generator=g)).clamp(-1, 1).to(device)
    batch_dict = {"audio": audio, "piece": torch.zeros(batch, dtype=torch.long, device=device)}

    def step(index: int) -> None:
        with torch.autocast(device_type=device, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss, _ = task.loss(model, batch_dict)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update(model, index)

    for i in range(warmup):  # cuDNN algorithm choice, allocator growth
        step(i)
    synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    parameters = sum(p.numel() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    samples_per_s = batch * segment / seconds
    return {"model": f"base {name}", "params_m": parameters / 1e6, "precision": "bf16 autocast" if dtype else "fp32",
            "batch": batch, "segment": segment, "step_s": seconds, "samples_per_s": samples_per_s,
            "epoch_h": MAESTRO_HOURS * 3600 * SAMPLE_RATE / samples_per_s / 3600, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--models", nargs="*", default=["wavenet", "vocoder"], choices=["wavenet", "vocoder"])
    parser.add_argument("--batch", type=int, default=8, help="per GPU (conf/train/default.yaml: 8)")
    parser.add_argument("--segment", type=int, default=8192, help="samples per example (default 8192)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny batches and 2 steps: checks the script runs")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device (use --device cpu for a smoke test)")
    if args.quick:
        args.batch, args.segment, args.steps, args.warmup = 1, 1024, 2, 1
    rows = [measure(name, args.device, args.batch, args.segment, args.steps, args.warmup) for name in args.models]
    print(describe_machine(args.device))
    if args.device == "cuda":
        print(f"TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32} "
              "(torch defaults; the training loop does not change them)")
    print(f"training throughput, one {args.device} device, batch {args.batch} x {args.segment} samples, "
          f"mean of {args.steps} steps after {args.warmup} warm-up")
    print(table(["model", "params (M)", "precision", "step (s)", "samples/s", "MAESTRO epoch (h)", "peak GiB"],
                [[r["model"], f"{r['params_m']:.1f}", r["precision"], f"{r['step_s']:.3f}", rate(r["samples_per_s"]),
                  f"{r['epoch_h']:.1f}", f"{r['peak_gib']:.1f}"] for r in rows]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
