"""The model registry (wavegen/models/registry.py): which model a checkpoint's family builds."""

from __future__ import annotations

import pytest
import torch

from wavegen.checkpoint import FORMAT, VERSION, atomic_torch_save
from wavegen.errors import WavegenError
from wavegen.models.registry import BUILDERS, build_model, load_model
from wavegen.tasks import FAMILIES


def test_every_trainable_family_can_be_loaded():
    # A family the loop can train but the registry cannot build would write checkpoints nothing reads.
    assert set(BUILDERS) == set(FAMILIES)


def test_unknown_family_is_one_line(tmp_path):
    path = tmp_path / "odd.pt"
    atomic_torch_save({"format": FORMAT, "version": VERSION, "family": "banjo", "model_config": {}, "audio": {},
                       "model": {"w": torch.zeros(1)}, "ema": {}, "step": 0, "extra": {}, "config": {}}, path)
    with pytest.raises(WavegenError, match=r"holds an unknown model family 'banjo'; known: \['autoencoder'"):
        load_model(path)
    with pytest.raises(WavegenError, match="unknown model family 'banjo'"):
        build_model("banjo", {})


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path):
    path = tmp_path / "wrong.pt"
    atomic_torch_save({"format": FORMAT, "version": VERSION, "family": "vocoder",
                       "model_config": {"architecture": "spectral"}, "audio": {},
                       "model": {"w": torch.zeros(1)}, "ema": {}, "step": 0, "extra": {}, "config": {}}, path)
    with pytest.raises(WavegenError, match="weights do not fit the stored model config"):
        load_model(path)
