"""Training a WaveNet on raw audio: next-sample negative log-likelihood.

``train.input_noise`` (optional, default 0): the standard deviation of Gaussian noise
added to the waveform the network *reads* during training (the targets stay clean),
so it cannot learn to trust its input exactly; a cure tried against sampling that
drifts into noise. Validation always reads clean input.

``train.pre_emphasis`` (optional, default 0): the model learns the pre-emphasised waveform
(``x[t] - a x[t-1]``, :func:`wavegen.audio.dsp.pre_emphasis`), in training and validation alike;
what it generates must be de-emphasised. A study arm (``benchmarks/ar_study.py``), not yet a
model option: no shipped model uses it.

``sampling`` (optional, top level): the trained model's default sampling settings
(``temperature``, ``top_p``, ``mixture_temperature``), checked against the head here; the
checkpoint stores them with the config (:func:`wavegen.checkpoint.sampling_defaults`).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from wavegen.audio.dsp import pre_emphasis
from wavegen.generate.sampling import checked_defaults
from wavegen.models.wavenet import WaveNet, WaveNetConfig


def shift_right(tokens: Tensor, first: Tensor) -> Tensor:
    """Tensor[B, T] -> Tensor[B, T]: ``first`` then tokens 0..T-2 (the model's inputs)."""
    return torch.cat([first[:, None].to(tokens.dtype), tokens[:, :-1]], dim=1)


class WaveNetTask:
    family = "wavenet"

    def __init__(self, cfg):
        self.model_cfg = WaveNetConfig.from_mapping(cfg.model)
        self.model = WaveNet(self.model_cfg)
        # bf16 suits a softmax over classes; a mixture of logistics' likelihood needs float32
        # (its scales and the bins' CDF differences lose their digits in bf16).
        self.autocast_dtype = torch.bfloat16 if self.model_cfg.head == "categorical" else None
        self.sample_rate = int(cfg.audio.sample_rate)
        self.media_seconds = float(cfg.train.get("media_seconds", 0.5))
        self.input_noise = float(cfg.train.get("input_noise", 0.0) or 0.0)
        if not 0.0 <= self.input_noise < 1.0:
            from wavegen.errors import WavegenError

            raise WavegenError(f"train.input_noise must be in [0, 1), got {self.input_noise}")
        self.pre_emphasis = float(cfg.train.get("pre_emphasis", 0.0) or 0.0)
        if not 0.0 <= self.pre_emphasis < 1.0:
            from wavegen.errors import WavegenError

            raise WavegenError(f"train.pre_emphasis must be in [0, 1), got {self.pre_emphasis}")
        # The config's ``sampling`` block (the model's default sampling settings, stored with the config in
        # every checkpoint) is checked against this head now, not when someone samples the finished model.
        # getattr: a config without the block (a struct DictConfig, or a test's namespace) has no attribute.
        checked_defaults(getattr(cfg, "sampling", None), self.model_cfg.head)
        if self.model_cfg.local_channels and self.model_cfg.local_source == "given":
            from wavegen.errors import WavegenError

            raise WavegenError("a WaveNet with local conditioning is trained as the decoder of an autoencoder "
                               "(model=autoencoder/...), not on its own")

    def model_config(self) -> dict:
        return {"family": self.family, **self.model_cfg.to_dict()}

    def _global_ids(self, model: nn.Module, batch) -> Tensor | None:
        if not self.model_cfg.global_classes:
            return None
        return batch["piece"] % self.model_cfg.global_classes

    def _local(self, model: nn.Module, audio: Tensor) -> Tensor | None:
        """``local_source: onsets[_chroma]``: the segment's own onsets, Tensor[B, C, F] (read from the clean audio)."""
        return None if self.model_cfg.local_source == "given" else model.onsets(audio)

    def nll(self, model: nn.Module, batch, input_noise: float = 0.0) -> Tensor:
        """Mean negative log-likelihood per sample, in nats (inputs read with ``input_noise`` added)."""
        core = model.module if hasattr(model, "module") else model
        audio = pre_emphasis(batch["audio"], self.pre_emphasis)
        tokens = core.head.encode(audio)
        read = tokens
        if input_noise > 0:
            read = core.head.encode((audio + input_noise * torch.randn_like(audio)).clamp(-1.0, 1.0))
        inputs = shift_right(read, core.head.silence(tokens.shape[0], tokens.device))
        logits = model(inputs, self._local(core, audio), self._global_ids(core, batch))
        return core.head.nll(logits, tokens).mean()

    def loss(self, model: nn.Module, batch):
        nll = self.nll(model, batch, self.input_noise)
        return nll, {"bits_per_sample": nll.detach().item() / math.log(2)}

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Iterable) -> dict:
        total, count = 0.0, 0
        for batch in batches:
            total += self.nll(model, batch).item() * batch["audio"].numel()
            count += batch["audio"].numel()
        nll = total / max(count, 1)
        return {"val_loss": nll, "val_bits_per_sample": nll / math.log(2)}

    @torch.no_grad()
    def media(self, model: nn.Module, batch) -> dict:
        from wavegen.audio.plots import spectrogram_image
        from wavegen.audio.dsp import AudioConfig
        from wavegen.generate.sampling import generate_audio

        n = int(self.media_seconds * self.sample_rate)
        gids = self._global_ids(model, batch)
        gids = None if gids is None else gids[:1]
        # An onsets model strikes where the batch's first segment did (its frames cover n samples).
        real = batch["audio"][:1, :n]
        local = self._local(model, torch.nn.functional.pad(real, (0, n - real.shape[-1])))
        gen = torch.Generator().manual_seed(0)
        audio = torch.cat(list(generate_audio(model, n, batch_size=1, local=local, global_ids=gids, generator=gen)),
                          dim=1)[0]
        cfg = AudioConfig(sample_rate=self.sample_rate)
        return {"audio/sample": audio.cpu(), "image/sample_spectrogram": spectrogram_image(audio.cpu(), cfg)}


def build_task(cfg) -> WaveNetTask:
    return WaveNetTask(cfg)
