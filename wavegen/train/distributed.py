"""PyTorch distributed set-up for ``torchrun`` (NCCL on GPU, gloo on CPU).

Without ``torchrun`` (no WORLD_SIZE in the environment) everything runs in one
process and these helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        from wavegen.errors import WavegenError

        raise WavegenError("train.device=cuda but no CUDA device is available")
    return torch.device("cuda", local_rank)


def init_distributed(device_request: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_request, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(info: DistInfo, value: bool) -> bool:
    """Rank 0's boolean, on every rank (e.g. "stop now")."""
    if not info.enabled:
        return value
    t = torch.tensor([1 if value else 0], device=info.device if info.device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return bool(t.item())


def all_reduce_mean(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
