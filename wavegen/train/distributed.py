"""Distributed data parallelism for ``torchrun`` (NCCL on GPU, gloo on CPU).

Launch any training command under ``torchrun`` and every process joins one
process group::

    torchrun --standalone --nproc_per_node=8 -m wavegen.cli train experiment=wavenet_piano

Without ``torchrun`` (no WORLD_SIZE in the environment) everything runs in one
process and these helpers are no-ops. What the training loop relies on:

- every rank builds the same initial weights (same seed; DDP broadcasts them too)
  and draws its own crops (the segment sampler is a pure function of
  ``(seed, step, rank)``), so the global batch is ``train.batch_size x world size``;
- collectives are called by every rank in the same order: the "is this loss
  finite" vote, metric averages, RNG gathering for checkpoints, barriers;
- only rank 0 writes (run directory, metrics, checkpoints) and logs;
- :func:`wrap_model` asks DDP to look for unused parameters only when the model
  has some (a WaveNet's last residual projection feeds nothing), which DDP
  otherwise rejects at the second step.

``WAVEGEN_DEBUG_PARAM_HASH=1`` makes every rank print a digest of its weights at
the end of training (``param-hash rank=R step=S sha256=...``): equal digests
prove the ranks stayed in sync. The tests use it; it costs nothing when unset.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from wavegen.errors import WavegenError

PARAM_HASH_ENV = "WAVEGEN_DEBUG_PARAM_HASH"
# Rank 0 validates and samples media while the other ranks wait in a barrier, so the
# collective timeout must cover a slow validation; override in minutes if needed.
TIMEOUT_ENV = "WAVEGEN_DIST_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MIN = 60.0


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise WavegenError(f"environment variable {name}={value!r} is not an integer") from None


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """``train.device`` (auto | cpu | cuda) -> this process's device (``cuda:<local_rank>``)."""
    if requested not in ("auto", "cpu", "cuda"):
        raise WavegenError(f"train.device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise WavegenError("train.device=cuda but no CUDA device is available")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise WavegenError(
            f"LOCAL_RANK {local_rank} has no GPU: only {count} visible on this node "
            f"(use torchrun --nproc_per_node={count} or fewer)"
        )
    return torch.device("cuda", local_rank)


def _timeout() -> datetime.timedelta:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        minutes = float(raw) if raw.strip() else DEFAULT_TIMEOUT_MIN
    except ValueError:
        raise WavegenError(f"environment variable {TIMEOUT_ENV}={raw!r} is not a number of minutes") from None
    return datetime.timedelta(minutes=minutes)


def init_distributed(device_request: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment, if any."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    device = pick_device(device_request, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            # Binding the group to the device keeps NCCL barriers off guessed devices.
            dist.init_process_group(backend="nccl", timeout=_timeout(), device_id=device)
        else:
            dist.init_process_group(backend="gloo", timeout=_timeout())
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, local_world_size=local_world, device=device)


def cpu_threads_per_rank(info: DistInfo) -> int:
    """Threads for each of the ranks sharing this node's CPU cores (at least 1).

    torchrun sets OMP_NUM_THREADS=1 for every worker, which leaves most cores idle
    when training on the CPU; we split this process's usable cores evenly instead.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_world_size))


def _collective_device(info: DistInfo) -> torch.device:
    return info.device if info.device.type == "cuda" else torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(info: DistInfo, value: bool) -> bool:
    """Rank 0's boolean, on every rank (e.g. "stop now")."""
    if not info.enabled:
        return value
    t = torch.tensor([1 if value else 0], device=_collective_device(info))
    dist.broadcast(t, 0)
    return bool(t.item())


def any_rank(info: DistInfo, value: bool) -> bool:
    """True on every rank if ``value`` is true on any rank (a vote before a collective step)."""
    if not info.enabled:
        return value
    t = torch.tensor([1.0 if value else 0.0], device=_collective_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_reduce_mean(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """The mean of each metric over ranks (every rank must pass the same keys)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_collective_device(info))
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


def gather_objects(info: DistInfo, obj) -> list:
    """[rank 0's obj, rank 1's obj, ...] on every rank (picklable objects, e.g. RNG states)."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


# ----------------------------------------------------------------------------- DDP wrapping


def parameters_without_gradient(model: nn.Module, compute_loss: Callable[[nn.Module], Tensor]) -> list[str]:
    """Names of trainable parameters that one backward pass of ``compute_loss(model)`` leaves without a gradient.

    A dry run with no lasting effect: the RNG streams (torch, CUDA, numpy,
    Python) and the model's buffers (e.g. a rate controller's state) are restored
    afterwards and the gradients cleared.
    """
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    py_state, np_state = random.getstate(), np.random.get_state()
    # Only this process's GPU: touching the others would open a CUDA context on each of them.
    on_gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda_devices = [torch.cuda.current_device()] if on_gpu else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            loss = compute_loss(model)
            loss.backward()
        return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        random.setstate(py_state)
        np.random.set_state(np_state)


def wrap_model(model: nn.Module, info: DistInfo, unused: list[str] | None = None) -> nn.Module:
    """``model`` in DistributedDataParallel when distributed, else ``model`` itself.

    unused: parameter names that get no gradient (see :func:`parameters_without_gradient`);
    when any rank reports some, every rank turns on DDP's unused-parameter search
    (the flag must agree across ranks).
    """
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    find_unused = any_rank(info, bool(unused))
    if find_unused and info.is_main:
        shown = ", ".join(unused[:4]) + (", ..." if len(unused) > 4 else "") if unused else "on another rank"
        print(f"distributed: {len(unused or [])} parameter(s) get no gradient ({shown}); "
              "DDP searches for unused parameters every step", flush=True)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=find_unused)


# ----------------------------------------------------------------------------- checks


def param_digest(model: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, dtypes, shapes and bytes), in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def maybe_print_param_hash(info: DistInfo, model: nn.Module, step: int) -> None:
    """With WAVEGEN_DEBUG_PARAM_HASH=1, print this rank's weight digest (one line, stdout)."""
    if os.environ.get(PARAM_HASH_ENV) == "1":
        # One write call, so lines from ranks sharing a terminal or pipe never interleave.
        sys.stdout.write(f"param-hash rank={info.rank} step={step} sha256={param_digest(model)}\n")
        sys.stdout.flush()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
