"""One thread policy for every command and config: how many torch CPU threads to use.

- An explicit count (``--threads N``, ``train.threads=N``) is used as given.
- ``OMP_NUM_THREADS`` set in the environment is the user's explicit choice and wins.
- Otherwise wavegen uses the cores it may run on (its CPU affinity) that *other* processes
  leave idle, measured from ``/proc/stat``; at least one. On an idle machine that is every
  usable core. Beside a busy process it leaves that process its core: torch's threads meet
  at a barrier after every parallel op, so one thread that shares a core with another busy
  process stalls all of them (on 2 cores, 20 quickstart training steps took 94 s with 2
  threads beside one busy process, 3 s with 1).
- Training goes one step further (:class:`ThreadGovernor`): it times a few steps with one
  thread and with the idle cores and keeps the faster (a small model trains faster on one
  thread), and re-measures the load every 30 s, running that trial again when it changed.

Only the standard library and torch; no measurement where ``/proc/stat`` does not exist
(every usable core is then assumed idle).
"""

from __future__ import annotations

import math
import os
import time
from typing import Optional

_STAT = "/proc/stat"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_times() -> Optional[tuple[float, float]]:
    """(busy, total) jiffies summed over this process's usable cores, or None without /proc/stat."""
    try:
        cores = os.sched_getaffinity(0)
    except AttributeError:
        return None
    try:
        with open(_STAT) as f:
            lines = f.readlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        fields = [float(x) for x in rest.split()]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        used = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
        busy += used - idle
        total += used
    return (busy, total) if total else None


class _Window:
    """CPU use between two snapshots: the cores busy with *other* processes."""

    def __init__(self):
        self.times = _cpu_times()
        self.own = time.process_time()

    def others_busy(self) -> Optional[float]:
        """Core-equivalents other processes kept busy since this snapshot (None without /proc/stat)."""
        now, own = _cpu_times(), time.process_time()
        if self.times is None or now is None or now[1] <= self.times[1]:
            return None
        busy, total = now[0] - self.times[0], now[1] - self.times[1]
        cores = usable_cores()
        seconds = total / cores / os.sysconf("SC_CLK_TCK")
        ours = (own - self.own) / max(seconds, 1e-9)
        return max(0.0, busy / total * cores - ours)


def _from_others(others: Optional[float], ranks: int) -> int:
    cores = usable_cores()
    # A core counts as taken once other processes keep it more than a quarter busy.
    taken = 0 if others is None else max(0, math.ceil(others - 0.25))
    return max(1, (cores - taken) // max(1, ranks))


def choose_threads(requested: int = 0, ranks: int = 1, window: float = 0.2) -> int:
    """The policy above: ``requested`` if positive, else OMP_NUM_THREADS if set, else the idle usable
    cores (measured over ``window`` seconds) split between this node's ``ranks``."""
    if requested > 0:
        return int(requested)
    if os.environ.get("OMP_NUM_THREADS") and ranks == 1:
        import torch

        return torch.get_num_threads()
    snapshot = _Window()
    time.sleep(window)
    return _from_others(snapshot.others_busy(), ranks)


class ThreadGovernor:
    """The training loop's thread policy: measure which thread count trains fastest, and follow the load.

    Which is faster, one thread or all the idle cores, depends on the model: a small WaveNet's ops
    are too short to split (on 2 idle cores the quickstart model trains faster on 1 thread), a big
    one gains. So the governor times a few steps at each candidate (1 and the idle usable cores),
    keeps the fastest, and re-measures the other processes' load every ``recheck_seconds``: when the
    idle cores change, it runs the trial again. Call :meth:`step_done` after every step.
    """

    def __init__(self, ranks: int = 1, recheck_seconds: float = 30.0, trial_steps: int = 5, warmup_steps: int = 2):
        self.ranks = ranks
        self.recheck_seconds = recheck_seconds
        self.trial_steps = trial_steps
        self.warmup_steps = warmup_steps
        self.threads = 0
        self.free = choose_threads(0, ranks)
        self.chosen: dict[int, float] = {}  # the last trial: threads -> median seconds per step
        self._start_trial()
        self._window = _Window()
        self._last = time.monotonic()

    def _set(self, threads: int) -> None:
        import torch

        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads

    def _start_trial(self) -> None:
        self._queue = sorted({1, self.free}, reverse=True)
        self._times: dict[int, list[float]] = {c: [] for c in self._queue}
        self._skip = self.warmup_steps
        self._set(self._queue[0])

    def step_done(self, seconds: float) -> None:
        """Report one training step's wall time."""
        if self._queue:  # a trial is running
            if self._skip:
                self._skip -= 1
                return
            times = self._times[self.threads]
            times.append(seconds)
            if len(times) < self.trial_steps:
                return
            self._queue.pop(0)
            if self._queue:
                self._skip = self.warmup_steps
                self._set(self._queue[0])
                return
            self.chosen = {c: sorted(t)[len(t) // 2] for c, t in self._times.items()}
            self._set(min(self.chosen, key=self.chosen.get))
            return
        now = time.monotonic()
        if now - self._last < self.recheck_seconds:
            return
        free = _from_others(self._window.others_busy(), self.ranks)
        self._window, self._last = _Window(), now
        if free != self.free:
            self.free = free
            self._start_trial()
