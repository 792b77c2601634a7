"""Scores from music21's bundled corpus -> note events a renderer can play.

Only pieces that ship inside the ``music21`` wheel are used, so nothing is
downloaded. A score has no performance in it, so we add a plain, seeded one:
one tempo per piece (the score's own mark if it has one), velocities from the
dynamics marks plus a louder top voice and metrical accents, a few milliseconds
of timing jitter, and slightly detached note ends so repeated notes re-strike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavegen.data.renderer import NoteEvent
from wavegen.errors import WavegenError

# Tempos outside this range are more likely typos than performance directions.
_TEMPO_RANGE = (40.0, 200.0)


@dataclass(frozen=True)
class Performance:
    """A piece ready to render: its events and how they were derived."""

    piece: str  # corpus path, e.g. "joplin/maple_leaf_rag"
    title: str
    composer: str
    tempo_bpm: float  # quarter notes per minute
    notes: list[NoteEvent]

    @property
    def seconds(self) -> float:
        return max((n.onset + n.duration for n in self.notes), default=0.0)


def chorale_paths() -> list[str]:
    """All four-part Bach chorales in the local music21 corpus, as sorted corpus paths."""
    from music21 import corpus

    names = []
    for path in corpus.getCorePaths():
        text = str(path).replace("\\", "/")
        rel = text.split("/corpus/", 1)[-1]
        stem = rel.rsplit(".", 1)[0]
        # "-sc" files are alternative scorings of the same chorale.
        if rel.startswith("bach/bwv") and rel.endswith(".mxl") and not stem.endswith("-sc"):
            names.append(stem)
    return sorted(set(names))


def parse_corpus_piece(piece: str):
    """Corpus path -> music21 Score, or a WavegenError if this music21 lacks it."""
    from music21 import corpus

    try:
        return corpus.parse(piece)
    except Exception as exc:
        import music21

        raise WavegenError(
            f"music21 corpus piece '{piece}' is not available in music21 {music21.__version__}: "
            f"{' '.join(str(exc).split())[:120]}"
        ) from None


def _score_tempo(score) -> float | None:
    """The first metronome mark in quarter notes per minute.

    Marks music21 derives from tempo words ("Allegro" -> 132, shown as
    "playback only") count too: they are better guesses than a global default.
    """
    try:
        boundaries = score.metronomeMarkBoundaries()
    except Exception:
        return None
    for _, _, mark in boundaries:
        try:
            bpm = float(mark.getQuarterBPM())
        except Exception:
            continue
        if _TEMPO_RANGE[0] <= bpm <= _TEMPO_RANGE[1]:
            return bpm
    return None


def _level_at(levels: list[tuple[float, float]], offset: float, default: float = 0.6) -> float:
    level = default
    for at, value in levels:
        if at > offset:
            break
        level = value
    return level


def _accent(position: float, bar: float | None, beat: float | None) -> float:
    """+0.5 on a downbeat, 0 on other beats, -0.25 between beats (like music21's beatStrength - 0.5)."""
    if not bar or not beat:
        return 0.0
    if abs(position % bar) < 1e-6 or abs(position % bar - bar) < 1e-6:
        return 0.5
    if abs(position % beat) < 1e-6 or abs(position % beat - beat) < 1e-6:
        return 0.0
    return -0.25


def _walk_part(part):
    """Yield (kind, offset in quarters from the part's start, metrical accent, element) per note and dynamic.

    Walks measure by measure rather than asking music21 for each note's beat:
    context lookups per note made parsing a piece take seconds.
    """
    measures = list(part.getElementsByClass("Measure"))
    containers = measures or [part]
    bar = beat = None
    for measure in containers:
        ts = getattr(measure, "timeSignature", None)
        if ts is not None:
            bar, beat = float(ts.barDuration.quarterLength), float(ts.beatDuration.quarterLength)
        base = float(measure.offset) if measures else 0.0
        pickup = float(getattr(measure, "paddingLeft", 0.0) or 0.0)
        for element in measure.recurse().getElementsByClass(("Note", "Chord", "Dynamic")):
            site = element.activeSite
            local = float(element.offset)
            if site is not None and site is not measure and site.isStream:
                local += float(site.offset)  # notes inside a Voice
            kind = "dynamic" if "Dynamic" in element.classes else "note"
            yield kind, base + local, _accent(local + pickup, bar, beat), element


@dataclass
class _Held:
    """A note head with its (possibly tie-extended) end, in quarters."""

    offset: float
    end: float
    pitch: int
    accent: float
    level: float


def _tie_type(element, note) -> str | None:
    tie = getattr(note, "tie", None) or getattr(element, "tie", None)
    return tie.type if tie is not None else None


def _part_notes(part) -> list[_Held]:
    """Every sounding note of a part with ties merged: ``[_Held]`` sorted by offset.

    Tied continuations extend the note that started the tie (music21's stripTies
    does the same but re-sorts the whole stream per tie, seconds per piece).
    """
    events = sorted(_walk_part(part), key=lambda e: (e[1], e[0] != "dynamic"))
    levels = [
        (offset, float(el.volumeScalar))
        for kind, offset, _, el in events
        if kind == "dynamic" and el.volumeScalar is not None
    ]
    held: list[_Held] = []
    open_ties: dict[int, _Held] = {}
    for kind, offset, accent, element in events:
        if kind != "note":
            continue
        length = float(element.quarterLength)
        if length <= 0:  # grace notes: skip rather than guess their timing
            continue
        members = list(element.notes) if "Chord" in element.classes else [element]
        for member in members:
            midi = int(member.pitch.midi)
            tie = _tie_type(element, member)
            previous = open_ties.get(midi)
            if tie in ("continue", "stop") and previous is not None:
                previous.end = max(previous.end, offset + length)
                if tie == "stop":
                    del open_ties[midi]
                continue
            note = _Held(offset, offset + length, midi, accent, _level_at(levels, offset))
            held.append(note)
            if tie in ("start", "continue"):
                open_ties[midi] = note
    return held


def perform(
    score,
    piece: str,
    rng: np.random.Generator,
    default_tempo_bpm: float = 90.0,
    tempo_jitter: float = 0.08,
    max_seconds: float | None = None,
) -> Performance:
    """A music21 Score -> a seeded Performance (one tempo, humanised velocities and timing).

    May modify ``score`` in place (transposing parts are put at sounding pitch).
    """
    try:
        score.toSoundingPitch(inPlace=True)  # chorales include transposing instruments (horns)
    except Exception:
        pass
    tempo = _score_tempo(score) or float(default_tempo_bpm)
    tempo *= float(1.0 + rng.uniform(-tempo_jitter, tempo_jitter))
    seconds_per_quarter = 60.0 / tempo

    notes: list[NoteEvent] = []
    parts = list(score.parts) or [score]
    for part_index, part in enumerate(parts):
        for held in _part_notes(part):
            if not 21 <= held.pitch <= 108:  # outside the piano's keys
                continue
            onset = held.offset * seconds_per_quarter + float(rng.normal(0.0, 0.006))
            # Slightly detached, so that repeated notes are heard as new strikes.
            duration = (held.end - held.offset) * seconds_per_quarter * 0.93
            velocity = 30.0 + 80.0 * held.level + (8.0 if part_index == 0 else 0.0) + 8.0 * held.accent
            velocity += float(rng.normal(0.0, 4.0))
            notes.append(
                NoteEvent(
                    onset=max(onset, 0.0),
                    duration=max(duration, 0.03),
                    pitch=held.pitch,
                    velocity=int(np.clip(round(velocity), 20, 120)),
                )
            )
    if not notes:
        raise WavegenError(f"music21 corpus piece '{piece}' has no playable notes")
    first = min(n.onset for n in notes)
    notes = [NoteEvent(n.onset - first, n.duration, n.pitch, n.velocity) for n in notes]
    if max_seconds is not None:
        # Cut long pieces: drop later notes, and release held ones at the cut.
        notes = [
            NoteEvent(n.onset, min(n.duration, max_seconds - n.onset), n.pitch, n.velocity)
            for n in notes
            if n.onset < max_seconds - 0.05
        ]
    notes.sort(key=lambda n: (n.onset, n.pitch))
    meta = score.metadata
    title = (meta.title if meta is not None and meta.title else piece) or piece
    composer = (meta.composer if meta is not None and meta.composer else "") or ""
    return Performance(piece=piece, title=str(title), composer=str(composer), tempo_bpm=tempo, notes=notes)
