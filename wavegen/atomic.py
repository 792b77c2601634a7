"""Atomic file writes: the one place in wavegen that turns a temporary file into a finished one.

Every output (audio, checkpoints, code files, manifests, PNGs, JSON summaries)
is written the same way, so a kill at any moment leaves either the old file or
the new one under its name, never half of one:

1. the data goes to a hidden temporary file in the target's own folder (a
   rename is only atomic within one file system);
2. the temporary file is flushed and fsynced, so the rename cannot reach the
   disk before the data does;
3. it is renamed over the target in one step (or hard-linked, when an existing
   file must not be replaced);
4. the folder is fsynced where the file system allows it, so the rename itself
   survives a power cut.

On any error (``KeyboardInterrupt`` included) the temporary file is removed and
the target is left as it was.

- :func:`atomic_write` writes bytes, or lets a callback write into the open
  temporary file: ``atomic_write(path, lambda f: torch.save(obj, f))``.
- :func:`atomic_path` is for writers that need a file *name* (a compiler, a
  memory map): ``with atomic_path(path) as tmp: build(tmp)``.
- :func:`temp_file_for` and :func:`publish` are the two halves of
  :func:`atomic_path`, for a file that is opened in one method and finished in
  another (a streamed output).
- :func:`publish_link` points a second name at a finished file (a checkpoint's
  ``last.pt``); :func:`replace_dir` swaps in a finished folder.

A test (``tests/test_atomic.py``) fails if ``os.replace``/``os.rename`` appear
anywhere else in the package, so no second copy of this logic can creep in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Union

PathLike = Union[str, os.PathLike]


def new_file_mode() -> int:
    """The permission bits ``open()`` would give a new file (0o666 minus the umask).

    ``tempfile.mkstemp`` creates files as 0o600; renamed into place they would
    be unreadable to the other users of a shared cache or output folder.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def fsync_dir(folder: PathLike) -> None:
    """Make renames in ``folder`` durable; a no-op where folders cannot be opened or synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(tmp: PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def temp_file_for(path: PathLike) -> Path:
    """Create an empty hidden temporary file next to ``path`` (its folder made if needed).

    The file has the mode ``open()`` would give ``path``. Hand it to
    :func:`publish` when it is complete, or delete it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
    except BaseException:
        os.close(fd)
        _remove(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def publish(tmp: PathLike, path: PathLike, overwrite: bool = True) -> Path:
    """Move the finished temporary file ``tmp`` (same folder) to ``path`` in one durable step.

    With ``overwrite=False`` an existing ``path`` is never replaced, even one
    that appeared after the caller checked: the file is hard-linked into place,
    which fails with ``FileExistsError`` (file systems without hard links fall
    back to a rename). ``tmp`` is gone afterwards, whether this succeeds or raises.
    """
    path = Path(path)
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # fsync acts on the file, so a read-only descriptor is enough
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                os.replace(tmp, path)
    finally:
        _remove(tmp)
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """``with atomic_path(path) as tmp:`` write a file named ``tmp``; it becomes ``path`` on success.

    If the block raises, ``tmp`` is removed and ``path`` is untouched.
    """
    tmp = temp_file_for(path)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    publish(tmp, path, overwrite)


def atomic_write(path: PathLike, data: Union[bytes, Callable[[BinaryIO], object]], overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``.

    ``data`` is bytes, or a callback that writes into the open binary file
    (``lambda f: np.save(f, array)``); what it writes becomes ``path`` only if
    it returns normally.
    """
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "w+b") as handle:  # readable too: libsndfile reads back headers it patches
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
    return Path(path)


def publish_link(source: PathLike, path: PathLike) -> None:
    """Make ``path`` a hard link to the finished file ``source``, replacing any old ``path`` atomically.

    Raises ``OSError`` on file systems without hard links (the caller then
    writes a copy instead).
    """
    source, path = Path(source), Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    _remove(tmp)
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
    finally:
        _remove(tmp)
    fsync_dir(path.parent)


def replace_dir(built: PathLike, target: PathLike) -> None:
    """Move a finished folder ``built`` to ``target``, replacing any old one, by renames only."""
    built, target = Path(built), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(built, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
