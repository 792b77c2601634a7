"""Discrete codes for the autoencoders: scalar quantisation, slowness control, run-length events, files.

- :mod:`~wavegen.codes.quantiser`  bounded scalar quantisation with straight-through rounding (FSQ style)
- :mod:`~wavegen.codes.slowness`   the slowness penalty and the controller that steers it to an event rate
- :mod:`~wavegen.codes.events`     exact run-length encoding between code frames and events
- :mod:`~wavegen.codes.stats`      events/s, bits/s (naive bound and empirical entropy), compression
- :mod:`~wavegen.codes.codefile`   the versioned, checksummed ``.codes`` file format
- :mod:`~wavegen.codes.plots`      codes drawn against the spectrogram
- :mod:`~wavegen.codes.joint`      C code channels <-> one joint class index per frame (what priors model)

Everything here imports with torch alone.
"""

from wavegen.codes.codefile import CodeFile, read_code_file, write_code_file
from wavegen.codes.events import (
    Events,
    batch_to_events,
    codes_to_events,
    count_changes,
    count_events,
    events_to_batch,
    events_to_codes,
)
from wavegen.codes.quantiser import Quantised, ScalarQuantiser
from wavegen.codes.slowness import RateController, slowness_penalty
from wavegen.codes.stats import RateStats, events_per_second, fixed_rate_bits_per_second, rate_statistics

__all__ = [
    "CodeFile",
    "Events",
    "Quantised",
    "RateController",
    "RateStats",
    "ScalarQuantiser",
    "batch_to_events",
    "codes_to_events",
    "count_changes",
    "count_events",
    "events_per_second",
    "events_to_batch",
    "events_to_codes",
    "fixed_rate_bits_per_second",
    "rate_statistics",
    "read_code_file",
    "slowness_penalty",
    "write_code_file",
]
