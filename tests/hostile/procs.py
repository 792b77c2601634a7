"""Running wavegen the way users do: fresh interpreters, torchrun, signals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def env(data_dir: Path | str | None = None, **extra: str) -> dict[str, str]:
    """The current environment, with this checkout importable and WAVEGEN_DATA set.

    ``PYTHONPATH`` puts the checkout first, so a subprocess runs this code even
    where wavegen is not installed. Threads are pinned so tests on two shared
    cores stay predictable.
    """
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    out.setdefault("OMP_NUM_THREADS", "1")
    out.pop("WAVEGEN_DEBUG", None)  # tracebacks on would defeat the one-line checks
    if data_dir is not None:
        out["WAVEGEN_DATA"] = str(data_dir)
    out.update(extra)
    return out


def wavegen_cmd(*args: str) -> list[str]:
    """``python -m wavegen.cli ARGS``: the entry point torchrun also uses."""
    return [sys.executable, "-m", "wavegen.cli", *map(str, args)]


def torchrun_cmd(nproc: int, *args: str, script: Path | None = None) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=N -m wavegen.cli ARGS``
    (or ``SCRIPT ARGS`` in place of ``-m wavegen.cli ARGS``)."""
    entry = [str(script)] if script is not None else ["-m", "wavegen.cli"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            *entry, *map(str, args)]


def run(cmd: list[str], cwd: Path, env_vars: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env_vars, capture_output=True, text=True, timeout=timeout)


def describe(proc: subprocess.CompletedProcess) -> str:
    """What to show when a subprocess check fails."""
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
