"""Every config and recipe composes; recipes form a valid stage graph."""

import pytest

from wavegen.config import available_options, compose, config_dir, recipe_dir
from wavegen.recipes import load_recipe, stage_argv
from wavegen.tasks import build_task

EXPERIMENTS = available_options("experiment")
MODELS = available_options("model")
RECIPES = sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def test_there_is_something_to_test():
    assert "quickstart" in EXPERIMENTS and "wavenet/base" in MODELS and "quickstart" in RECIPES


# What an experiment leaves for the command line to say ("???" in its file; refused unset: test_config_schema),
# read from the file itself so that a new experiment with a required key is covered without editing this test.
PLACEHOLDER = {"init_from": "runs/piano_tiny/checkpoints/last.pt"}


def required_overrides(experiment: str) -> list[str]:
    from omegaconf import OmegaConf

    raw = OmegaConf.load(config_dir() / "experiment" / f"{experiment}.yaml")
    raw.pop("defaults", None)
    overrides = []
    for key in sorted(OmegaConf.missing_keys(raw)):
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in PLACEHOLDER, f"experiment {experiment} leaves {key} open; give the test a value for it"
        overrides.append(f"{key}={PLACEHOLDER[leaf]}")
    return overrides


def test_experiments_with_required_keys_are_found():
    assert required_overrides("piano_tiny_onsets") == ["train.init_from=runs/piano_tiny/checkpoints/last.pt"]
    assert required_overrides("quickstart") == []


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(experiment):
    cfg = compose([f"experiment={experiment}", *required_overrides(experiment)])
    assert cfg.model.family and cfg.train.steps > 0 and cfg.audio.sample_rate > 0


@pytest.mark.parametrize("model", [m for m in MODELS if m.endswith("debug") or m.endswith("tiny")])
def test_small_models_build(model):
    task = build_task(compose([f"model={model}"]))
    assert sum(p.numel() for p in task.model.parameters()) > 0


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_stages_compose(name, tmp_path):
    recipe = load_recipe(name)
    for stage in recipe.stages:
        argv = stage_argv(stage, tmp_path)
        if stage.command == "train":
            overrides = [a for a in argv[1:] if "=" in a]
            cfg = compose(overrides)
            assert cfg.train.run_dir == str(tmp_path / stage.name)


def test_base_wavenet_matches_the_issue():
    cfg = compose(["model=wavenet/base"]).model
    assert (cfg.layers, cfg.dilation_cycle, cfg.residual_channels, cfg.gate_channels, cfg.skip_channels,
            cfg.kernel_size) == (20, 10, 64, 128, 256, 2)


def test_config_dir_is_the_checkout():
    assert (config_dir() / "config.yaml").is_file()


@pytest.mark.parametrize("override, shown", [("data.root=~/my_piano", "data.root=~/my_piano"),
                                             ("train.steps=[1", "train.steps=[1")])
def test_an_unparsable_override_is_one_plain_line(override, shown):
    """Hydra's grammar errors name lexer exceptions; the user gets the override and what to do."""
    from wavegen.errors import WavegenError

    with pytest.raises(WavegenError) as err:
        compose([override])
    message = str(err.value)
    assert "\n" not in message and "Exception" not in message and "hydra.cc" not in message
    assert f"'{shown}'" in message and "quote" in message
