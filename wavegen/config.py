"""Finding and composing the Hydra configs, from a checkout or an installed wheel.

``conf/`` sits at the top of the checkout; the wheel ships it as ``wavegen/conf``
(see ``package-dir`` in pyproject.toml). We use Hydra's compose API rather than
``@hydra.main`` so that every command controls its own run directory (one per
run, shared by all distributed ranks) and turns config mistakes into one line.
"""

from __future__ import annotations

import difflib
import re
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


def _explain(exc: Exception, overrides: list[str]) -> str:
    """Turn a Hydra/OmegaConf composition error into one helpful line."""
    text = " ".join(str(exc).split())
    # An override of a key that does not exist: name the valid keys of its parent node.
    match = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if match:
        key = match.group(1)
        for override in overrides:
            name = override.lstrip("+~").split("=", 1)[0]
            if name.endswith(key) or key.endswith(name.split(".")[-1]):
                key = name
                break
        parent, _, leaf = key.rpartition(".")
        valid = _valid_keys(parent, overrides)
        if valid is None or not parent:  # a misspelt section (trian.steps) or a bare leaf (steps=...)
            guess = _closest_key(key, overrides)
            if guess:
                return f"unknown config key '{key}' (did you mean '{guess}'?)"
        if valid is not None:
            close = difflib.get_close_matches(leaf, valid, n=1)
            hint = f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)" if close else ""
            where = f"'{parent}'" if parent else "the top level"
            return f"unknown config key '{key}'{hint}; valid keys of {where}: {', '.join(valid)}"
        return f"unknown config key '{key}'"
    if type(exc).__name__ == "OverrideParseException" or "NoViableAltException" in text or "mismatched input" in text:
        # Hydra's override grammar (its lexer's exception names mean nothing to a user).
        bad = next((o for o in overrides if o and (o in text or f"'{o.split('=', 1)[-1]}'" in text)), None)
        what = f"the override '{bad}'" if bad else "an override"
        return (f"cannot parse {what}: quote a value holding characters such as ~ * ? [ ] {{ }} "
                f"(key='value'); a ~ in a path is not expanded, write $HOME instead")
    match = re.search(r"Could not find '([^']+)'", text)
    if match:
        group, _, option = match.group(1).partition("/")
        try:
            options = available_options(group)
        except Exception:
            options = []
        if options:
            return f"unknown config '{group}={option}'{_did_you_mean(option, options)}; " \
                   f"choices for '{group}': {', '.join(options)}"
    return text


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _closest_key(key: str, overrides: list[str]) -> Optional[str]:
    """The config key ``key`` most likely meant: a close dotted path (``trian.steps`` -> ``train.steps``),
    else the one key whose last part it names (``steps`` -> ``train.steps``)."""
    try:
        cfg = compose([o for o in overrides if "=" in o and _split_override(o)[0] != key], explain=False)
    except Exception:
        return None
    from omegaconf import OmegaConf

    paths = []

    def walk(node, prefix: str) -> None:
        for name in node.keys():
            path = f"{prefix}{name}"
            paths.append(path)
            child = OmegaConf.select(node, str(name), throw_on_missing=False)
            if OmegaConf.is_dict(child):
                walk(child, path + ".")

    walk(cfg, "")
    close = difflib.get_close_matches(key, paths, n=1, cutoff=0.8)
    if close:
        return close[0]
    leaf = key.rpartition(".")[2]
    named = [p for p in paths if p.rpartition(".")[2] == leaf]
    return named[0] if len(named) == 1 else None


def _valid_keys(parent: str, overrides: list[str]) -> Optional[list[str]]:
    try:
        cfg = compose([o for o in overrides if "=" in o and not o.split("=", 1)[0].startswith(parent + ".")
                       and o.split("=", 1)[0] != parent], explain=False)
    except Exception:
        return None
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, parent) if parent else cfg
    if node is None or not hasattr(node, "keys"):
        return None
    return sorted(str(k) for k in node.keys())


def _split_override(override: str) -> tuple[str, str, bool]:
    """``"+train.lr=3"`` -> ``("train.lr", "3", True)``; the flag says whether it assigns a value."""
    name, sep, value = override.lstrip("+").partition("=")
    return name, value, bool(sep) and not override.startswith("~") and "@" not in name


def _check_group_options(overrides: list[str]) -> None:
    """Hydra skips an unknown option of an *optional* group without a word, so a typo such as
    ``experiment=wavenet_pinao`` would train the default model; refuse it like any unknown option."""
    root = config_dir()
    for override in overrides:
        name, value, assigns = _split_override(override)
        if not assigns or "." in name or value in ("", "null") or not (root / name).is_dir():
            continue
        options = available_options(name)
        if value not in options:
            raise WavegenError(f"unknown config '{name}={value}'{_did_you_mean(value, options)}; "
                               f"choices for '{name}': {', '.join(options)}")


def _check_value_types(cfg, overrides: list[str]) -> None:
    """A number or true/false key given text (``train.steps=1O0``) fails here, naming the key,
    instead of deep inside training. The expected type is the key's value without the override."""
    from omegaconf import OmegaConf

    root = config_dir()
    groups, leaves = [], []
    for override in overrides:
        name, _, assigns = _split_override(override)
        if not assigns:
            continue
        if (root / name).is_dir():
            groups.append(override)
        else:
            leaves.append(name)
    if not leaves:
        return
    try:
        defaults = compose(groups, explain=False)
    except Exception:
        return  # a composition error is reported by the caller's own compose
    for key in leaves:
        before = OmegaConf.select(defaults, key, default=None)
        after = OmegaConf.select(cfg, key, default=None)
        if isinstance(before, bool) and not isinstance(after, bool):
            raise WavegenError(f"config key '{key}' expects true or false, got {after!r}")
        if isinstance(before, (int, float)) and not isinstance(before, bool) and isinstance(after, str):
            raise WavegenError(f"config key '{key}' expects a number (default {before!r}), got {after!r}")


def compose(overrides: Iterable[str] = (), config_name: str = "config", explain: bool = True):
    """Compose ``conf/<config_name>.yaml`` with Hydra command-line style overrides.

    Raises WavegenError with one line (naming the valid keys) on a bad override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    if config_name == "config":
        _check_group_options(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except WavegenError:
        raise
    except Exception as exc:
        if not explain:
            raise
        raise WavegenError(_explain(exc, overrides) or f"{type(exc).__name__} while composing the config") from None
    finally:
        GlobalHydra.instance().clear()
    if explain and config_name == "config":
        _check_value_types(cfg, overrides)
    return cfg


def to_container(cfg) -> dict:
    """A resolved plain-dict copy of a config (what checkpoints store)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
