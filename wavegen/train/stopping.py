"""SIGINT / SIGTERM during training: finish the step in progress, save it, then stop.

A Ctrl-C, a scheduler's SIGTERM (Slurm, Kubernetes, ``torchrun`` forwarding one)
or ``kill`` would otherwise throw away every step since the last periodic
checkpoint. :class:`StopRequests` turns the first such signal into a flag that
the loop reads between steps; a second signal acts at once (the handler that was
there before, e.g. Ctrl-C's ``KeyboardInterrupt``), for a run that must die now.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped on a signal after saving the checkpoint of the last finished step."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"interrupted at step {step}: checkpoint saved to {checkpoint}; "
                         "run the same command to resume")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + int(self.signum)


class StopRequests:
    """``with StopRequests() as stop: ... if stop.requested: ...``; handlers are restored on exit.

    Only the main thread can install signal handlers; elsewhere (a notebook's worker
    thread) this is inert and signals keep their usual effect.
    """

    def __init__(self):
        self.signum: Optional[int] = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            return
        self._restore()  # a second signal: whatever it did before this object took over
        signal.raise_signal(signum)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
