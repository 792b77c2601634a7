"""Training speed under wavegen's default thread policy, beside the explicit settings, idle and busy.

    python benchmarks/thread_policy.py [--steps 60] [--repeats 3] [--experiment quickstart]

Each setting runs ``wavegen train experiment=EXPERIMENT`` twice in a fresh run folder, for 5 and
for 5 + ``--steps`` steps, and takes the difference of the wall times (start-up and data loading
cancel), so the figure is seconds per training step. Settings: ``train.threads`` 1, 2, ... up to
the usable cores and the default (0: wavegen.threads), on the machine as it is; then the default
and the all-cores setting beside one busy process (a Python busy loop). OMP_NUM_THREADS is removed
from the children's environment, since it would override the default. The issue's targets: the
default at least 0.9× as fast as the best setting when idle, and at most 1.5× slower beside one
busy process than idle.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_steps(experiment: str, steps: int, threads: int, folder: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, "-m", "wavegen.cli", "train", f"experiment={experiment}", f"train.steps={steps}",
           f"train.threads={threads}", "train.val_every=100000", "train.checkpoint_every=100000",
           "train.progress=false", "logger=none", f"train.run_dir={folder}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def seconds_per_step(experiment: str, steps: int, threads: int, repeats: int = 1) -> float:
    """Median over ``repeats`` of (wall(5 + steps) - wall(5)) / steps."""
    import statistics

    figures = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            short = run_steps(experiment, 5, threads, Path(tmp) / "a")
            long = run_steps(experiment, 5 + steps, threads, Path(tmp) / "b")
        figures.append(max(long - short, 1e-9) / steps)
    return statistics.median(figures)


@contextmanager
def busy_neighbour():
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--repeats", type=int, default=1, help="median of this many measurements per setting")
    args = p.parse_args()

    from wavegen.threads import usable_cores

    cores = usable_cores()
    print(f"{cores} usable cores, load average {os.getloadavg()[0]:.2f}; experiment={args.experiment}, "
          f"{args.steps} steps per figure (s/step from the difference of two runs), median of {args.repeats}")
    rows = {}
    for threads in [*range(1, cores + 1), 0]:
        rows[f"idle, threads={threads or 'default'}"] = seconds_per_step(args.experiment, args.steps, threads, args.repeats)
    with busy_neighbour():
        rows["busy, threads=default"] = seconds_per_step(args.experiment, args.steps, 0, args.repeats)
        rows[f"busy, threads={cores}"] = seconds_per_step(args.experiment, args.steps, cores, args.repeats)
    best = min(v for k, v in rows.items() if k.startswith("idle, threads=") and "default" not in k)
    idle_default = rows["idle, threads=default"]
    for name, value in rows.items():
        print(f"{name:28s} {value * 1000:8.1f} ms/step")
    print(f"default idle vs best idle: {best / idle_default:.2f}x the best speed (target >= 0.9)")
    print(f"default busy vs default idle: {rows['busy, threads=default'] / idle_default:.2f}x slower (target <= 1.5); "
          f"threads={cores} busy: {rows[f'busy, threads={cores}'] / idle_default:.2f}x")


if __name__ == "__main__":
    main()
