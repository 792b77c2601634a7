"""Distributed data parallelism: real 2-process gloo runs through torchrun, and the helpers they rely on."""

from __future__ import annotations

import json
import random
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hostile import procs
from wavegen.errors import WavegenError
from wavegen.train import distributed as D
from wavegen.models.registry import load_model

HASH_LINE = re.compile(r"^param-hash rank=(\d+) step=(\d+) sha256=([0-9a-f]{64})$", re.M)


def rank_hashes(stdout: str) -> dict[int, tuple[int, str]]:
    return {int(rank): (int(step), digest) for rank, step, digest in HASH_LINE.findall(stdout)}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- 2 processes, the real CLI


# Test-only start-up hook (Python imports ``sitecustomize`` from PYTHONPATH at start-up): in the
# worker of rank 1 alone, the loss of the second training step becomes NaN. The command itself
# stays exactly ``python -m wavegen.cli train ...``.
NAN_ON_RANK1 = textwrap.dedent("""
    import os

    if os.environ.get("RANK") == "1":
        import torch
        from wavegen.tasks import wavenet

        real_loss = wavenet.WaveNetTask.loss
        calls = {"n": 0}

        def loss(self, model, batch):
            value, metrics = real_loss(self, model, batch)
            if isinstance(model, torch.nn.parallel.DistributedDataParallel):  # not the set-up probe
                calls["n"] += 1
                if calls["n"] == 2:
                    value = value * float("nan")
            return value, metrics

        wavenet.WaveNetTask.loss = loss
""")


def test_two_rank_gloo_training_stays_in_sync_and_only_rank0_writes(tmp_path, data_dir):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NAN_ON_RANK1)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = procs.env(data_dir, WAVEGEN_DEBUG_PARAM_HASH="1")
    env["PYTHONPATH"] = f"{hook}:{env['PYTHONPATH']}"
    # A relative run_dir: both ranks resolve it against the same working directory.
    cmd = procs.torchrun_cmd(2, "train", "experiment=wavenet_debug", "train.run_dir=run")
    proc = procs.run(cmd, cwd, env, timeout=300)
    assert proc.returncode == 0, procs.describe(proc)

    # Same weights on both ranks at the end, although rank 1 alone saw a NaN: both skipped that batch.
    hashes = rank_hashes(proc.stdout)
    assert sorted(hashes) == [0, 1], procs.describe(proc)
    assert hashes[0] == hashes[1], "the ranks' weights differ after training"
    assert hashes[0][0] == 6
    assert "warning: non-finite loss at step 2, batch skipped (1 in a row, 1 in all)" in proc.stdout
    # The checkpoint rank 0 wrote holds exactly those weights, and every rank's RNG state.
    run = cwd / "run"
    model, state = load_model(run / "checkpoints" / "last.pt", use_ema=False)
    assert D.param_digest(model) == hashes[0][1]
    assert len(state["rng"]["ranks"]) == 2 and state["extra"]["nonfinite_total"] == 1

    # One run directory, written by rank 0 alone, and no Hydra output folders anywhere.
    assert files_under(cwd) == [
        "run", "run/.wavegen.lock", "run/checkpoints", "run/checkpoints/last.pt", "run/checkpoints/step_00000003.pt",
        "run/checkpoints/step_00000006.pt", "run/config.yaml", "run/metrics.jsonl",
    ]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "loss" in r]
    val_steps = [r["step"] for r in rows if "val_loss" in r]
    assert train_steps == [4, 6] and val_steps == [3, 6], "each step is logged once, by one rank"
    assert proc.stdout.count("done:") == 1
    # DDP was told about the WaveNet's last residual projection, which gets no gradient.
    assert "parameter(s) get no gradient (layers.3.res.weight" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["autoencoder_debug", "vocoder_debug"])
def test_every_family_trains_in_sync_under_ddp(experiment, tmp_path, data_dir):
    run = tmp_path / "run"
    cmd = procs.torchrun_cmd(2, "train", f"experiment={experiment}", f"train.run_dir={run}")
    proc = procs.run(cmd, tmp_path, procs.env(data_dir, WAVEGEN_DEBUG_PARAM_HASH="1"), timeout=400)
    assert proc.returncode == 0, procs.describe(proc)
    hashes = rank_hashes(proc.stdout)
    assert sorted(hashes) == [0, 1] and hashes[0] == hashes[1], procs.describe(proc)
    model, _ = load_model(run / "checkpoints" / "last.pt", use_ema=False)
    assert D.param_digest(model) == hashes[0][1]


# ----------------------------------------------------------------------------- helpers, in one process


def test_unused_parameter_probe_finds_them_and_leaves_no_trace(data_dir):
    from wavegen.config import compose
    from wavegen.data import build_sampler
    from wavegen.tasks import build_task

    cfg = compose(["experiment=autoencoder_debug"])
    task = build_task(cfg)
    batch = build_sampler(cfg, "train").batch(0)
    buffers = {k: v.clone() for k, v in task.model.named_buffers()}
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    expected_draws = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)

    unused = D.parameters_without_gradient(task.model, lambda m: task.loss(m, batch)[0])

    # The autoencoder's WaveNet decoder has a last residual projection that feeds nothing.
    assert unused == ["decoder.layers.3.res.weight", "decoder.layers.3.res.bias"]
    assert all(p.grad is None for p in task.model.parameters())
    for name, value in task.model.named_buffers():  # the rate controller's update was undone
        assert torch.equal(value, buffers[name]), name
    draws = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(draws[0], expected_draws[0]) and draws[1:] == expected_draws[1:]


def test_param_digest_sees_every_weight_and_buffer():
    model = torch.nn.BatchNorm1d(3)
    before = D.param_digest(model)
    assert D.param_digest(torch.nn.BatchNorm1d(3)) == before
    model.running_mean[1] += 1e-6
    assert D.param_digest(model) != before


def test_single_process_helpers_are_no_ops(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    info = D.init_distributed("cpu")
    assert (info.rank, info.world_size, info.enabled, info.is_main) == (0, 1, False, True)
    model = torch.nn.Linear(2, 2)
    assert D.wrap_model(model, info, ["weight"]) is model
    assert D.any_rank(info, True) and not D.any_rank(info, False)
    assert D.all_reduce_mean(info, {"a": 1.5}) == {"a": 1.5}
    assert D.gather_objects(info, {"x": 1}) == [{"x": 1}]


def test_cpu_threads_are_split_between_local_ranks(monkeypatch):
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert D.cpu_threads_per_rank(D.DistInfo(world_size=8, local_world_size=4)) == 4
    assert D.cpu_threads_per_rank(D.DistInfo(world_size=32, local_world_size=32)) == 1


def test_device_and_environment_mistakes_are_one_line_errors(monkeypatch):
    with pytest.raises(WavegenError, match="train.device must be auto, cpu or cuda, got 'gpu'"):
        D.pick_device("gpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(WavegenError, match="WORLD_SIZE='two' is not an integer"):
        D.init_distributed("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(WavegenError, match="no CUDA device"):
            D.pick_device("cuda")
