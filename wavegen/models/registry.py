"""The model registry: which model each checkpoint family builds, and loading one from a checkpoint.

A checkpoint names its ``family`` and stores the ``model_config`` its model was built
from (:mod:`wavegen.checkpoint`); :data:`BUILDERS` maps the family to the function that
rebuilds that model. Every reader of checkpoints (the API, the commands, the hierarchy,
frozen models inside a training task) loads through :func:`load_model`, so a new family
is registered here, beside the models, and nowhere else. Training adapters for the same
families are :data:`wavegen.tasks.FAMILIES`.

Each builder imports its model module when called, so importing the registry stays cheap.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from wavegen.checkpoint import load_checkpoint
from wavegen.errors import WavegenError

# Keys some families add to model_config that describe provenance (which codes the model
# reads), not architecture: dropped before the config is parsed.
_PROVENANCE = ("codes_fingerprint",)


def _architecture(model_config: dict) -> dict:
    return {k: v for k, v in dict(model_config).items() if k not in _PROVENANCE}


def _wavenet(model_config: dict) -> nn.Module:
    from wavegen.models.wavenet import WaveNet, WaveNetConfig

    return WaveNet(WaveNetConfig.from_mapping(model_config))


def _autoencoder(model_config: dict) -> nn.Module:
    from wavegen.models.autoencoder import AutoencoderConfig, WaveNetAutoencoder

    return WaveNetAutoencoder(AutoencoderConfig.from_mapping(model_config))


def _vocoder(model_config: dict) -> nn.Module:
    from wavegen.models.vocoder import VocoderConfig, build_vocoder

    return build_vocoder(VocoderConfig.from_mapping(model_config))


def _prior(model_config: dict) -> nn.Module:
    from wavegen.models.prior import PriorConfig, build_prior

    return build_prior(PriorConfig.from_mapping(_architecture(model_config)))


def _event_prior(model_config: dict) -> nn.Module:
    from wavegen.models.event_transformer import EventTransformer, EventTransformerConfig

    return EventTransformer(EventTransformerConfig.from_mapping(_architecture(model_config)))


def _codes_to_mel(model_config: dict) -> nn.Module:
    from wavegen.models.codes_to_mel import CodesToMel, CodesToMelConfig

    return CodesToMel(CodesToMelConfig.from_mapping(_architecture(model_config)))


# family (as a checkpoint and ``model.family`` name it) -> model_config -> freshly initialised model
BUILDERS: dict[str, Callable[[dict], nn.Module]] = {
    "wavenet": _wavenet,
    "event_prior": _event_prior,
    "autoencoder": _autoencoder,
    "vocoder": _vocoder,
    "prior": _prior,
    "codes_to_mel": _codes_to_mel,
}


def build_model(family: str, model_config: dict) -> nn.Module:
    """A freshly initialised model of ``family`` built from its stored ``model_config``."""
    if family not in BUILDERS:
        raise WavegenError(f"unknown model family {family!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[family](model_config)


def usable_device(device) -> torch.device:
    """``--device`` as given on a command line, checked before any work is done."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise WavegenError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WavegenError(f"device {device!r} requested but no CUDA device is available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise WavegenError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def load_model(path: str | os.PathLike, family=None, use_ema: bool = True, device="cpu"):
    """Rebuild the model stored in a checkpoint: returns ``(model in eval mode, checkpoint dict)``.

    family: the family (or families) the caller can use; another is refused with one line.
    use_ema: load the EMA weights when the checkpoint has them (what sampling wants).
    """
    device = usable_device(device)
    state = load_checkpoint(path, family)
    fam = state.get("family")
    if fam not in BUILDERS:
        raise WavegenError(f"{path} holds an unknown model family {fam!r}; known: {sorted(BUILDERS)}")
    model = BUILDERS[fam](state["model_config"])
    weights = state.get("ema") if use_ema and state.get("ema") else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise WavegenError(f"{path}: weights do not fit the stored model config ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), state
