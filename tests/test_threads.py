"""The one thread policy (wavegen/threads.py): idle cores are used, a busy neighbour keeps its core,
an explicit choice wins, and long runs follow the load."""

import os
import time

import pytest
import torch

from wavegen import threads as T


class FakeStat:
    """/proc/stat as seen by the policy: each read advances every core by ``tick`` jiffies, of which
    ``busy_cores`` whole cores' worth are busy (with other processes: this test's own CPU use is nil)."""

    def __init__(self, cores: int, busy_cores: float, tick: float = 100.0):
        self.cores, self.busy_cores, self.tick = cores, busy_cores, tick
        self.busy = self.total = 0.0

    def __call__(self):
        self.busy += self.tick * self.busy_cores
        self.total += self.tick * self.cores
        return self.busy, self.total


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(T, "usable_cores", lambda: 4)
    monkeypatch.setattr(T.time, "process_time", lambda: 0.0)  # our own use: none
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


@pytest.mark.parametrize("busy, expected", [(0.0, 4), (0.1, 4), (1.0, 3), (2.0, 2), (2.6, 1), (4.0, 1)])
def test_idle_cores_are_used_and_busy_neighbours_keep_theirs(four_cores, busy, expected):
    four_cores.setattr(T, "_cpu_times", FakeStat(4, busy))
    assert T.choose_threads(0, window=0.0) == expected


def test_an_explicit_choice_wins(four_cores):
    four_cores.setattr(T, "_cpu_times", FakeStat(4, 3.0))
    assert T.choose_threads(3, window=0.0) == 3
    four_cores.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert T.choose_threads(0, window=0.0) == 2


def test_without_proc_stat_every_usable_core(four_cores):
    four_cores.setattr(T, "_cpu_times", lambda: None)
    assert T.choose_threads(0, window=0.0) == 4


def test_ranks_share_the_idle_cores(four_cores):
    four_cores.setattr(T, "_cpu_times", FakeStat(4, 0.0))
    assert T.choose_threads(0, ranks=2, window=0.0) == 2


def test_the_governor_keeps_the_faster_setting_and_follows_the_load(four_cores):
    """Training times a few steps with the idle cores and with one thread, keeps the faster, and
    runs the trial again when another process takes cores."""
    stat = FakeStat(4, 0.0)
    four_cores.setattr(T, "_cpu_times", stat)
    four_cores.setattr(T.time, "sleep", lambda s: None)
    clock = [0.0]
    four_cores.setattr(T.time, "monotonic", lambda: clock[0])
    governor = T.ThreadGovernor(recheck_seconds=30, trial_steps=3, warmup_steps=1)

    def train(steps, seconds_at):  # seconds per step at each thread count
        for _ in range(steps):
            governor.step_done(seconds_at[governor.threads])

    assert governor.threads == 4 == torch.get_num_threads()  # the trial starts with the idle cores
    train(8, {4: 0.20, 1: 0.10, 2: 0.15})  # 1 + 3 steps at 4 threads, 1 + 3 at 1 thread
    assert governor.threads == 1 == torch.get_num_threads() and governor.chosen == {4: 0.20, 1: 0.10}
    stat.busy_cores = 2.0  # a neighbour starts two busy threads
    clock[0] = 31.0
    train(1, {4: 0.20, 1: 0.10, 2: 0.15})
    assert governor.free == 2 and governor.threads == 2  # a new trial: 2 threads, then 1
    train(8, {2: 0.05, 1: 0.10})
    assert governor.threads == 2 and governor.chosen == {2: 0.05, 1: 0.10}
    clock[0] = 50.0
    train(20, {2: 0.05, 1: 0.10})
    assert governor.threads == 2  # no change in load, no new trial


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux's /proc/stat")
def test_the_real_measurement_is_a_core_count():
    others = T._Window()
    started = time.process_time()
    while time.process_time() - started < 0.05:  # some work of our own, which must not count, over several
        sum(i * i for i in range(20_000))           # /proc/stat ticks (10 ms): a shorter window can hold none
    busy = others.others_busy()
    assert busy is not None and 0.0 <= busy <= T.usable_cores()
