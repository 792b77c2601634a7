"""Small file-system helpers the data layer shares: paths, hashes, locks, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from wavegen.atomic import atomic_write, replace_dir  # noqa: F401  (replace_dir: re-exported for callers)


def expand_path(path: str | os.PathLike) -> Path:
    """``~`` and ``$VARS`` expanded, made absolute (configs may hold ``~/.cache/...``)."""
    return Path(os.path.expandvars(os.path.expanduser(str(path)))).absolute()


def params_hash(params: Any) -> str:
    """A short content hash of JSON-able build parameters (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed).

    Distributed ranks and parallel test workers that build the same dataset wait
    here, and then find the first one's finished build instead of racing it.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a same-folder temp file, fsynced and renamed over it."""
    atomic_write(path, data)


def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """np.save through a same-folder temp file, so a reader never maps half an array."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
