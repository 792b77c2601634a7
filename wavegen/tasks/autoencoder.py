"""Training the autoencoder: decoder loss + slowness + margin, with rate control.

Per step::

    loss = decoder loss  +  w_t · slowness(code values)  +  margin_weight · margin

The decoder loss is the WaveNet decoder's NLL (teacher forcing) for ``decoder_kind:
wavenet``, and for ``decoder_kind: mel`` the L1 distance between the predicted log-mel
and the batch's own (:func:`wavegen.audio.dsp.mel_spectrogram` of the run's audio
config, the front-end of the vocoder that will turn the prediction into audio).

``w_t`` comes from the model's :class:`~wavegen.codes.slowness.RateController`,
which is updated after every training step from the batch's measured event rate
(frames where any channel changes, per second). Its state lives in the model's
buffers, so it is saved in the checkpoint and a resumed run continues exactly;
the EMA copy follows those buffers.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from wavegen.codes.slowness import slowness_penalty
from wavegen.codes.stats import events_per_second, rate_statistics
from wavegen.models.autoencoder import AutoencoderConfig, WaveNetAutoencoder


def _core(model: nn.Module) -> WaveNetAutoencoder:
    return model.module if hasattr(model, "module") else model


def _mean_across_ranks(value: Tensor) -> Tensor:
    """The controller must see the same rate on every rank, or the ranks' weights drift apart."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= torch.distributed.get_world_size()
    return value


class AutoencoderTask:
    family = "autoencoder"

    def __init__(self, cfg):
        from omegaconf import OmegaConf

        from wavegen.errors import WavegenError

        self.model_cfg = AutoencoderConfig.from_mapping(cfg.model)
        if self.model_cfg.sample_rate != int(cfg.audio.sample_rate):
            raise WavegenError(f"model.sample_rate {self.model_cfg.sample_rate} differs from "
                               f"audio.sample_rate {cfg.audio.sample_rate}")
        self.model = WaveNetAutoencoder(self.model_cfg)
        self.audio = OmegaConf.to_container(cfg.audio, resolve=True)
        self.mel_decoder = self.model_cfg.decoder_kind == "mel"
        if self.mel_decoder:
            from wavegen.audio.dsp import AudioConfig

            self.audio_cfg = AudioConfig.from_mapping(self.audio)
            mel = self.model_cfg.decoder
            if (mel.n_mels, mel.mel_hop) != (self.audio_cfg.n_mels, self.audio_cfg.hop_length):
                raise WavegenError(f"decoder.n_mels {mel.n_mels} and decoder.mel_hop {mel.mel_hop} must equal "
                                   f"audio.n_mels {self.audio_cfg.n_mels} and audio.hop_length "
                                   f"{self.audio_cfg.hop_length} (the mel the vocoder reads)")
            self.autocast_dtype = None  # an L1 on log-mels: float32 throughout
        else:
            # As for a WaveNet: bf16 for a categorical decoder head, float32 for a mixture of logistics.
            self.autocast_dtype = torch.bfloat16 if self.model_cfg.decoder.head == "categorical" else None
        self.media_seconds = float(cfg.train.get("media_seconds", 0.5))

    def model_config(self) -> dict:
        return {"family": self.family, **self.model_cfg.to_dict()}

    # ------------------------------------------------------------------ losses

    def terms(self, model: nn.Module, audio: Tensor) -> dict[str, Tensor]:
        """Every loss term of one batch Tensor[B, T] (scalars, with gradients), plus the codes."""
        core = _core(model)
        out = model(audio)
        if self.mel_decoder:
            from wavegen.audio.dsp import mel_spectrogram

            target = mel_spectrogram(audio.float(), self.audio_cfg)
            main = (out.mel.float() - target).abs().mean()
        else:
            main = core.decoder.head.nll(out.logits, out.targets).mean()
        z = out.codes.values if core.cfg.slowness.values == "quantised" else out.codes.continuous
        slowness = slowness_penalty(z.float(), core.cfg.slowness.kind)
        return {"main": main, "slowness": slowness, "margin": out.codes.margin.float(), "indices": out.codes.indices}

    def _main_metrics(self, value: float, prefix: str = "") -> dict[str, float]:
        """The decoder loss as logged: log-mel L1, or the NLL in bits per sample."""
        if self.mel_decoder:
            return {f"{prefix}log_mel_l1": value}
        return {f"{prefix}bits_per_sample": value / math.log(2)}

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        core = _core(model)
        t = self.terms(model, batch["audio"])
        weight = core.controller.weight  # the weight this step is charged with
        loss = t["main"] + weight * t["slowness"] + core.cfg.margin_weight * t["margin"]
        rate = _mean_across_ranks(events_per_second(t["indices"], core.hop, core.sample_rate))
        if model.training:
            core.controller.update(float(rate))
        return loss, {
            **self._main_metrics(t["main"].item()),
            "slowness": t["slowness"].item(),
            "slowness_weight": weight,
            "margin": t["margin"].item(),
            "events_per_second": float(rate),
            "events_per_second_ema": float(core.controller.rate_ema),
        }

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        """``val_loss``: the decoder loss (NLL in nats per sample, or log-mel L1), without the
        slowness term (its weight moves)."""
        core = _core(model)
        total, samples, codes = 0.0, 0, []
        for batch in batches:
            t = self.terms(model, batch["audio"])
            total += t["main"].item() * batch["audio"].numel()
            samples += batch["audio"].numel()
            codes.extend(t["indices"].cpu())
        main = total / max(samples, 1)
        stats = rate_statistics(codes, core.levels, core.hop, core.sample_rate)
        return {
            "val_loss": main,
            **self._main_metrics(main, "val_"),
            "val_events_per_second": stats.events_per_second,
            "val_code_bits_per_second": stats.bits_per_second_naive,
            "val_code_bits_per_second_entropy": stats.bits_per_second_entropy,
        }

    @torch.no_grad()
    def media(self, model: nn.Module, batch) -> dict:
        """A short reconstruction (sampled) and a picture of the codes against the spectrogram."""
        from wavegen.audio.dsp import AudioConfig
        from wavegen.audio.plots import spectrogram_image
        from wavegen.codes.plots import codes_image
        from wavegen.generate.autoencoder import decode

        core = _core(model)
        audio_cfg = AudioConfig.from_mapping(self.audio)
        n = min(int(self.media_seconds * core.sample_rate), batch["audio"].shape[-1])
        clip = batch["audio"][:1, :n]
        indices = core.encode(clip)
        if self.mel_decoder:  # vocoding here would load the vocoder into every run: the codes picture only
            return {"audio/original": clip[0].cpu(),
                    "image/codes": codes_image(clip[0].cpu(), indices[0], core.levels, core.hop, audio_cfg)}
        recon = decode(core, indices, n, generator=torch.Generator().manual_seed(0))[0].cpu()
        return {
            "audio/original": clip[0].cpu(),
            "audio/reconstruction": recon,
            "image/codes": codes_image(clip[0].cpu(), indices[0], core.levels, core.hop, audio_cfg),
            "image/reconstruction_spectrogram": spectrogram_image(recon, audio_cfg),
        }


def build_task(cfg) -> AutoencoderTask:
    return AutoencoderTask(cfg)
