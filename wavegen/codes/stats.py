"""How many bits the codes cost: event rates, naive and entropy bit rates, compression.

Three ways to count bits per second for a set of code sequences at ``frame_rate``
frames per second (``frame_rate = sample_rate / hop``):

- fixed rate: every frame sends its code tuple, ``frame_rate · log2(Π L_c)``;
- naive run-length bound: every event sends its tuple and its run length,
  ``log2(Π L_c) + log2(max_run)`` bits, where ``max_run`` is the cap the events were
  cut with (or the longest run seen when uncapped);
- empirical entropy: every event sends its tuple and its run length at their
  empirical (unigram) entropies, measured on the same sequences. It is what an
  ideal entropy coder fitted to this very data would spend, so it is optimistic
  for new data but a fair yardstick between code sets measured alike.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Iterable, Optional, Sequence

from torch import Tensor

from wavegen.codes.events import Events, codes_to_events, count_changes


@dataclass(frozen=True)
class RateStats:
    seconds: float
    frames: int
    events: int
    frame_rate: float  # frames per second
    events_per_second: float
    mean_run: float  # frames per event
    bits_per_event_naive: float
    bits_per_second_naive: float
    bits_per_second_entropy: float
    bits_per_second_fixed: float  # the same codes sent frame by frame
    compression: float  # fixed-rate bits / naive run-length bits

    def to_dict(self) -> dict:
        return asdict(self)


def entropy_bits(counts: Iterable[int]) -> float:
    """Shannon entropy in bits of the empirical distribution given by ``counts``."""
    counts = [c for c in counts if c > 0]
    total = sum(counts)
    if total == 0:
        return 0.0
    return max(0.0, -sum(c / total * math.log2(c / total) for c in counts))  # max: no "-0.0" for one value


def _as_sequences(codes) -> list[Tensor]:
    if isinstance(codes, Tensor):
        if codes.dim() == 2:
            return [codes]
        if codes.dim() == 3:
            return list(codes)
        raise ValueError(f"expected codes Tensor[C, F] or Tensor[B, C, F], got shape {tuple(codes.shape)}")
    return list(codes)


def rate_statistics(
    codes: Tensor | Sequence[Tensor],
    levels: Sequence[int],
    hop: int,
    sample_rate: int,
    max_run: Optional[int] = None,
) -> RateStats:
    """Rates of code sequences LongTensor[C, F] (a list, or a batch Tensor[B, C, F]).

    Each sequence is run-length encoded on its own (the first frame of each starts an event).
    """
    sequences = _as_sequences(codes)
    events: list[Events] = [codes_to_events(seq.cpu(), max_run) for seq in sequences]
    frames = sum(e.frames for e in events)
    n_events = sum(len(e) for e in events)
    frame_rate = sample_rate / hop
    seconds = frames / frame_rate
    tuple_bits = sum(math.log2(level) for level in levels)
    if n_events == 0:
        return RateStats(0.0, 0, 0, frame_rate, 0.0, 0.0, 0.0, 0.0, 0.0, frame_rate * tuple_bits, math.inf)
    longest = max(int(e.lengths.max()) for e in events if len(e))
    run_cap = max_run if max_run is not None else longest
    bits_per_event = tuple_bits + math.log2(run_cap)
    tuple_counts = Counter()
    run_counts = Counter()
    for e in events:
        tuple_counts.update(map(tuple, e.values.tolist()))
        run_counts.update(e.lengths.tolist())
    entropy_per_event = entropy_bits(tuple_counts.values()) + entropy_bits(run_counts.values())
    events_per_second = n_events / seconds
    naive = events_per_second * bits_per_event
    fixed = frame_rate * tuple_bits
    return RateStats(
        seconds=seconds,
        frames=frames,
        events=n_events,
        frame_rate=frame_rate,
        events_per_second=events_per_second,
        mean_run=frames / n_events,
        bits_per_event_naive=bits_per_event,
        bits_per_second_naive=naive,
        bits_per_second_entropy=events_per_second * entropy_per_event,
        bits_per_second_fixed=fixed,
        compression=fixed / naive if naive > 0 else math.inf,
    )


def fixed_rate_bits_per_second(levels: Sequence[int], hop: int, sample_rate: int) -> float:
    """Bits per second of frame-by-frame codes: ``sample_rate / hop · log2(Π L_c)``."""
    return sample_rate / hop * sum(math.log2(level) for level in levels)


def events_per_second(indices: Tensor, hop: int, sample_rate: int) -> Tensor:
    """Segment-unbiased event rate of LongTensor[B, C, F] codes: changes per second, Tensor[] float.

    Counts the frames where any channel changes, over all sequences' total duration.
    This is what the rate controller steers; on long streams it equals events/s.
    """
    seconds = indices.shape[0] * indices.shape[-1] * hop / sample_rate
    return count_changes(indices).sum().float() / seconds
