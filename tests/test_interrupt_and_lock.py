"""Nothing lost: SIGINT/SIGTERM save the step they interrupt; one process per run directory and recipe root."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile import procs
from wavegen.cli import main
from wavegen.locking import LOCK_NAME, FolderLock
from wavegen.errors import WavegenError
from wavegen.checkpoint import load_checkpoint
from wavegen.train.checkpoint import latest_checkpoint

DEBUG = ["experiment=wavenet_debug", "train.threads=1", "train.log_every=1", "train.val_every=1000",
         "train.checkpoint_every=1000"]
LINE = re.compile(r"^interrupted at step (\d+): checkpoint saved to (\S+); run the same command to resume$")


def logged_steps(run_dir: Path) -> list[int]:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return []
    return [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line.endswith("}")]


def wait_until(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.02)
    pytest.fail(f"{what}: not within {timeout} s")


# ~20 s each (two fresh interpreters); SIGTERM takes the same path, so it runs with -m slow.
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130),
                                          pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_a_signal_saves_the_step_in_progress_and_the_same_command_resumes(signum, code, tmp_path, data_dir):
    run = tmp_path / "run"
    argv = ["train", *DEBUG, "train.steps=400", f"train.run_dir={run}"]
    proc = subprocess.Popen(procs.wavegen_cmd(*argv), cwd=tmp_path, env=procs.env(data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(logged_steps(run)) >= 3, proc, 120, "step 3")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    match = LINE.match(lines[-1])
    assert match, f"last stderr line: {lines[-1]!r}"
    step = int(match.group(1))
    assert 3 <= step < 400 and "done:" not in out
    # The checkpoint of exactly that step (train.checkpoint_every=1000 would have saved none) ...
    saved = Path(match.group(2))
    assert saved == run / "checkpoints" / f"step_{step:08d}.pt"
    assert load_checkpoint(saved)["step"] == step == load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"]
    assert max(logged_steps(run)) == step  # the step it stopped at was the last one trained
    # ... and the same command carries on from it (to a nearer end, so the test stays short).
    again = procs.run(procs.wavegen_cmd(*argv[:-2], f"train.steps={step + 2}", f"train.run_dir={run}"),
                      tmp_path, procs.env(data_dir), timeout=120)
    assert again.returncode == 0, procs.describe(again)
    assert f"resuming from {saved} (step {step})" in again.stdout
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step + 2


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock until killed."""
    code = ("import sys, time; from wavegen.locking import FolderLock; FolderLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], env=procs.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def test_a_held_lock_names_its_holder_and_a_killed_holder_s_lock_is_taken_over(tmp_path):
    holder = _hold_lock(tmp_path / "run")
    try:
        with pytest.raises(WavegenError) as info:
            FolderLock(tmp_path / "run", "train.run_dir").acquire()
        message = str(info.value)
        assert message.startswith(f"train.run_dir {tmp_path / 'run'} is in use by process {holder.pid} on "
                                  f"{socket.gethostname()} (started ")
        assert "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The lock file is still there with the dead holder's record, but the kernel released the lock.
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == holder.pid
    with FolderLock(tmp_path / "run"):
        assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(WavegenError, match=f"in use by process {os.getpid()}"):  # even within one process
            FolderLock(tmp_path / "run").acquire()
    FolderLock(tmp_path / "run").acquire().release()  # released on exit


def test_a_second_train_in_a_run_directory_is_refused_in_one_line(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    holder = _hold_lock(run)
    try:
        assert main(["train", *DEBUG, "train.steps=2", f"train.run_dir={run}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: train.run_dir {run} is in use by process {holder.pid}")
        assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert main(["train", *DEBUG, "train.steps=2", f"train.run_dir={run}"]) == 0  # kill -9'd holder: taken over
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2


def test_a_second_recipe_run_on_one_root_is_refused_in_one_line(tmp_path, data_dir, capsys):
    root = tmp_path / "recipe"
    holder = _hold_lock(root)
    try:
        assert main(["recipe", "run", "quickstart", "--root", str(root), "--train", "train.steps=1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: the recipe root {root} is in use by process {holder.pid}")
        assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]  # no stage started
        # A dry run only reads, so it is not refused.
        assert main(["recipe", "run", "quickstart", "--root", str(root), "--dry-run"]) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.slow
def test_under_ddp_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path, data_dir):
    run = tmp_path / "run"
    cmd = procs.torchrun_cmd(2, "train", *DEBUG, "train.steps=400", f"train.run_dir={run}")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=procs.env(data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(logged_steps(run)) >= 3, proc, 240, "step 3")
        rank1 = [pid for pid in _children(proc.pid) if _rank_of(pid) == 1]
        assert len(rank1) == 1, _children(proc.pid)
        os.kill(rank1[0], signal.SIGINT)  # only rank 1 hears it; rank 0 must learn from the all-reduce
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [m for m in map(LINE.match, err.splitlines()) if m]
    assert len(lines) == 1, err[-3000:]  # rank 0's line only
    step = int(lines[0].group(1))
    assert load_checkpoint(run / "checkpoints" / f"step_{step:08d}.pt")["step"] == step
    assert max(logged_steps(run)) == step
    again = procs.run(procs.torchrun_cmd(2, "train", *DEBUG, f"train.steps={step + 2}", f"train.run_dir={run}"),
                      tmp_path, procs.env(data_dir), timeout=240)
    assert again.returncode == 0, procs.describe(again)
    assert f"(step {step})" in again.stdout
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step + 2
