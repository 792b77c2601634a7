"""Training the diffusion vocoder: noise prediction at continuous noise levels.

Batches are ``{"audio": Tensor[B, T]}``; the task crops each segment to whole hops
(``T // hop`` frames, see :func:`wavegen.diffusion.training.aligned_pair`), so
``train.segment_length`` should be a multiple of ``audio.hop_length``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.schedules import default_schedule
from wavegen.diffusion.training import Objective, aligned_pair, vocoder_loss
from wavegen.errors import WavegenError
from wavegen.models.vocoder import VocoderConfig, build_vocoder

# Validation and media vocode with this many steps (the schedule the search starts from).
EVAL_STEPS = 6


def _core(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


class VocoderTask:
    family = "vocoder"
    autocast_dtype = None  # float32: the predicted noise is the waveform path's fine detail

    def __init__(self, model_cfg: VocoderConfig, audio: AudioConfig, val_clips: int = 2, media_seconds: float = 1.0,
                 objective: Objective = Objective()):
        model_cfg.check_audio(audio.to_dict())
        self.objective = objective
        self.steps_seen = 0
        self.model_cfg = model_cfg
        self.audio = audio
        self.model = build_vocoder(model_cfg)
        self.val_clips = val_clips
        self.media_seconds = media_seconds

    def model_config(self) -> dict:
        return {"family": self.family, **self.model_cfg.to_dict()}

    def loss(self, model: nn.Module, batch):
        audio, log_mel = aligned_pair(batch["audio"], self.audio)
        self.steps_seen += 1
        return vocoder_loss(model, audio, log_mel, self.objective, step=self.steps_seen)

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict:
        """``val_loss``: the training loss (chain term left out) under a fixed seed, comparable
        across steps; ``val_mr_stft`` and ``val_log_mel_l1``: a 6-step vocoding of a few
        held-out clips against the originals."""
        from dataclasses import replace

        from wavegen.diffusion.samplers import sample
        from wavegen.audio.metrics import log_mel_l1, multi_resolution_stft_distance

        core = _core(model)
        generator = torch.Generator().manual_seed(1234)
        total, count, first = 0.0, 0, None
        for batch in batches:
            audio, log_mel = aligned_pair(batch["audio"], self.audio)
            if first is None:
                first = (audio[: self.val_clips], log_mel[: self.val_clips])
            loss, _ = vocoder_loss(core, audio, log_mel, replace(self.objective, chain_weight=0.0), generator)
            total += loss.item() * audio.shape[0]
            count += audio.shape[0]
        metrics = {"val_loss": total / max(count, 1)}
        if first is not None:
            audio, log_mel = first
            vocoded = sample(core, log_mel, default_schedule(EVAL_STEPS), torch.Generator().manual_seed(0))
            metrics["val_log_mel_l1"] = float(log_mel_l1(audio.float().cpu(), vocoded.float().cpu(), self.audio))
            metrics["val_mr_stft"] = float(multi_resolution_stft_distance(audio.float().cpu(), vocoded.float().cpu()))
        return metrics

    @torch.no_grad()
    def media(self, model: nn.Module, batch) -> dict:
        from wavegen.audio.plots import spectrogram_image
        from wavegen.diffusion.samplers import sample

        core = _core(model)
        frames = max(1, int(self.media_seconds * self.audio.sample_rate) // self.audio.hop_length)
        audio, log_mel = aligned_pair(batch["audio"][:1, : frames * self.audio.hop_length], self.audio)
        vocoded = sample(core, log_mel, default_schedule(EVAL_STEPS), torch.Generator().manual_seed(0))[0].float().cpu()
        reference = audio[0].float().cpu()
        return {
            "audio/vocoded": vocoded,
            "audio/reference": reference,
            "image/vocoded_spectrogram": spectrogram_image(vocoded, self.audio),
            "image/reference_spectrogram": spectrogram_image(reference, self.audio),
        }


def build_task(cfg) -> VocoderTask:
    audio = AudioConfig.from_mapping(cfg.audio)
    model_cfg = VocoderConfig.from_mapping(cfg.model)
    hop = audio.hop_length
    segment = int(cfg.train.segment_length)
    if segment < hop or segment % hop:
        raise WavegenError(
            f"train.segment_length={segment} must be a positive multiple of audio.hop_length={hop} for the vocoder"
        )
    from omegaconf import OmegaConf

    objective = Objective.from_mapping(OmegaConf.to_container(cfg.objective) if "objective" in cfg else None)
    return VocoderTask(model_cfg, audio, media_seconds=float(cfg.train.get("media_seconds", 1.0)), objective=objective)
