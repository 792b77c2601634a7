"""Training priors over code frames on a code set (family ``prior``).

The run config names the code set to train on with the top-level key ``codeset``
(a folder written by ``wavegen codes dump``); ``train.segment_length`` counts
*code frames* per training window here, not audio samples.

- a top prior (:class:`~wavegen.models.prior.CodePrior`): next-frame NLL of joint indices;
- a level-2 autoencoder (:class:`~wavegen.models.prior.CodeAutoencoder`, ``model.upper`` set):
  the same NLL, its decoder conditioned on upper codes learnt from the window itself.

Losses are in nats per code frame; ``bits_per_second`` multiplies by the frame rate,
which makes levels with different rates comparable.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from wavegen.errors import WavegenError
from wavegen.models.prior import CodeAutoencoder, PriorConfig, build_prior


def _core(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class PriorTask:
    family = "prior"
    autocast_dtype = torch.bfloat16

    def __init__(self, cfg):
        self.model_cfg = PriorConfig.from_mapping(cfg.model)
        if self.model_cfg.sample_rate != int(cfg.audio.sample_rate):
            raise WavegenError(f"model.sample_rate {self.model_cfg.sample_rate} differs from "
                               f"audio.sample_rate {cfg.audio.sample_rate}")
        self.model = build_prior(self.model_cfg)
        self.codeset_path = cfg.get("codeset")
        self._codeset = None
        # A level-2 autoencoder that reads audio learns from audio batches, with level-1 codes
        # from this frozen autoencoder (top-level key ``autoencoder``) instead of a code set.
        self.reads_audio = self.model_cfg.upper is not None and self.model_cfg.upper.input == "audio"
        self.autoencoder_path = cfg.get("autoencoder")
        self._autoencoder = None

    @property
    def autoencoder(self):
        if self._autoencoder is None:
            from wavegen.tasks.frozen import load_frozen_autoencoder

            self._autoencoder = load_frozen_autoencoder(
                self.autoencoder_path, self.model_cfg.levels, self.model_cfg.hop,
                "a level-2 autoencoder on audio needs the level-1 one: pass autoencoder=CKPT")
        return self._autoencoder

    # ------------------------------------------------------------------ data

    @property
    def codeset(self):
        if self._codeset is None:
            from wavegen.hierarchy.codeset import load_codeset

            if not self.codeset_path:
                raise WavegenError("a prior trains on a code set: pass codeset=DIR (written by `wavegen codes dump`)")
            codeset = load_codeset(self.codeset_path)
            if codeset.levels != self.model_cfg.levels or codeset.hop != self.model_cfg.hop:
                raise WavegenError(
                    f"code set {codeset.root} holds codes with levels {codeset.levels} at hop {codeset.hop}; "
                    f"the prior models levels {self.model_cfg.levels} at hop {self.model_cfg.hop} "
                    "(set model.levels and model.hop to match)")
            if codeset.sample_rate != self.model_cfg.sample_rate:
                raise WavegenError(f"code set {codeset.root} is at {codeset.sample_rate} Hz, the prior at "
                                   f"{self.model_cfg.sample_rate} Hz")
            self._codeset = codeset
        return self._codeset

    def build_sampler(self, cfg, split: str, rank: int = 0, world_size: int = 1):
        from wavegen.hierarchy.codeset import CodeSetSampler

        if self.reads_audio:
            from omegaconf import OmegaConf

            from wavegen.data import build_sampler

            frames = int(cfg.train.segment_length)
            if frames % self.model_cfg.upper.stride:
                raise WavegenError(f"train.segment_length {frames} (code frames) must be a multiple of the "
                                   f"upper stride {self.model_cfg.upper.stride}")
            audio_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
            audio_cfg.train.segment_length = frames * self.model_cfg.hop  # audio samples under the window
            return build_sampler(audio_cfg, split, rank, world_size)

        codeset = self.codeset
        sequences = codeset.sequences(split)
        if not sequences and split == "validation":
            sequences = codeset.sequences("train")[:2]  # tiny sets may hold no validation item
        if not sequences:
            raise WavegenError(f"code set {codeset.root} has no {split} items")
        stride = self.model_cfg.upper.stride if self.model_cfg.upper else 1
        window = int(cfg.train.segment_length)
        if window % stride:
            raise WavegenError(f"train.segment_length {window} (code frames) must be a multiple of the "
                               f"upper stride {stride}")
        return CodeSetSampler(sequences, codeset.levels, window, int(cfg.train.batch_size), int(cfg.seed),
                              rank, world_size, align=stride)

    def model_config(self) -> dict:
        if self.reads_audio:
            from wavegen.hierarchy.provenance import weights_fingerprint

            fingerprint = weights_fingerprint(self.autoencoder) if self.autoencoder_path else None
        else:
            fingerprint = self.codeset.provenance if self.codeset_path else None
        return {"family": self.family, **self.model_cfg.to_dict(), "codes_fingerprint": fingerprint}

    # ------------------------------------------------------------------ losses

    def nll(self, model: nn.Module, batch) -> Tensor:
        """Mean NLL in nats per predicted frame."""
        if "audio" in batch:  # a level-2 autoencoder on audio: level-1 codes from the frozen autoencoder
            from wavegen.codes.joint import to_joint

            audio = batch["audio"]
            with torch.no_grad():
                codes = self.autoencoder.to(audio.device).encode(audio)
            start = torch.zeros(codes.shape[0], 1, dtype=torch.long, device=codes.device)
            tokens = torch.cat([start, to_joint(codes, self.model_cfg.levels)], dim=1)
            codes = torch.cat([codes[..., :1], codes], dim=-1)
            logits = model(tokens, codes, audio)
            return nn.functional.cross_entropy(logits.float(), tokens[:, 1:])
        tokens = batch["tokens"]
        if isinstance(_core(model), CodeAutoencoder):
            logits = model(tokens, batch["codes"])
        else:
            logits = model(tokens[:, :-1])
        return nn.functional.cross_entropy(logits.float(), tokens[:, 1:])

    def _frame_rate(self) -> float:
        return self.model_cfg.sample_rate / self.model_cfg.hop

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        nll = self.nll(model, batch)
        bits = nll.item() / math.log(2)
        return nll, {"bits_per_frame": bits, "bits_per_second": bits * self._frame_rate()}

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        total, count = 0.0, 0
        for batch in batches:
            n = batch["tokens"][:, 1:].numel() if "tokens" in batch else batch["audio"].numel()
            total += self.nll(model, batch).item() * n
            count += n
        nll = total / max(count, 1)
        return {"val_loss": nll, "val_bits_per_frame": nll / math.log(2),
                "val_bits_per_second": nll / math.log(2) * self._frame_rate()}

    def media(self, model: nn.Module, batch) -> dict:
        return {}  # a prior's samples only sound through the levels below: see `wavegen generate`


def build_task(cfg) -> PriorTask:
    return PriorTask(cfg)
