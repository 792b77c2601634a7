"""Music a model never trained on: corpus pieces the embedded set does not select, on any installed piano.

Held-out checks that go beyond the validation split (held out by piece, but rendered
by the same two pianos as the training data): the first pieces in the embedded set's
candidate order that it does not select (so neither split holds them), performed with
the set's own tempo and humanisation rules, and rendered by the built-in synthesiser or
by fluidsynth with any General MIDI SoundFont. The training data holds only the built-in
piano and FluidR3, so every other SoundFont's piano is unseen (Debian:
``timgm6mb-soundfont``, ``musescore-general-soundfont-small``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from wavegen.data.embedded import EmbeddedSpec, _piece_key, _rng, candidate_order, select_performances


def unseen_pieces(count: int, seed: int = 0) -> list[str]:
    """The first ``count`` corpus pieces the embedded set (default spec, this seed) does not select."""
    spec = EmbeddedSpec(root="unused", seed=seed)
    chosen = {p.piece for p in select_performances(spec)}
    return [piece for piece in candidate_order(spec) if piece not in chosen][:count]


def installed_soundfonts(folder: str | os.PathLike = "/usr/share/sounds") -> list[Path]:
    """Every .sf2 / .sf3 file under ``folder`` (resolved, sorted, no duplicates)."""
    found = sorted({p.resolve() for p in Path(folder).rglob("*") if p.suffix.lower() in (".sf2", ".sf3")})
    return [p for p in found if p.is_file()]


def unseen_soundfonts(folder: str | os.PathLike = "/usr/share/sounds") -> list[Path]:
    """The installed SoundFonts whose piano the training data never used (every one but FluidR3)."""
    return [font for font in installed_soundfonts(folder) if "fluidr3" not in font.name.lower()]


def unseen_sets(count: int, sample_rate: int, seconds: float, offset: float = 5.0) -> dict[str, list[np.ndarray]]:
    """SoundFont name -> the first ``count`` :func:`unseen_pieces` on that unseen piano, ``seconds`` each from
    ``offset`` (ndarray[round(seconds·rate)] float32): the held-out check beyond the validation split."""
    from wavegen.errors import WavegenError

    fonts = unseen_soundfonts()
    if not fonts:
        raise WavegenError("no SoundFont other than FluidR3 is installed under /usr/share/sounds (Debian: "
                           "timgm6mb-soundfont, musescore-general-soundfont-small)")
    pieces = unseen_pieces(count)
    return {font.stem: [render_unseen(piece, sample_rate, seconds, offset, font) for piece in pieces]
            for font in fonts}


def render_unseen(piece: str, sample_rate: int, seconds: float, offset: float = 0.0,
                  soundfont: Optional[Path] = None, seed: int = 0) -> np.ndarray:
    """ndarray[round(seconds·rate)] float32: ``seconds`` of ``piece`` from ``offset`` (zero-padded if shorter),
    by the built-in piano (``soundfont=None``) or by fluidsynth with that SoundFont."""
    from wavegen.data.renderer import render_builtin, render_fluidsynth
    from wavegen.data.scores import parse_corpus_piece, perform

    spec = EmbeddedSpec(root="unused", seed=seed)
    performance = perform(parse_corpus_piece(piece), piece, _rng(spec.seed, 2, _piece_key(piece)),
                          default_tempo_bpm=spec.tempo_bpm, tempo_jitter=spec.tempo_jitter,
                          max_seconds=offset + seconds + 2)
    if soundfont is None:
        audio = render_builtin(performance.notes, sample_rate, seed=_piece_key(piece))
    else:
        audio = render_fluidsynth(performance.notes, sample_rate, soundfont=soundfont)
    start, length = int(offset * sample_rate), int(round(seconds * sample_rate))
    clip = np.zeros(length, dtype=np.float32)
    part = audio[start : start + length]
    clip[: part.shape[0]] = part
    return clip
