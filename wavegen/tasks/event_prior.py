"""Training the run-length event Transformer prior on a code set (family ``event_prior``).

Like family ``prior``, the run config names the code set with the top-level key
``codeset``; ``train.segment_length`` counts *events* per training window. The loss
is the NLL of the next event's value plus that of its run length given the value,
in nats per event; ``bits_per_second`` multiplies by the code set's event rate.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.errors import WavegenError
from wavegen.models.event_transformer import EventTransformer, EventTransformerConfig


class EventPriorTask:
    family = "event_prior"
    autocast_dtype = torch.bfloat16

    def __init__(self, cfg):
        self.model_cfg = EventTransformerConfig.from_mapping(cfg.model)
        if self.model_cfg.sample_rate != int(cfg.audio.sample_rate):
            raise WavegenError(f"model.sample_rate {self.model_cfg.sample_rate} differs from "
                               f"audio.sample_rate {cfg.audio.sample_rate}")
        self.model = EventTransformer(self.model_cfg)
        self.codeset_path = cfg.get("codeset")
        self._codeset = None
        self.events_per_second = None

    @property
    def codeset(self):
        if self._codeset is None:
            from wavegen.hierarchy.codeset import load_codeset

            if not self.codeset_path:
                raise WavegenError("an event prior trains on a code set: pass codeset=DIR")
            codeset = load_codeset(self.codeset_path)
            if codeset.levels != self.model_cfg.levels or codeset.hop != self.model_cfg.hop:
                raise WavegenError(f"code set {codeset.root} holds levels {codeset.levels} at hop {codeset.hop}; "
                                   f"the event prior models levels {self.model_cfg.levels} at hop "
                                   f"{self.model_cfg.hop} (set model.levels and model.hop to match)")
            self._codeset = codeset
        return self._codeset

    def build_sampler(self, cfg, split: str, rank: int = 0, world_size: int = 1):
        from wavegen.hierarchy.event_data import EventSampler

        window = int(cfg.train.segment_length)
        if not 2 <= window <= self.model_cfg.context:
            raise WavegenError(f"train.segment_length {window} (events) must lie in 2..model.context "
                               f"({self.model_cfg.context})")
        sequences = self.codeset.sequences(split) or (self.codeset.sequences("train")[:2] if split != "train" else [])
        sampler = EventSampler(sequences, self.model_cfg.levels, self.model_cfg.max_run, window,
                               int(cfg.train.batch_size), int(cfg.seed), rank, world_size)
        if split == "train":
            self.events_per_second = sampler.events / (sampler.frames * self.model_cfg.hop / self.model_cfg.sample_rate)
        return sampler

    def model_config(self) -> dict:
        fingerprint = self.codeset.provenance if self.codeset_path else None
        return {"family": self.family, **self.model_cfg.to_dict(), "codes_fingerprint": fingerprint}

    def nll(self, model: nn.Module, batch) -> tuple[Tensor, Tensor]:
        """(value NLL, run NLL), each in nats per event, over the unpadded targets."""
        values, runs, mask = batch["values"], batch["runs"], batch["mask"]
        targets_v, targets_r = values[:, 1:], runs[:, 1:] - 1
        classes = self.model_cfg.classes
        value_logits, run_logits = model(values[:, :-1], runs[:, :-1], targets_v.clamp_max(classes - 1))
        ignore = torch.full_like(targets_v, -100)
        tv = torch.where(mask, targets_v, ignore)
        tr = torch.where(mask, targets_r, ignore)
        return (F.cross_entropy(value_logits.flatten(0, 1).float(), tv.flatten()),
                F.cross_entropy(run_logits.flatten(0, 1).float(), tr.flatten()))

    def _metrics(self, value: float, run: float) -> dict[str, float]:
        bits = (value + run) / math.log(2)
        out = {"bits_per_event": bits, "value_bits": value / math.log(2), "run_bits": run / math.log(2)}
        if self.events_per_second:
            out["bits_per_second"] = bits * self.events_per_second
        return out

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        value, run = self.nll(model, batch)
        return value + run, self._metrics(value.item(), run.item())

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        totals, count = [0.0, 0.0], 0
        for batch in batches:
            n = int(batch["mask"].sum())
            value, run = self.nll(model, batch)
            totals[0] += value.item() * n
            totals[1] += run.item() * n
            count += n
        value, run = totals[0] / max(count, 1), totals[1] / max(count, 1)
        return {"val_loss": value + run, **{f"val_{k}": v for k, v in self._metrics(value, run).items()}}

    def media(self, model: nn.Module, batch) -> dict:
        return {}


def build_task(cfg) -> EventPriorTask:
    return EventPriorTask(cfg)
