"""The config schemas: which keys every block of a composed config may hold, and their types.

Each block is a dataclass registered with Hydra's ``ConfigStore`` in the group ``schema``:
``schema/config`` (the top level), ``schema/audio``, ``schema/train``, ``schema/data/<kind>``,
``schema/logger/<kind>`` and ``schema/model/<family>``. The model schemas *are* the models'
own config dataclasses (``WaveNetConfig``, ``AutoencoderConfig``, ...) plus the two labels
``family`` and ``name``; ``data``, ``logger`` and ``model`` pick their schema by their
``kind`` or ``family`` key (an autoencoder's ``decoder`` by its ``decoder_kind``).

How they are applied. :func:`wavegen.config.compose` lets Hydra compose the YAML files of
``conf/`` and then merges the result onto :func:`schema_for` (OmegaConf's structured-config
merge): an unknown key raises ``ConfigKeyError``, a value of the wrong type
``ValidationError``, both naming the key (``full_key``), and a required value left unset
shows in ``OmegaConf.missing_keys``. :func:`check` turns those into one line each.

Why not Hydra's usual pattern (each group YAML naming its schema in ``defaults``, so the
schema is the base the YAML merges onto)? That merge writes every schema default into the
composed config: every WaveNet would gain the ``lpc_*`` keys, every autoencoder
``decoder_kind``, and ``config.yaml`` of a run (which a resume compares, block by block) and
the ``config`` a checkpoint stores would change for runs started before. Validating a copy
keeps the composed values exactly what the YAML files say, and the schema still decides
every error. Hence also the declared-but-optional keys (``train.input_noise``,
``model.lpc_order`` on a WaveNet without linear prediction, ``codeset``): they are valid
overrides without a ``+``, and absent from configs that do not set them.

The training-loop, data and logger schemas give no defaults (a field without one, or
``MISSING``, is required): their values live in the YAML files only, and a file lacking one is
refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from wavegen.audio.dsp import AudioConfig
from wavegen.diffusion.training import Objective
from wavegen.models.autoencoder import AutoencoderConfig
from wavegen.models.codes_to_mel import CodesToMelConfig
from wavegen.models.event_transformer import EventTransformerConfig
from wavegen.models.prior import PriorConfig
from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.wavenet import WaveNetConfig

GROUP = "schema"


# ----------------------------------------------------------------------------- train

@dataclass
class TrainSchema:
    """``conf/train/default.yaml``: the shared training loop (wavegen/train/loop.py)."""

    steps: int
    stop_at_step: Optional[int]
    max_minutes: Optional[float]
    minutes_clock: str
    batch_size: int
    segment_length: int
    lr: float
    min_lr_ratio: float
    warmup_steps: int
    weight_decay: float
    betas: list[float]
    grad_clip: float
    ema_decay: float
    log_every: int
    val_every: int
    val_batches: int
    checkpoint_every: int
    keep_checkpoints: int
    media_every: int
    media_seconds: float
    max_nonfinite: int
    device: str
    amp: str
    deterministic: bool
    threads: int
    progress: bool
    run_dir: str
    # Optional (absent from default.yaml): WaveNet tasks only, see wavegen/tasks/wavenet.py.
    input_noise: float = 0.0
    pre_emphasis: float = 0.0
    # Optional: a checkpoint (training or shipped) whose weights a fresh run starts from (wavegen/train/loop.py).
    init_from: Optional[str] = None


# ----------------------------------------------------------------------------- data

@dataclass
class DataSchema:
    """What every kind of data set has: where it is and where its decoded files are cached."""

    kind: str = MISSING
    root: str = MISSING
    cache_dir: str = MISSING


@dataclass
class EmbeddedDataSchema(DataSchema):
    """``conf/data/embedded*.yaml``: scores rendered by the built-in synthesiser (wavegen/data/embedded.py)."""

    seed: int = MISSING
    renderer: str = MISSING
    minutes: float = MISSING
    max_piece_seconds: float = MISSING
    tempo_bpm: float = MISSING
    tempo_jitter: float = MISSING
    validation_fraction: float = MISSING
    chorales: bool = MISSING
    pieces: list[str] = MISSING
    piano: dict[str, Any] = field(default_factory=dict)  # checked against PianoParams by the data code
    timbre_spread: float = 0.0  # each piece by another built-in piano around `piano` (0: all by `piano`)
    extra_soundfonts: list[str] = field(default_factory=list)  # each piece also by fluidsynth with each of these


@dataclass
class RecordingsSchema(DataSchema):
    """Recorded audio (folder, maestro). ``renderer`` is read by the embedded set only; allowed here
    so that an experiment written for it (data: {renderer: both}) still runs with data=folder or maestro."""

    renderer: Optional[str] = None


@dataclass
class FolderDataSchema(RecordingsSchema):
    """``conf/data/folder.yaml``: any folder of audio files."""

    validation_fraction: float = MISSING


@dataclass
class MaestroDataSchema(RecordingsSchema):
    """``conf/data/maestro.yaml``: MAESTRO v3 and its CSV's split."""

    csv: str = MISSING
    splits: list[str] = MISSING
    max_files_per_split: Optional[int] = MISSING


# ----------------------------------------------------------------------------- logger

@dataclass
class LoggerSchema:
    """``conf/logger/none.yaml`` and ``tensorboard.yaml``."""

    kind: str = MISSING


@dataclass
class WandbLoggerSchema(LoggerSchema):
    """``conf/logger/wandb.yaml``."""

    project: str = MISSING
    mode: str = MISSING


# ----------------------------------------------------------------------------- models
# The models' own dataclasses, plus the labels every model YAML carries. ``name`` is required;
# the defaults of the other fields are the models' (a YAML may leave an option out).

