"""Shared helpers for the benchmark scripts: machine description, timing, tables.

Benchmarks import only torch, numpy and wavegen.{nn,kernels,models.wavenet}, so they run
on a bare GPU machine as well as in the project's environment.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(ROOT))

SAMPLE_RATE = 16000  # real time, for the real-time factor column


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def describe_machine(device: str) -> str:
    lines = [
        f"machine: {cpu_name()}, {os.cpu_count()} logical cores, load average {load_average()}",
        f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, python {platform.python_version()}",
    ]
    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f"gpu: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB, "
                     f"CUDA {torch.version.cuda}")
    return "\n".join(lines)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(run: Callable[[], None], device: str, repeats: int = 3) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of ``run`` over ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        synchronize(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def table(headers: list[str], rows: list[list], title: str = "") -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    out = [title] if title else []
    out.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)
    return "\n".join(out)


def rate(value: float) -> str:
    return f"{value:,.0f}"
