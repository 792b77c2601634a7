"""The contract between the training loop and a model family."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Protocol

import torch
from torch import Tensor, nn

Batch = Mapping[str, Tensor]  # {"audio": Tensor[B, T] float in [-1, 1], "piece": LongTensor[B], ...}


class Task(Protocol):
    family: str
    model: nn.Module
    # What a training step may autocast to on CUDA: torch.bfloat16, or None to train in
    # float32 where precision decides quality (see wavegen.train.loop.autocast_dtype).
    autocast_dtype: Optional[torch.dtype]

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """Scalar training loss and a few float metrics (already detached) for logging."""

    def validate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        """Held-out metrics; must include ``val_loss`` (lower is better)."""

    def media(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """``{"audio/<name>": Tensor[T], "image/<name>": ndarray[H, W, 3]}`` for the logger (may be empty)."""

    def model_config(self) -> dict:
        """Plain containers from which :func:`wavegen.models.registry.build_model` rebuilds ``model``
        (stored in checkpoints)."""

    # Optional: a task that trains on something other than audio segments (a prior on code
    # sets, say) provides ``build_sampler(cfg, split, rank, world_size)`` returning an object
    # with ``batch(step) -> dict`` (a pure function of seed, step and rank) and
    # ``validation_batches(n) -> list[dict]``. Without it the loop uses wavegen.data.build_sampler.
