"""Shipped models: weight files in this folder, named by one ``registry.json``.

``registry.json`` (the only index; a weight file it does not name is never loaded)::

    {"format": "wavegen-registry", "version": 1, "models": {
        "piano-16k": {"file": "piano-16k.pt",          # a wavegen checkpoint beside registry.json
                      "sha256": "<hex of the file>",  # checked on every load
                      "bytes": 1234567,
                      "family": "vocoder",
                      "dtype": "float16",             # how the weights are stored
                      "audio": {"sample_rate": 16000, ...},
                      "sampling": {"steps": 6},       # defaults of the family's wavegen.load object
                      "card": "piano-16k.md"}}}      # the model card (text beside the weights)

The folder is read with :mod:`importlib.resources`, so it works from an installed
wheel (pyproject.toml lists it as package data). ``WAVEGEN_PRETRAINED_DIR`` (or
the ``root`` argument) points at another folder of the same layout: tests use a
temporary one and never touch the shipped registry. Maintainers add entries with
``python -m wavegen.pretrained.export`` (see :mod:`wavegen.pretrained.export`).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional

from wavegen.data.files import file_sha256
from wavegen.errors import WavegenError

REGISTRY = "registry.json"
FORMAT = "wavegen-registry"
VERSION = 1
ENV = "WAVEGEN_PRETRAINED_DIR"


def registry_root(root: Optional[str | os.PathLike] = None):
    """The folder holding ``registry.json``: ``root``, else ``$WAVEGEN_PRETRAINED_DIR``, else this package."""
    chosen = root if root is not None else os.environ.get(ENV) or None
    if chosen is not None:
        return Path(chosen)
    return resources.files(__name__)


def read_registry(root: Optional[str | os.PathLike] = None) -> dict[str, dict]:
    """name -> entry for every shipped model (empty when none are shipped yet)."""
    index = registry_root(root) / REGISTRY
    if not index.is_file():
        if root is None and os.environ.get(ENV) is None:  # the package's own file is missing: a broken install
            raise WavegenError(f"{index} is missing; reinstall wavegen")
        return {}
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise WavegenError(f"{index} is not valid JSON (the registry of shipped models is damaged)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
        raise WavegenError(f"{index} is not a wavegen model registry")
    if data.get("version") != VERSION:
        raise WavegenError(f"{index} has registry version {data.get('version')}; this wavegen reads version {VERSION}")
    return data["models"]


def names(root: Optional[str | os.PathLike] = None) -> list[str]:
    """The shipped models' names, sorted."""
    return sorted(read_registry(root))


def entry(name: str, root: Optional[str | os.PathLike] = None) -> dict:
    """The registry entry of ``name``; an unknown name gets one line with the closest names."""
    models = read_registry(root)
    if name not in models:
        close = difflib.get_close_matches(name, list(models), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(models)) or "none yet"
        raise WavegenError(f"no shipped model named {name!r}{hint} (shipped models: {known})")
    return models[name]


@contextlib.contextmanager
def shipped_file(name: str, root: Optional[str | os.PathLike] = None) -> Iterator[tuple[Path, dict]]:
    """``with shipped_file("piano-16k") as (path, entry):`` the verified weight file on disk.

    From an installed wheel the path is the file itself; from a zipped package,
    :func:`importlib.resources.as_file` makes a temporary copy for the block.
    """
    info = entry(name, root)
    resource = registry_root(root) / str(info["file"])
    with resources.as_file(resource) as path:
        if not Path(path).is_file():
            raise WavegenError(f"shipped model {name!r}: its file {info['file']} is missing; reinstall wavegen")
        if file_sha256(path) != info.get("sha256"):
            raise WavegenError(f"shipped model {name!r}: {path} does not match its registry checksum "
                               "(the file is damaged or was edited; reinstall wavegen)")
        yield Path(path), info


def card(name: str, root: Optional[str | os.PathLike] = None) -> Optional[str]:
    """The model card's text, or None when the entry has none."""
    info = entry(name, root)
    if not info.get("card"):
        return None
    return (registry_root(root) / str(info["card"])).read_text(encoding="utf-8")
