"""One process per run directory: an exclusive ``flock`` on a lock file inside it.

Two ``wavegen train`` processes on one ``train.run_dir`` (or two ``wavegen recipe
run`` on one root) would overwrite each other's checkpoints and metrics. The lock
is ``fcntl.flock`` on ``<folder>/.wavegen.lock``: the kernel releases it when the
holder exits, however it dies (``kill -9`` included), so a stale lock file never
blocks anyone; the file only records who holds it (pid, host, start time) for the
refusal message. flock works across processes of one machine and on most shared
file systems (NFS emulates it with POSIX locks).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
from pathlib import Path

from wavegen.errors import WavegenError

LOCK_NAME = ".wavegen.lock"


class FolderLock:
    """``with FolderLock(folder, "train.run_dir"):`` holds ``folder``'s lock for the block.

    ``what`` names the folder in the refusal (e.g. ``train.run_dir``, ``the recipe root``).
    """

    def __init__(self, folder: str | os.PathLike, what: str = "the folder"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise WavegenError(f"{self.what} {self.folder} is in use by {holder}; wait for it to finish, "
                               "stop it, or pick another folder") from None
        except OSError as exc:
            os.close(fd)
            raise WavegenError(f"cannot lock {self.path}: {exc.strerror}") from None
        # We hold the lock: whatever the file says is a dead holder's record, replaced by ours.
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            # The file stays (removing it would race with a process that just opened it).
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError, OSError):
        return {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process (it has not recorded itself yet)"
    return f"process {holder['pid']} on {holder.get('host', '?')} (started {holder.get('started', '?')})"
