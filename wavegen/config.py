"""Finding and composing the Hydra configs, from a checkout or an installed wheel.

``conf/`` sits at the top of the checkout; the wheel ships it as ``wavegen/conf``
(see ``package-dir`` in pyproject.toml). We use Hydra's compose API rather than
``@hydra.main`` so that every command controls its own run directory (one per
run, shared by all distributed ranks) and turns config mistakes into one line.

What a config may hold is declared in :mod:`wavegen.schema` (dataclasses registered with
Hydra's ConfigStore); :func:`compose` checks every composed config against it, so an unknown
key, a wrong type or an unset required value is refused by the schema, with the closest
valid key, never by reading Hydra's error prose.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Optional

from wavegen.errors import WavegenError

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """The folder holding ``config.yaml`` and the config groups."""
    checkout = _CHECKOUT_ROOT / "conf"
    if (checkout / "config.yaml").is_file():
        return checkout
    from importlib.resources import files

    installed = Path(str(files("wavegen") / "conf"))
    if (installed / "config.yaml").is_file():
        return installed
    raise WavegenError("cannot find wavegen's configs (conf/config.yaml); is the package installed correctly?")


def recipe_dir() -> Path:
    """The folder holding the recipes (``recipes/*.yaml``)."""
    checkout = _CHECKOUT_ROOT / "recipes"
    if checkout.is_dir() and any(checkout.glob("*.yaml")):
        return checkout
    from importlib.resources import files

    return Path(str(files("wavegen") / "recipes"))


def available_options(group: str) -> list[str]:
    """Config names in a group, e.g. ``available_options("model/wavenet") == ["base", "debug", "tiny"]``."""
    folder = config_dir() / group
    names = []
    for path in sorted(folder.rglob("*.yaml")):
        names.append(str(path.relative_to(folder).with_suffix("")))
    return names


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parse(overrides: list[str]) -> list:
    """Hydra's parse of each override; one that does not parse is one plain line naming it.

    Parsed one at a time so that the message can name the override itself: the grammar's own
    error names lexer exceptions, not what to do."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for override in overrides:
        try:
            parsed.append(parser.parse_override(override))
        except HydraException:
            raise WavegenError(f"cannot parse the override '{override}': quote a value holding characters such as "
                               f"~ * ? [ ] {{ }} (key='value'); a ~ in a path is not expanded, write $HOME instead") from None
    return parsed


def _is_group(override) -> bool:
    return override.package is None and (config_dir() / override.key_or_group).is_dir()


def _check_group_options(parsed: list) -> None:
    """Hydra skips an unknown option of an *optional* group without a word, so a typo such as
    ``experiment=wavenet_pinao`` would train the default model; refuse it like any unknown option."""
    for override in parsed:
        if not _is_group(override) or override.is_delete():
            continue
        value = override.value()
        if value in ("", None):
            continue
        options = available_options(override.key_or_group)
        if value not in options:
            name = override.key_or_group
            raise WavegenError(f"unknown config '{name}={value}'{_did_you_mean(str(value), options)}; "
                               f"choices for '{name}': {', '.join(options)}")


def _for_hydra(override) -> str:
    """``key=value`` becomes ``++key=value`` (set, adding the key if this config's YAML lacks it): the
    schema, not the YAML files, decides which keys exist (an optional key such as train.input_noise
    needs no ``+``), and a key it lacks is refused by :func:`_check_schema` with a suggestion.
    Group choices, ``+key`` (add, refused if present), ``~key`` and Hydra's own keys pass unchanged."""
    line = override.input_line
    plain_set = not (override.is_add() or override.is_force_add() or override.is_delete())
    if not plain_set or _is_group(override) or override.key_or_group.split(".")[0] == "hydra":
        return line
    return "++" + line


def _explain(exc: Exception, parsed: list) -> str:
    """One line for what Hydra refused while composing (after :func:`_parse` and the group checks)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        # An option named inside a config's defaults list (a top-level group choice was checked already).
        group, _, option = exc.missing_cfg_file.partition("/")
        options = available_options(group) if (config_dir() / group).is_dir() else []
        if options:
            return f"unknown config '{group}={option}'{_did_you_mean(option, options)}; " \
                   f"choices for '{group}': {', '.join(options)}"
    text = " ".join(str(exc).split())
    if isinstance(exc, ConfigCompositionException) and exc.__cause__ is None:
        # "+key=value" for a key the config already holds: Hydra's message quotes the key. (Its
        # exception carries no key, so this one check reads the text.)
        for override in parsed:
            if override.is_add() and not override.is_force_add() and f"'{override.key_or_group}'" in text:
                key = override.key_or_group
                return f"config key '{key}' is already set; drop the '+' to change it: {override.input_line[1:]}"
    return text


def _check_schema(cfg, overrides: list[str], parsed: list) -> None:
    """Refuse, in one line, what the schema (wavegen.schema) does not allow: a key it lacks (with
    the closest valid key), a value of the wrong type, a required value left unset."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    from wavegen import schema as S

    typed = S.schema_for(cfg)
    try:
        merged = OmegaConf.merge(typed, cfg)
    except ConfigKeyError as exc:
        raise WavegenError(_unknown_key(str(exc.full_key), exc.object_type, typed, parsed)) from None
    except ValidationError as exc:
        raise WavegenError(_wrong_type(str(exc.full_key), exc, cfg, overrides, parsed)) from None
    # Both: merging "???" onto a schema key that has a default keeps the default (OmegaConf's rule).
    missing = sorted(OmegaConf.missing_keys(merged) | OmegaConf.missing_keys(cfg))
    if missing:
        raise WavegenError(f"config key '{missing[0]}' has no value; set it ({missing[0]}=...)")


def _unknown_key(full_key: str, schema: type, typed, parsed: list) -> str:
    """The schema has no ``full_key`` (``schema``: the dataclass of its parent block): name the key
    as the user wrote it, and the closest valid one."""
    from dataclasses import fields

    from wavegen import schema as S

    # The override that added it (``trian.steps=5`` fails at ``trian``), else a key in a YAML file.
    key = next((o.key_or_group for o in parsed
                if o.key_or_group == full_key or o.key_or_group.startswith(full_key + ".")), full_key)
    parent, _, leaf = full_key.rpartition(".")
    if key != full_key or not parent:  # a misspelt section (trian.steps) or a bare leaf (steps=...)
        guess = _closest_path(key, S.paths(typed))
        if guess:
            return f"unknown config key '{key}' (did you mean '{guess}'?)"
    valid = sorted(f.name for f in fields(schema))
    close = difflib.get_close_matches(leaf, valid, n=1)
    hint = f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)" if close else ""
    where = f"'{parent}'" if parent else "the top level"
    return f"unknown config key '{key}'{hint}; valid keys of {where}: {', '.join(valid)}"


def _closest_path(key: str, paths: list[str]) -> Optional[str]:
    """A close dotted path (``trian.steps`` -> ``train.steps``), else the one key whose last part ``key``
    names (``steps`` -> ``train.steps``)."""
    close = difflib.get_close_matches(key, paths, n=1, cutoff=0.8)
    if close:
        return close[0]
    leaf = key.rpartition(".")[2]
    named = [p for p in paths if p.rpartition(".")[2] == leaf]
    return named[0] if len(named) == 1 else None


def _wrong_type(full_key: str, exc, cfg, overrides: list[str], parsed: list) -> str:
    """The value at ``full_key`` does not convert to the type its schema (``exc.object_type``) declares."""
    import typing

    from omegaconf import OmegaConf

    declared = typing.get_type_hints(exc.object_type).get(full_key.rpartition(".")[2])
    # Optional[int] -> {int, NoneType}
    types = set(typing.get_args(declared)) if typing.get_origin(declared) is typing.Union else {declared}
    value = OmegaConf.select(cfg, full_key, default=None)
    if bool in types:
        return f"config key '{full_key}' expects true or false, got {value!r}"
    if types & {int, float}:
        return f"config key '{full_key}' expects a number{_default(full_key, overrides, parsed)}, got {value!r}"
    reason = str(exc).splitlines()[0]
    return f"config key '{full_key}' has a value of the wrong type: {reason}"


def _default(full_key: str, overrides: list[str], parsed: list) -> str:
    """`` (default 2000)``: the YAML's value for a key an override set badly (composed once more,
    without that override, on this error path only)."""
    from omegaconf import OmegaConf

    others = [line for line, o in zip(overrides, parsed) if o.key_or_group != full_key]
    if len(others) == len(overrides):
        return ""  # the bad value is the YAML's own
    try:
        value = OmegaConf.select(compose(others, explain=False), full_key, default=None)
    except Exception:
        return ""
    return "" if value is None else f" (default {value!r})"


def compose(overrides: Iterable[str] = (), config_name: str = "config", explain: bool = True):
    """Compose ``conf/<config_name>.yaml`` with Hydra command-line style overrides, checked against
    the schema (:mod:`wavegen.schema`).

    Raises WavegenError with one line (naming the valid keys or choices) on a bad override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    parsed = _parse(overrides)
    checked = config_name == "config"
    if checked:
        _check_group_options(parsed)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name,
                                overrides=[_for_hydra(o) for o in parsed] if checked else overrides)
    except WavegenError:
        raise
    except Exception as exc:
        if not explain:
            raise
        raise WavegenError(_explain(exc, parsed) or f"{type(exc).__name__} while composing the config") from None
    finally:
        GlobalHydra.instance().clear()
    if checked and explain:
        _check_schema(cfg, overrides, parsed)
    return cfg


def to_container(cfg) -> dict:
    """A resolved plain-dict copy of a config (what checkpoints store)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
