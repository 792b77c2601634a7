"""A model's default sampling settings live in one place: the ``sampling`` block of its training config.

The checkpoint stores them with the config, so ``wavegen.load(CKPT)``, ``wavegen sample CKPT`` and
``wavegen eval continuation CKPT`` use them when not told otherwise; the export tool copies them into
the registry entry (``--default`` overrides); a bad block is refused in one line before training; a
checkpoint without one samples plainly, as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import wavegen
from wavegen.checkpoint import atomic_torch_save
from wavegen.cli import main
from wavegen.pretrained.export import export
from wavegen.pretrained.export import main as export_main

from hostile import models as M

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = ["train", "experiment=wavenet_debug", "train.steps=2", "train.val_every=2", "train.checkpoint_every=2",
         "train.threads=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step run of the debug WaveNet (categorical head) trained with ``sampling.top_p=0.9``."""
    run = tmp_path_factory.mktemp("run")
    assert main([*TRAIN, f"train.run_dir={run}", "sampling.top_p=0.9"]) == 0
    return run / "checkpoints" / "last.pt"


def _generate(model, **controls) -> torch.Tensor:
    return model.generate(0.02, generator=torch.Generator().manual_seed(3), backend="reference", **controls)


def test_the_checkpoint_carries_the_block_and_load_samples_by_it(trained):
    stored = torch.load(trained, map_location="cpu", weights_only=True)  # plain containers only
    assert stored["config"]["sampling"] == {"top_p": 0.9}
    model = wavegen.load(trained)
    assert model.sampling == {"top_p": 0.9}
    # The default is what generate() uses: the same draw as top_p=0.9 given, not plain sampling's.
    default = _generate(model)
    assert torch.equal(default, _generate(model, top_p=0.9))
    assert not torch.equal(default, _generate(model, top_p=1.0))


def test_wavegen_sample_of_a_checkpoint_uses_its_default_unless_given(trained, tmp_path):
    from wavegen.audio.io import read_audio

    def sample(name: str, *flags: str) -> torch.Tensor:
        argv = ["sample", str(trained), "-o", str(tmp_path / name), "--seconds", "0.02", "--backend", "reference",
                "--device", "cpu", *flags]
        assert main(argv) == 0
        return read_audio(tmp_path / name / "sample_000.wav", 16000)

    default = sample("default")
    assert torch.equal(default, sample("given", "--top-p", "0.9"))
    assert not torch.equal(default, sample("plain", "--top-p", "1"))


def test_export_copies_the_block_and_default_overrides_it(trained, tmp_path, capsys):
    registry = tmp_path / "registry"
    registry.mkdir()
    entry = export(trained, "tiny", root=registry)
    # The family's temperature 1.0, then the checkpoint's block: the shape of piano-tiny's entry.
    assert entry["sampling"] == {"temperature": 1.0, "top_p": 0.9}
    assert wavegen.load("tiny", root=registry).sampling == {"temperature": 1.0, "top_p": 0.9}
    assert export_main([str(trained), "--name", "tiny", "--root", str(registry), "--overwrite",
                        "--default", "top_p=0.8"]) == 0
    assert wavegen.load("tiny", root=registry).sampling == {"temperature": 1.0, "top_p": 0.8}
    # A --default that is no sampling setting of a WaveNet is refused in one line, the registry kept.
    capsys.readouterr()
    assert export_main([str(trained), "--name", "tiny", "--root", str(registry), "--overwrite",
                        "--default", "top_q=0.8"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: sampling defaults: unknown sampling setting 'top_q'; a WaveNet's are temperature, top_p, "
        "mixture_temperature"]
    assert wavegen.load("tiny", root=registry).sampling["top_p"] == 0.8


@pytest.mark.parametrize("overrides, message", [
    (["sampling.top_q=0.9"], "error: unknown config key 'sampling.top_q' (did you mean 'sampling.top_p'?); "
                             "valid keys of 'sampling': mixture_temperature, temperature, top_p"),
    (["sampling.top_p=1.5"], "error: sampling: top-p must be in (0, 1], got 1.5"),
    (["sampling.top_p=lots"], "error: config key 'sampling.top_p' expects a number, got 'lots'"),
    (["model.head=mol", "sampling.top_p=0.9"], "error: sampling: top-p applies to μ-law classes (heads categorical "
                                                "and lpc_mol); this model has a mixture of logistics over 16-bit levels"),
    (["experiment=vocoder_debug", "sampling.temperature=1"],
     "error: sampling: default sampling settings are a WaveNet's; a vocoder model reads none (remove the sampling "
     "block)"),
])
def test_a_bad_block_is_one_line_before_anything_is_written(tmp_path, capsys, overrides, message):
    run = tmp_path / "run"
    assert main([*TRAIN, f"train.run_dir={run}", *overrides]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not run.exists()


def test_a_checkpoint_without_the_block_samples_plainly(trained, tmp_path):
    """Checkpoints trained before the block existed (or without one) keep today's defaults."""
    untrained = wavegen.load(M.untrained_checkpoint(tmp_path / "old.pt", "wavenet_debug"))  # config: {}
    assert untrained.sampling == {}
    state = torch.load(trained, map_location="cpu", weights_only=True)
    del state["config"]["sampling"]
    atomic_torch_save(state, tmp_path / "without.pt")
    model = wavegen.load(tmp_path / "without.pt")
    assert model.sampling == {}
    assert torch.equal(_generate(model), _generate(model, top_p=1.0))
    assert export(tmp_path / "without.pt", "old", root=_folder(tmp_path / "registry"))["sampling"] == \
        {"temperature": 1.0}


def _folder(path: Path) -> Path:
    path.mkdir()
    return path
