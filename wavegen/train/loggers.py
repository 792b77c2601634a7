"""A small logger interface: none, wandb (offline by default), tensorboard.

Every run also appends its scalars to ``<run_dir>/metrics.jsonl`` (whatever the
logger), which is what tests and scripts read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Logger:
    wants_media = False

    def __init__(self, run_dir: Path):
        self.metrics_path = Path(run_dir) / "metrics.jsonl"

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")

    def log_media(self, step: int, media: dict[str, Any], sample_rate: int) -> None:
        pass

    def close(self) -> None:
        pass


class WandbLogger(Logger):
    wants_media = True

    def __init__(self, run_dir: Path, cfg: dict, project: str, mode: str, name: str):
        super().__init__(run_dir)
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        self.run = wandb.init(project=project, mode=mode, dir=str(run_dir), name=name, config=cfg, resume="allow",
                              id=name.replace("/", "_"))

    def log_scalars(self, step, scalars):
        super().log_scalars(step, scalars)
        self.run.log(scalars, step=step)

    def log_media(self, step, media, sample_rate):
        items = {}
        for key, value in media.items():
            if key.startswith("audio/"):
                items[key] = self.wandb.Audio(value.detach().cpu().float().numpy(), sample_rate=sample_rate)
            elif key.startswith("image/"):
                items[key] = self.wandb.Image(value)
        if items:
            self.run.log(items, step=step)

    def close(self):
        self.run.finish()


class TensorBoardLogger(Logger):
    wants_media = True

    def __init__(self, run_dir: Path):
        super().__init__(run_dir)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log_scalars(self, step, scalars):
        super().log_scalars(step, scalars)
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)

    def log_media(self, step, media, sample_rate):
        for key, value in media.items():
            if key.startswith("audio/"):
                self.writer.add_audio(key, value.detach().cpu().float()[None], step, sample_rate=sample_rate)
            elif key.startswith("image/"):
                self.writer.add_image(key, value, step, dataformats="HWC")

    def close(self):
        self.writer.close()


def build_logger(logger_cfg, run_dir: Path, full_cfg: dict, name: str) -> Logger:
    kind = logger_cfg.get("kind", "none")
    if kind == "none":
        return Logger(run_dir)
    if kind == "wandb":
        return WandbLogger(run_dir, full_cfg, logger_cfg.get("project", "wavegen"), logger_cfg.get("mode", "offline"), name)
    if kind == "tensorboard":
        return TensorBoardLogger(run_dir)
    from wavegen.errors import WavegenError

    raise WavegenError(f"unknown logger kind {kind!r}; choose none, wandb or tensorboard")
