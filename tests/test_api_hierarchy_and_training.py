"""The Python API for hierarchies (``wavegen.load_hierarchy``) and training (``wavegen.train_model``):
the same audio as ``wavegen generate`` for a seed, and the same run folder and resumption as ``wavegen train``."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import wavegen
from wavegen.cli import main
from wavegen.errors import WavegenError
from wavegen.hierarchy.randomised import build_random_hierarchy

RECIPE = "piano_hierarchy_tiny"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def recipe_root(tmp_path_factory):
    """A folder laid out as ``wavegen recipe run piano_hierarchy_tiny`` leaves it, with random debug weights."""
    folder = tmp_path_factory.mktemp("hierarchy")
    levels = build_random_hierarchy(folder / "levels", "debug")
    root = folder / "root"
    for stage, level in (("prior", "prior"), ("ae2", "level2"), ("ae1", "level1"),
                         ("codes_to_mel", "codes_to_mel"), ("vocoder", "vocoder")):
        (root / stage / "checkpoints").mkdir(parents=True)
        (root / stage / "checkpoints" / "last.pt").symlink_to(levels[level])
    return root


def read_wav(path: Path) -> torch.Tensor:
    audio, _ = sf.read(path, dtype="float32")
    return torch.from_numpy(audio)


@pytest.mark.parametrize("down", ["wavenet", "vocoder"])
def test_a_recipe_s_hierarchy_gives_the_cli_s_audio_for_a_seed(recipe_root, tmp_path, down):
    h = wavegen.load_hierarchy(RECIPE, root=recipe_root, down=down)
    assert h.down == down and h.sample_rate == 16000 and str(h.device) == "cpu"
    assert set(h.checkpoints) == ({"prior", "level2", "level1", "codes_to_mel", "vocoder"} if down == "vocoder"
                                  else {"prior", "level2", "level1"})
    audio = h.generate(0.2, generator=torch.Generator().manual_seed(5))
    assert audio.shape == (3200,) and audio.dtype == torch.float32 and audio.abs().max() > 0
    out = tmp_path / "cli.wav"
    assert main(["generate", "--recipe", RECIPE, "--root", str(recipe_root), "--down", down, "--seconds", "0.2",
                 "--seed", "5", "-o", str(out), "--no-progress"]) == 0
    # The WAV is 16-bit: equal up to its rounding.
    assert torch.allclose(audio.clamp(-1, 1), read_wav(out), atol=1 / 32767)
    assert json.loads(out.with_suffix(".json").read_text())["down"] == down


def test_generate_reports_progress_and_follows_the_seed(recipe_root):
    h = wavegen.load_hierarchy(RECIPE, root=recipe_root)
    seen = []
    a = h.generate(0.1, generator=torch.Generator().manual_seed(1), chunk_frames=16,  # 256 samples a chunk
                   progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (1600, 1600) and len(seen) > 1 and all(t == 1600 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert torch.equal(a, h.generate(0.1, generator=torch.Generator().manual_seed(1), chunk_frames=16))  # seed, not state
    assert not torch.equal(a, h.generate(0.1, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(h.generate(0.1), h.generate(0.1, generator=torch.Generator().manual_seed(0)))  # default 0


def test_checkpoints_given_by_path_win_over_the_recipe(recipe_root):
    levels = {k: recipe_root / stage / "checkpoints" / "last.pt" for k, stage in
              (("prior", "prior"), ("level2", "ae2"), ("level1", "ae1"))}
    by_path = wavegen.load_hierarchy(**levels)
    by_recipe = wavegen.load_hierarchy(RECIPE, root=recipe_root)
    assert by_path.checkpoints == by_recipe.checkpoints
    seed = torch.Generator().manual_seed(3)
    assert torch.equal(by_path.generate(0.05, generator=seed), by_recipe.generate(0.05, generator=seed))


def test_hierarchy_errors_are_one_line(recipe_root, tmp_path):
    with pytest.raises(WavegenError, match=r"has not produced its checkpoints yet .* run `wavegen recipe run"):
        wavegen.load_hierarchy(RECIPE, root=tmp_path / "empty")
    with pytest.raises(WavegenError, match="unknown checkpoint 'level3'"):
        wavegen.load_hierarchy(RECIPE, root=recipe_root, level3="x.pt")
    with pytest.raises(WavegenError, match="name a hierarchy"):
        wavegen.load_hierarchy()
    h = wavegen.load_hierarchy(RECIPE, root=recipe_root)
    for bad in (0, -1, float("nan")):
        with pytest.raises(WavegenError, match="seconds must be a positive number"):
            h.generate(bad)
    with pytest.raises(WavegenError, match="temperature must not be negative"):
        h.generate(0.1, temperature=-0.5)


def test_train_model_writes_the_cli_s_run_folder_and_resumes(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folder is runs/<name> under the current directory
    checkpoint = wavegen.train_model(["experiment=wavenet_debug", "train.steps=2", "train.log_every=1"])
    assert checkpoint == Path("runs/wavenet_debug/checkpoints/last.pt") and checkpoint.exists()
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    # The same call with more steps resumes from that checkpoint, as `wavegen train` does.
    assert wavegen.train_model(["experiment=wavenet_debug", "train.steps=3", "train.log_every=1"]) == checkpoint
    rows = [json.loads(line) for line in (checkpoint.parent.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    assert wavegen.load(checkpoint).family == "wavenet"
    with pytest.raises(WavegenError, match="train.steps"):
        wavegen.train_model(["experiment=wavenet_debug", "train.stepz=3"])
    with pytest.raises(WavegenError, match="must be a list"):
        wavegen.train_model("train.steps=3")


def test_the_public_names_are_exactly_all():
    assert set(wavegen.__all__) == {"load", "load_hierarchy", "train_model", "Vocoder", "WaveNet", "Autoencoder",
                                    "Hierarchy", "WavegenError", "__version__"}
    for name in wavegen.__all__:
        assert getattr(wavegen, name) is not None
    assert wavegen.WavegenError is WavegenError
    # Importing the training package binds the attribute `wavegen.train` to it (why the API says train_model).
    importlib.import_module("wavegen.train.loop")
    assert callable(wavegen.train_model) and not callable(wavegen.train)
