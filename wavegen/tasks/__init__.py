"""Task adapters: one per model family, the only thing the training loop knows about models.

A task is built from the composed config and exposes (see :class:`wavegen.tasks.base.Task`):

- ``model``: the ``nn.Module`` being trained (EMA, checkpoints, DDP wrap it);
- ``loss(model, batch) -> (loss, metrics)``: one training step's scalar loss;
- ``validate(model, batches) -> metrics``: held-out metrics (lower is better for ``val_loss``);
- ``media(model, batch) -> dict``: audio clips and spectrogram images for the logger;
- ``model_config() -> dict``: plain containers that rebuild the model from a checkpoint.

``FAMILIES`` maps ``model.family`` in the config to the module that builds the task. Which
model a checkpoint of a family rebuilds is the models' own registry
(:data:`wavegen.models.registry.BUILDERS`), so loading a model needs no training code.
"""

from __future__ import annotations

import importlib

FAMILIES = {
    "wavenet": "wavegen.tasks.wavenet",
    "event_prior": "wavegen.tasks.event_prior",
    "autoencoder": "wavegen.tasks.autoencoder",
    "vocoder": "wavegen.tasks.vocoder",
    "prior": "wavegen.tasks.prior",
    "codes_to_mel": "wavegen.tasks.codes_to_mel",
}


def build_task(cfg):
    """Build the task named by ``cfg.model.family`` from the composed config."""
    from wavegen.errors import WavegenError

    family = cfg.model.get("family")
    if family not in FAMILIES:
        raise WavegenError(f"unknown model family {family!r}; known families: {sorted(FAMILIES)}")
    if getattr(cfg, "sampling", None) is not None and family != "wavenet":
        # Only a WaveNet's loaded model reads it (wavegen.load, wavegen sample, eval continuation); a
        # vocoder's default steps are those of the schedule `wavegen vocoder search-schedule` stores.
        raise WavegenError(f"sampling: default sampling settings are a WaveNet's; a {family} model reads none "
                           "(remove the sampling block)")
    return importlib.import_module(FAMILIES[family]).build_task(cfg)
