"""Training codes -> mel (family ``codes_to_mel``) against a frozen level-1 autoencoder.

The run config names the autoencoder with the top-level key ``autoencoder``
(a checkpoint path). Each audio batch is encoded by it (no gradients), and the
model learns to predict the batch's log-mel from the codes (L1 loss, the metric
the vocoder's schedule search uses too). The autoencoder's fingerprint is stored
in the model config, so ``wavegen generate`` can refuse a mismatched pair.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from wavegen.errors import WavegenError
from wavegen.models.codes_to_mel import CodesToMel, CodesToMelConfig


class CodesToMelTask:
    family = "codes_to_mel"
    autocast_dtype = torch.bfloat16

    def __init__(self, cfg):
        from wavegen.audio.dsp import AudioConfig
        from omegaconf import OmegaConf

        self.model_cfg = CodesToMelConfig.from_mapping(cfg.model)
        self.audio = AudioConfig.from_mapping(OmegaConf.to_container(cfg.audio, resolve=True))
        if (self.model_cfg.n_mels, self.model_cfg.mel_hop, self.model_cfg.sample_rate) != (
                self.audio.n_mels, self.audio.hop_length, self.audio.sample_rate):
            raise WavegenError("codes_to_mel n_mels, mel_hop and sample_rate must equal the audio config's "
                               "n_mels, hop_length and sample_rate")
        self.model = CodesToMel(self.model_cfg)
        self.autoencoder_path = cfg.get("autoencoder")
        self._autoencoder = None

    @property
    def autoencoder(self):
        if self._autoencoder is None:
            from wavegen.tasks.frozen import load_frozen_autoencoder

            self._autoencoder = load_frozen_autoencoder(
                self.autoencoder_path, self.model_cfg.levels, self.model_cfg.hop,
                "codes_to_mel learns from a level-1 autoencoder: pass autoencoder=CKPT")
        return self._autoencoder

    def model_config(self) -> dict:
        from wavegen.hierarchy.provenance import weights_fingerprint

        fingerprint = weights_fingerprint(self.autoencoder) if self.autoencoder_path else None
        return {"family": self.family, **self.model_cfg.to_dict(), "codes_fingerprint": fingerprint}

    def l1(self, model: nn.Module, audio: Tensor) -> Tensor:
        from wavegen.audio.dsp import mel_spectrogram

        ae = self.autoencoder.to(audio.device)
        with torch.no_grad():
            codes = ae.encode(audio)
            target = mel_spectrogram(audio.float(), self.audio)
        return (model(codes, target.shape[-1]).float() - target).abs().mean()

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        loss = self.l1(model, batch["audio"])
        return loss, {"log_mel_l1": loss.item()}

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        losses = [self.l1(model, b["audio"]).item() for b in batches]
        return {"val_loss": sum(losses) / max(len(losses), 1)}

    def media(self, model: nn.Module, batch) -> dict:
        return {}


def build_task(cfg) -> CodesToMelTask:
    return CodesToMelTask(cfg)
