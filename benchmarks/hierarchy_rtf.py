"""Generation real-time factor of a hierarchy, both ways down to audio, on this machine.

    python benchmarks/hierarchy_rtf.py                       # tiny hierarchy, 10 s, 1 thread, median of 3
    python benchmarks/hierarchy_rtf.py --size debug --seconds 5 --repeats 1 --threads 2
    python benchmarks/hierarchy_rtf.py --compare-level2     # training cost of the two level-2 designs

Real-time factor = seconds spent generating / seconds of audio generated (below 1 is
faster than real time). Weights are random (``wavegen.hierarchy.randomised``): sampling
cost does not depend on what the weights learnt, only on the model sizes, which are the
ones the recipes train. Also prints each level's rate and parameter count.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=["debug", "tiny", "base"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--down", action="append", choices=["wavenet", "vocoder"], help="default: both")
    parser.add_argument("--compare-level2", action="store_true",
                        help="instead: time training steps of level 2 on level-1 codes vs on audio (tiny sizes)")
    args = parser.parse_args()
    if args.compare_level2:
        return compare_level2(args.threads)

    import torch

    from wavegen.hierarchy.assembly import generate_audio, load_hierarchy
    from wavegen.hierarchy.randomised import build_random_hierarchy

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} thread(s), device {device}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        paths = build_random_hierarchy(folder, args.size)
        for down in args.down or ["wavenet", "vocoder"]:
            h = load_hierarchy(paths["prior"], paths["level1"], paths["level2"], paths["codes_to_mel"],
                               paths["vocoder"], down, device)
            if down == "wavenet":
                params = {"prior": h.prior, "level-2 decoder": h.level2.net, "level-1 WaveNet decoder": h.level1.decoder}
            else:
                params = {"prior": h.prior, "level-2 decoder": h.level2.net, "codes -> mel": h.codes_to_mel,
                          "vocoder": h.vocoder}
            counts = ", ".join(f"{k} {sum(p.numel() for p in m.parameters()) / 1e6:.3f} M" for k, m in params.items())
            n = int(args.seconds * h.sample_rate)
            for _ in generate_audio(h, h.sample_rate // 2):  # warm-up: kernels built and loaded
                pass
            times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                total = sum(chunk.numel() for chunk in generate_audio(h, n, seed=r))
                times.append(time.perf_counter() - start)
                assert total == n
            rtf = statistics.median(times) / args.seconds
            print(f"{args.size} hierarchy, down: {down:8s} real-time factor {rtf:.3f} (median of {args.repeats}, "
                  f"{args.seconds:g} s of audio; runs {', '.join(f'{t:.2f}' for t in times)} s)")
            print(f"  parameters: {counts}")
            for level in h.levels():
                print(f"  {level['name']}: {level['levels']} levels at hop {level['hop']}: "
                      f"{level['frames_per_second']:g} frames/s, {level['bits_per_second_fixed']:.0f} bits/s fixed-rate")


def compare_level2(threads: int, steps: int = 6) -> None:
    """Seconds per training step of the two level-2 designs on the same level-1 codes and data."""
    import torch

    from wavegen.audio.io import read_audio
    from wavegen.config import compose
    from wavegen.data import build_dataset
    from wavegen.hierarchy.codeset import CodeSetWriter
    from wavegen.hierarchy.randomised import build_random_hierarchy
    from wavegen.tasks import build_task
    from wavegen.models.registry import load_model

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        level1 = build_random_hierarchy(tmp, "tiny")["level1"]
        ae, _ = load_model(level1)
        data = compose(["data=embedded_debug"])
        writer = CodeSetWriter(tmp / "codes1", ae.levels, ae.hop, ae.sample_rate, ae.fingerprint())
        for split, items in build_dataset(data.data, data.audio).items():
            for item in items:
                audio = read_audio(item.path, ae.sample_rate)
                writer.add(split, item.piece, ae.encode(audio, chunk_frames=4096), audio.numel())
        codeset = writer.finish()
        for name, extra in (("level2_tiny", f"codeset={codeset.root}"), ("level2_audio_tiny", f"autoencoder={level1}")):
            cfg = compose([f"model=prior/{name}", "data=embedded_debug", "train.segment_length=512",
                           "train.batch_size=8", extra])
            task = build_task(cfg)
            sampler = task.build_sampler(cfg, "train")
            opt = torch.optim.Adam(task.model.parameters(), 1e-3)
            times = []
            for step in range(steps):
                batch = sampler.batch(step)
                start = time.perf_counter()
                loss, _ = task.loss(task.model, batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - start)
            encoder = sum(p.numel() for p in task.model.encoder.parameters())
            total = sum(p.numel() for p in task.model.parameters())
            print(f"{name}: encoder {encoder / 1e3:.1f} k parameters, model {total / 1e3:.1f} k; seconds per step "
                  f"(batch 8 x 512 level-1 frames, {threads} thread(s)): {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
