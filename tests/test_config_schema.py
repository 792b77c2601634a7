"""The config schemas (wavegen.schema): what they refuse, in one line, and what they leave as it was.

The composed configs themselves must not change (a resume compares a run's saved ``model`` and
``audio`` blocks), so the schema is checked against, never merged into, the result.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wavegen.config as config_module
from wavegen.config import available_options, compose, config_dir
from wavegen.errors import WavegenError

GROUP_OPTIONS = [f"{group}={option}" for group in ("audio", "data", "logger", "model", "train")
                 for option in available_options(group)]


def _refusal(overrides: list[str]) -> str:
    with pytest.raises(WavegenError) as err:
        compose(overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("option", GROUP_OPTIONS)
def test_every_group_option_composes_against_its_schema(option):
    """Each YAML of conf/ holds only keys its schema declares, of the declared types (experiments:
    tests/test_configs.py composes every one)."""
    cfg = compose([option])
    assert cfg.model.family and cfg.data.kind and cfg.logger.kind


@pytest.mark.parametrize("overrides, message", [
    (["model.lyers=3"], "unknown config key 'model.lyers' (did you mean 'model.layers'?); valid keys of 'model': "
                        "bits, classes, companding, dilation_cycle, family, gate_channels, global_classes, head, "
                        "kernel_size, layers, local_channels, local_hidden, local_hop, local_kernel, local_source, "
                        "lpc_mean_shift, lpc_method, lpc_mixture_spread, lpc_order, lpc_refit, lpc_window, mixtures, "
                        "name, residual_channels, skip_channels"),
    (["trian.steps=5"], "unknown config key 'trian.steps' (did you mean 'train.steps'?)"),
    (["steps=5"], "unknown config key 'steps' (did you mean 'train.steps'?)"),
    (["train.steps=1O0"], "config key 'train.steps' expects a number (default 2000), got '1O0'"),
    (["train.deterministic=maybe"], "config key 'train.deterministic' expects true or false, got 'maybe'"),
    (["+train.steps=3"], "config key 'train.steps' is already set; drop the '+' to change it: train.steps=3"),
    (["train.steps=???"], "config key 'train.steps' has no value; set it (train.steps=...)"),
    # An optional key with a schema default, left "???" by an experiment, is unset too.
    (["experiment=piano_tiny_onsets"], "config key 'train.init_from' has no value; set it (train.init_from=...)"),
    # Blocks whose schema depends on a kind: the autoencoder's decoder, a prior's upper codes, the objective.
    (["model=autoencoder/debug", "model.decoder.mixturez=2"],
     "unknown config key 'model.decoder.mixturez' (did you mean 'model.decoder.mixtures'?)"),
    (["model=autoencoder/debug_mel", "model.decoder.mixtures=2"], "unknown config key 'model.decoder.mixtures'"),
    (["model=prior/level2_debug", "model.upper.widht=8"],
     "unknown config key 'model.upper.widht' (did you mean 'model.upper.width'?); valid keys of 'model.upper': "
     "audio_encoder, dilations, frame_dilations, input, levels, stride, width"),
    (["experiment=vocoder_debug", "objective.chain_stpes=2"],
     "unknown config key 'objective.chain_stpes' (did you mean 'objective.chain_steps'?)"),
    (["data=folder", "data.minutes=1"], "unknown config key 'data.minutes'; valid keys of 'data': "
                                        "cache_dir, kind, renderer, root, validation_fraction"),
])
def test_a_bad_override_is_refused_by_the_schema_in_one_line(overrides, message):
    assert _refusal(overrides).startswith(message)


def test_keys_the_schema_declares_need_no_plus_and_stay_absent_when_unset():
    """train.input_noise, model.lpc_order and codeset are declared but in no default YAML: a plain
    override sets them (a '+' still works), and a config without them is what it was."""
    plain = compose(["model=wavenet/tiny"])
    assert "input_noise" not in plain.train and "lpc_order" not in plain.model and "codeset" not in plain
    cfg = compose(["model=wavenet/tiny", "train.input_noise=0.01", "model.lpc_order=8", "codeset=/tmp/codes"])
    assert (cfg.train.input_noise, cfg.model.lpc_order, cfg.codeset) == (0.01, 8, "/tmp/codes")
    assert compose(["+train.input_noise=0.02"]).train.input_noise == 0.02
    assert "'train.input_noise' expects a number" in _refusal(["train.input_noise=lots"])


@pytest.fixture
def conf_copy(tmp_path, monkeypatch):
    """A copy of conf/ that compose() reads instead, for configs with a mistake in a YAML file."""
    copy = tmp_path / "conf"
    shutil.copytree(config_dir(), copy)
    monkeypatch.setattr(config_module, "config_dir", lambda: copy)
    return copy


def test_an_unknown_key_in_a_model_yaml_is_refused_with_the_suggestion(conf_copy):
    text = (conf_copy / "model" / "wavenet" / "debug.yaml").read_text()
    (conf_copy / "model" / "wavenet" / "typo.yaml").write_text(text.replace("layers: 4", "lyers: 4"))
    assert _refusal(["model=wavenet/typo"]).startswith(
        "unknown config key 'model.lyers' (did you mean 'model.layers'?); valid keys of 'model': bits,")


def test_a_wrong_type_or_a_missing_value_in_a_yaml_is_refused_naming_the_key(conf_copy):
    train = conf_copy / "train" / "default.yaml"
    original = train.read_text()
    train.write_text(original.replace("batch_size: 8", "batch_size: eight"))
    assert _refusal([]) == "config key 'train.batch_size' expects a number, got 'eight'"
    train.write_text(original.replace("lr: 1.0e-3\n", ""))
    assert _refusal([]) == "config key 'train.lr' has no value; set it (train.lr=...)"


# The model_config each family's checkpoints stored before the schemas (written by that code's
# task.model_config() for the debug configs): a checkpoint is read without Hydra, so these must build.
PRE_SCHEMA_MODEL_CONFIGS = {
    "prior": {"family": "prior", "levels": [5, 5, 5], "hop": 16, "sample_rate": 16000, "wavenet": {
        "layers": 4, "dilation_cycle": 4, "kernel_size": 2, "residual_channels": 16, "gate_channels": 32,
        "skip_channels": 32, "mixtures": 10, "bits": 16, "local_hidden": 16, "local_kernel": 3, "global_classes": 0,
        "lpc_order": 0, "lpc_window": 1024, "lpc_refit": 256, "lpc_mean_shift": False}, "upper": {
        "levels": [5, 5], "stride": 4, "width": 16, "dilations": [1, 2], "frame_dilations": [1], "input": "audio",
        "audio_encoder": {"base_channels": 4, "max_channels": 8, "dilations": [1], "frame_dilations": [1]}},
        "codes_fingerprint": None},
    "event_prior": {"family": "event_prior", "levels": [5, 5], "hop": 256, "sample_rate": 16000, "max_run": 16,
                    "d_model": 32, "layers": 2, "heads": 2, "ff_mult": 2, "context": 64, "dropout": 0.0,
                    "codes_fingerprint": None},
    "codes_to_mel": {"family": "codes_to_mel", "levels": [5, 5, 5], "hop": 16, "sample_rate": 16000, "n_mels": 80,
                     "mel_hop": 256, "width": 16, "dilations": [1, 2], "mel_mean": -6.0, "codes_fingerprint": None},
    "autoencoder": {"family": "autoencoder", "sample_rate": 16000, "hop": 16, "levels": [5, 5, 5], "bound": "clip",
                    "margin_weight": 1.0, "noise_substitution": True, "encoder": {
                        "strides": None, "base_channels": 4, "max_channels": 8, "dilations": [1, 3],
                        "frame_dilations": [1], "kernel_size": 3, "input": "mulaw"}, "slowness": {
                        "kind": "group", "values": "quantised", "target_events_per_second": 100.0,
                        "initial_weight": 0.1, "gain": 0.005, "min_weight": 0.0001, "max_weight": 1000.0,
                        "warmup_steps": 0}, "decoder": {
                        "layers": 4, "dilation_cycle": 4, "kernel_size": 2, "residual_channels": 8,
                        "gate_channels": 16, "skip_channels": 16, "head": "categorical", "classes": 256,
                        "companding": "mulaw", "mixtures": 4, "bits": 16, "local_hidden": 16, "local_kernel": 3,
                        "global_classes": 0, "lpc_order": 0, "lpc_window": 1024, "lpc_refit": 256,
                        "lpc_mean_shift": False}},
}

# Run without Hydra or OmegaConf importable (the GPU machine has neither): every family's stored
# config builds, gives back the same dict, and the shipped checkpoints (written before the schemas) load.
_WITHOUT_HYDRA = """
import json, sys
sys.modules["hydra"] = sys.modules["omegaconf"] = None
import wavegen
from wavegen.models.registry import build_model
stored = json.loads(sys.argv[1])
for family, config in stored.items():
    model = build_model(family, config)
    again = {"family": family, **model.cfg.to_dict()}
    expected = {k: v for k, v in config.items() if k != "codes_fingerprint"}
    assert again == expected, (family, again, expected)
for name in ("piano-tiny", "piano-ae", "piano-16k"):
    wavegen.load(name)
print("ok")
"""


@pytest.mark.slow
def test_checkpoints_written_before_the_schemas_load_without_hydra():
    result = subprocess.run([sys.executable, "-c", _WITHOUT_HYDRA, json.dumps(PRE_SCHEMA_MODEL_CONFIGS)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_pre_schema_model_configs_build_and_refuse_unknown_options():
    from wavegen.models.registry import build_model

    for family, config in PRE_SCHEMA_MODEL_CONFIGS.items():
        model = build_model(family, config)
        assert {"family": family, **model.cfg.to_dict()} == {k: v for k, v in config.items()
                                                              if k != "codes_fingerprint"}
    bad = {**PRE_SCHEMA_MODEL_CONFIGS["event_prior"], "d_modle": 32}
    with pytest.raises(WavegenError, match=r"unknown event_prior option\(s\) \['d_modle'\]; valid options: "):
        build_model("event_prior", bad)
