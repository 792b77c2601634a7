"""Killed jobs lose nothing: SIGKILL mid-training resumes exactly, and no kill breaks the latest checkpoint.

(Non-finite losses being skipped, counted and stopping after ``train.max_nonfinite``
are covered in tests/test_training.py.)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from hostile import procs
from wavegen.cli import main
from wavegen.config import compose
from wavegen.errors import WavegenError
from wavegen.checkpoint import load_checkpoint
from wavegen.train.checkpoint import latest_checkpoint, save_checkpoint
from wavegen.train.loop import Trainer, train

DETERMINISTIC = ["experiment=wavenet_debug", "train.deterministic=true", "train.threads=1"]


def logged_losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def wait_for_logged_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float) -> None:
    """Block until the training subprocess has logged ``step`` (or fail if it ended first)."""
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended (exit {proc.returncode}) before step {step}: {proc.stderr.read()[-2000:]}")
        if metrics.exists():
            steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line.endswith("}")]
            if steps and max(steps) >= step:
                return
        time.sleep(0.01)
    pytest.fail(f"step {step} not reached within {timeout} s")


# ----------------------------------------------------------------------------- kill -9 during training


def test_sigkill_then_same_command_resumes_to_the_uninterrupted_weights(tmp_path, data_dir):
    steps = ["train.steps=60", "train.checkpoint_every=10", "train.log_every=5", "train.val_every=30"]
    reference = tmp_path / "reference"
    train(compose(DETERMINISTIC + steps + [f"train.run_dir={reference}"]))

    run = tmp_path / "killed"
    argv = ["train", *DETERMINISTIC, *steps, f"train.run_dir={run}"]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kill_after = rng.randrange(10, 55)  # any step after the first checkpoint (step 10)
    proc = subprocess.Popen(procs.wavegen_cmd(*argv), cwd=tmp_path, env=procs.env(data_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_logged_step(run, proc, kill_after, timeout=240)
        time.sleep(rng.uniform(0.0, 0.25))  # land anywhere: mid-step, mid-log, mid-checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed (kill seed {seed})"
    survivor = latest_checkpoint(run / "checkpoints")
    assert survivor is not None and 10 <= load_checkpoint(survivor)["step"] < 60, f"kill seed {seed}"

    assert main(argv) == 0  # the same command again

    a = load_checkpoint(reference / "checkpoints" / "last.pt")
    b = load_checkpoint(run / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 60
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), f"{key} differs (kill seed {seed})"
        assert torch.equal(a["ema"][key], b["ema"][key]), f"EMA {key} differs (kill seed {seed})"
    # Steps trained twice (after the last checkpoint, before the kill) are logged once.
    assert logged_losses(run) == logged_losses(reference), f"kill seed {seed}"


# ----------------------------------------------------------------------------- kill -9 during checkpoint writes


def _save_forever(folder: Path, state: dict, first_step: int) -> None:
    """The forked writer: checkpoint after checkpoint until it is killed."""
    step = first_step
    while True:
        save_checkpoint(folder, state, step, keep=2)
        step += 1


def test_twenty_kills_during_checkpoint_writes_always_leave_a_loadable_latest(tmp_path):
    folder = tmp_path / "checkpoints"
    # About 16 MB per file, so a write takes long enough to be interrupted in the middle.
    state = {"family": "wavenet", "model_config": {}, "audio": {}, "model": {"w": torch.randn(4_000_000)},
             "ema": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "extra": {}, "config": {}}
    started = time.perf_counter()
    save_checkpoint(folder, state, 0)
    # Kill windows in units of one write on this machine right now, so a loaded machine (or a
    # slower hash) still sees kills before, inside and after writes.
    write_seconds = time.perf_counter() - started
    fork = multiprocessing.get_context("fork")  # the child shares the parent's imports: no interpreter start-up
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    newest, mid_write = 0, 0
    for kill in range(20):
        writer = fork.Process(target=_save_forever, args=(folder, state, newest + 1), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0.2, 3.0) * write_seconds)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=30)
        assert writer.exitcode == -signal.SIGKILL, f"writer ended on its own (kill {kill}, seed {seed})"
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        mid_write += bool(leftovers)
        assert len(leftovers) <= 2, f"a killed writer's temp files pile up: {leftovers}"

        latest = latest_checkpoint(folder)
        assert latest is not None, f"kill {kill} (seed {seed}) left no readable checkpoint"
        loaded = torch.load(latest, map_location="cpu", weights_only=True)
        assert torch.equal(loaded["model"]["w"], state["model"]["w"])
        assert loaded["step"] >= newest, f"kill {kill} (seed {seed}) lost a finished checkpoint"
        newest = loaded["step"]
    assert newest >= 2, "the writer never got past its first checkpoint"
    assert mid_write >= 1, f"no kill landed inside a write (seed {seed}); make the checkpoint larger"


# ----------------------------------------------------------------------------- what a resume picks


def _fake_state(step_tag: int) -> dict:
    return {"family": "wavenet", "model_config": {}, "audio": {}, "model": {"w": torch.full((3,), float(step_tag))},
            "ema": {}, "optimizer": {}, "scheduler": {}, "rng": {}, "extra": {}, "config": {}}


def test_latest_is_the_newest_step_file_even_if_last_pt_was_not_yet_relinked(tmp_path):
    save_checkpoint(tmp_path, _fake_state(4), 4)
    # A writer killed after its step file was complete but before last.pt moved on to it.
    last_before = (tmp_path / "last.pt").read_bytes()
    save_checkpoint(tmp_path, _fake_state(8), 8)
    (tmp_path / "last.pt").unlink()
    (tmp_path / "last.pt").write_bytes(last_before)
    assert latest_checkpoint(tmp_path).name == "step_00000008.pt"
    # Damaged step files are passed over, down to last.pt.
    (tmp_path / "step_00000008.pt").write_bytes(b"\0" * 100)
    (tmp_path / "step_00000004.pt").write_bytes(last_before[: len(last_before) // 2])
    assert latest_checkpoint(tmp_path).name == "last.pt"


def test_a_checkpoint_of_another_version_is_refused_not_trained_over(tmp_path, data_dir):
    run = tmp_path / "run"
    train(compose(DETERMINISTIC + [f"train.run_dir={run}", "train.steps=3"]))
    newer = run / "checkpoints" / "step_00000009.pt"
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    torch.save({**state, "version": 3, "step": 9}, newer)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (run / "checkpoints").iterdir())
    with pytest.raises(WavegenError, match="format version 3; this wavegen reads versions 1, 2"):
        train(compose(DETERMINISTIC + [f"train.run_dir={run}", "train.steps=12"]))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (run / "checkpoints").iterdir()) == before


def test_a_skipped_last_step_still_gets_its_checkpoint(tmp_path, data_dir):
    cfg = compose(DETERMINISTIC + [f"train.run_dir={tmp_path / 'run'}", "train.steps=4", "train.checkpoint_every=100"])
    trainer = Trainer(cfg)
    real_loss = trainer.task.loss
    calls = {"n": 0}

    def nan_at_the_end(model, batch):
        calls["n"] += 1
        loss, metrics = real_loss(model, batch)
        return (loss * float("nan") if calls["n"] == 4 else loss), metrics

    trainer.task.loss = nan_at_the_end
    trainer.run()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["extra"]["nonfinite_total"] == 1


def test_resume_trims_metrics_past_the_checkpoint(tmp_path, data_dir):
    run = tmp_path / "run"
    train(compose(DETERMINISTIC + [f"train.run_dir={run}", "train.stop_at_step=3"]))
    with open(run / "metrics.jsonl", "a") as f:  # what a run killed at step 5 leaves behind
        f.write(json.dumps({"step": 4, "loss": 1.0}) + "\n" + '{"step": 5, "lo')
    train(compose(DETERMINISTIC + [f"train.run_dir={run}"]))
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(4) == 1 and 5 not in steps


def test_rng_state_round_trips_every_stream_including_numpys_cached_gaussian():
    import random as pyrandom

    import numpy as np

    from wavegen.train.loop import rng_state, set_rng_state

    np.random.seed(3)
    np.random.randn()  # numpy now holds the second gaussian of a pair in its state
    pyrandom.gauss(0, 1)
    saved = rng_state()
    first = (np.random.randn(), pyrandom.gauss(0, 1), torch.rand(2))
    set_rng_state(saved)
    again = (np.random.randn(), pyrandom.gauss(0, 1), torch.rand(2))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])