def _model_schema(config: type, family: str, *extra: tuple) -> type:
    """``config`` (a model's config dataclass) with the fields ``family`` and ``name`` added."""
    labels = [("family", str, field(default=family)), ("name", str, field(default=MISSING))]
    return make_dataclass(f"{config.__name__}Schema", [*labels, *extra], bases=(config,))


MODELS = {
    "wavenet": _model_schema(WaveNetConfig, "wavenet"),
    # The decoder is a WaveNetConfig or a CodesToMelConfig by decoder_kind: OmegaConf has no union
    # of structured types, so schema_for() puts the right one (DECODERS) in this Any.
    "autoencoder": _model_schema(AutoencoderConfig, "autoencoder", ("decoder", Any, field(default=None))),
    "prior": _model_schema(PriorConfig, "prior"),
    "event_prior": _model_schema(EventTransformerConfig, "event_prior"),
    "codes_to_mel": _model_schema(CodesToMelConfig, "codes_to_mel"),
    "vocoder": _model_schema(VocoderConfig, "vocoder"),
}
DECODERS = {"wavenet": WaveNetConfig, "mel": CodesToMelConfig}  # an autoencoder's decoder, by decoder_kind


# ----------------------------------------------------------------------------- sampling

@dataclass
class SamplingSchema:
    """``sampling:`` (optional, WaveNets only) the trained model's default sampling settings, e.g.
    ``sampling: {top_p: 0.97}``. Stored with the config in every checkpoint, so ``wavegen.load``,
    ``wavegen sample`` and ``wavegen eval continuation`` use them when not told otherwise, and the
    export tool copies them into the registry. Unset keys mean the plain defaults (1.0); the values
    are checked against the model's head when training starts
    (:func:`wavegen.generate.sampling.checked_defaults`)."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    mixture_temperature: Optional[float] = None


# ----------------------------------------------------------------------------- the top level

@dataclass
class ConfigSchema:
    """``conf/config.yaml``: the groups it composes, plus the keys experiments and commands add."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    data: Any = MISSING  # a data schema, by data.kind
    model: Any = MISSING  # a model schema, by model.family
    train: TrainSchema = MISSING
    logger: Any = MISSING  # a logger schema, by logger.kind
    name: str = MISSING
    seed: int = MISSING
    # Optional, set by the experiments and recipes that need them:
    autoencoder: Optional[str] = None  # the level-1 autoencoder checkpoint (codes_to_mel, level-2 priors on audio)
    codeset: Optional[str] = None  # the code set a prior trains on (wavegen codes encode)
    objective: Optional[Objective] = None  # the vocoder's loss weights (wavegen.diffusion.training)
    sampling: Optional[SamplingSchema] = None  # a WaveNet's default sampling settings (SamplingSchema)


DATA = {"embedded": EmbeddedDataSchema, "folder": FolderDataSchema, "maestro": MaestroDataSchema}
LOGGERS = {"none": LoggerSchema, "tensorboard": LoggerSchema, "wandb": WandbLoggerSchema}


_registered = False


def register() -> None:
    """Store every schema in Hydra's ConfigStore (group ``schema``), once per process."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group=GROUP, name="config", node=ConfigSchema)
    store.store(group=GROUP, name="audio", node=AudioConfig)
    store.store(group=GROUP, name="train", node=TrainSchema)
    for sub, table in (("data", DATA), ("logger", LOGGERS), ("model", MODELS), ("decoder", DECODERS)):
        for name, schema in table.items():
            store.store(group=f"{GROUP}/{sub}", name=name, node=schema)
    _registered = True


def stored(path: str) -> DictConfig:
    """A fresh copy of the schema stored as ``schema/<path>`` (e.g. ``"model/wavenet"``)."""
    from hydra.core.config_store import ConfigStore

    register()
    node = ConfigStore.instance().load(f"{GROUP}/{path}.yaml").node
    return _writable(OmegaConf.structured(OmegaConf.get_type(node)))


def _writable(node: DictConfig) -> DictConfig:
    """``node`` with no read-only blocks: a frozen dataclass (AudioConfig) makes its block read-only,
    and a config is merged onto the schema, not the other way round."""
    OmegaConf.set_readonly(node, False)
    for name in node.keys():
        child = node._get_node(name)
        if isinstance(child, DictConfig):
            _writable(child)
    return node


def schema_for(cfg) -> DictConfig:
    """The schema of a composed config: the top level with the data, logger and model schemas its
    ``kind`` and ``family`` keys name. A block whose kind is unknown stays unchecked here; the code
    that reads it refuses the kind with the choices (e.g. ``unknown data.kind``)."""
    schema = stored("config")
    schema.train = stored("train")  # required fields have no default to build the block from
    for block, key, table in (("data", "kind", DATA), ("logger", "kind", LOGGERS), ("model", "family", MODELS)):
        kind = OmegaConf.select(cfg, f"{block}.{key}", default=None)
        if isinstance(kind, str) and kind in table:
            schema[block] = stored(f"{block}/{kind}")
    if OmegaConf.select(cfg, "model.family", default=None) == "autoencoder":
        kind = OmegaConf.select(cfg, "model.decoder_kind", default="wavenet")
        if isinstance(kind, str) and kind in DECODERS:
            schema.model.decoder = stored(f"decoder/{kind}")
    return schema


def paths(node, prefix: str = "") -> list[str]:
    """Every dotted key under a schema node, depth first: ``["audio", "audio.sample_rate", ...]``."""
    found = []
    for name in node.keys():
        path = f"{prefix}{name}"
        found.append(path)
        child = node._get_node(name)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            found.extend(paths(child, path + "."))
    return found
