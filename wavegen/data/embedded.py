"""The default dataset: real scores from music21's corpus, rendered to piano audio offline.

Building needs only pip-installable parts (music21 ships the scores; the
built-in renderer is numpy), is deterministic for a seed, and takes seconds.
The result is a folder::

    <root>/manifest.json         build parameters, their hash, and one entry per file
    <root>/audio/000_<piece>.wav 16-bit mono WAVs at the configured sample rate

A folder whose manifest carries the same parameter hash is reused; otherwise
it is rebuilt in a temporary sibling folder and swapped in by renames, under a
lock so concurrent processes (distributed ranks) build it only once.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from wavegen.audio.io import write_audio
from wavegen.data.files import expand_path, file_lock, file_sha256, params_hash, replace_dir, write_json_atomic
from wavegen.data.items import AudioItem, assign_file_ids
from wavegen.data.renderer import PianoParams, render_builtin, render_fluidsynth, resolve_renderer
from wavegen.data.scores import Performance, chorale_paths, parse_corpus_piece, perform
from wavegen.errors import WavegenError

# Bump when the rendering or selection code changes what a given config produces.
BUILD_VERSION = 1
MANIFEST = "manifest.json"

# Keyboard works that music21 ships; the config may name others from its corpus.
DEFAULT_PIECES = (
    "joplin/maple_leaf_rag",
    "mozart/k545/movement1_exposition",
    "schumann_clara/polonaise_op1n1",
    "schumann_clara/polonaise_op1n2",
    "chopin/mazurka06-2",
    "cpebach/h186",
    "schoenberg/opus19/movement2",
    "schoenberg/opus19/movement6",
)


@dataclass(frozen=True)
class EmbeddedSpec:
    """Everything that determines the embedded dataset's content (hashed into the manifest)."""

    root: str
    seed: int = 0
    sample_rate: int = 16000
    renderer: str = "builtin"
    minutes: float = 6.0
    max_piece_seconds: float = 60.0
    tempo_bpm: float = 90.0
    tempo_jitter: float = 0.08
    validation_fraction: float = 0.1
    pieces: tuple[str, ...] = DEFAULT_PIECES
    chorales: bool = True
    piano: PianoParams = field(default_factory=PianoParams)
    # Built-in renderer only: each piece played by another piano around ``piano`` (PianoParams.varied);
    # 0 renders every piece with ``piano`` itself.
    timbre_spread: float = 0.0
    # More sampled pianos: each piece also rendered by fluidsynth with each of these SoundFonts.
    extra_soundfonts: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, data_cfg: Mapping[str, Any], sample_rate: int) -> "EmbeddedSpec":
        known = set(cls.__dataclass_fields__) - {"sample_rate", "piano"}
        values = {k: data_cfg[k] for k in known if k in data_cfg and data_cfg[k] is not None}
        if "root" not in values:
            raise WavegenError("data.root is not set for the embedded dataset")
        for key in ("pieces", "extra_soundfonts"):
            if key in values:
                values[key] = tuple(str(p) for p in values[key])
        piano_cfg = dict(data_cfg.get("piano") or {})
        unknown = set(piano_cfg) - set(PianoParams.__dataclass_fields__)
        if unknown:
            raise WavegenError(
                f"unknown key(s) {sorted(unknown)} in data.piano (valid: {', '.join(PianoParams.__dataclass_fields__)})"
            )
        spec = cls(**values, sample_rate=int(sample_rate), piano=PianoParams(**piano_cfg))
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.minutes <= 0:
            raise WavegenError(f"data.minutes must be positive, got {self.minutes}")
        if self.max_piece_seconds <= 1:
            raise WavegenError(f"data.max_piece_seconds must be above 1 s, got {self.max_piece_seconds}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise WavegenError(f"data.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not self.pieces and not self.chorales:
            raise WavegenError("the embedded dataset needs data.pieces or data.chorales=true")
        resolve_renderer(self.renderer)  # one-line error for an unknown renderer
        if not 0.0 <= self.timbre_spread <= 1.0:
            raise WavegenError(f"data.timbre_spread must be in [0, 1], got {self.timbre_spread}")
        for font in self.extra_soundfonts:
            if not Path(font).expanduser().is_file():
                raise WavegenError(f"data.extra_soundfonts: no SoundFont at {font}")
        if self.extra_soundfonts and shutil.which("fluidsynth") is None:
            raise WavegenError("data.extra_soundfonts needs the fluidsynth program (apt-get install fluidsynth)")

    def content_params(self) -> dict:
        """The JSON-able parameters that decide the audio (the root folder does not)."""
        import music21

        params = asdict(self)
        params.pop("root")
        params["piano"] = self.piano.to_dict()  # leaves out its knobs at their neutral values
        params["pieces"] = list(self.pieces)
        params["renderer"] = resolve_renderer(self.renderer)
        if not self.timbre_spread:  # one piano: the hash of every set built before the knob existed
            params.pop("timbre_spread")
        params.pop("extra_soundfonts")
        if self.extra_soundfonts:  # by content, not by path: the same SoundFont anywhere is the same set
            params["extra_soundfonts"] = [file_sha256(Path(f).expanduser()) for f in self.extra_soundfonts]
        params["build_version"] = BUILD_VERSION
        params["music21_version"] = str(music21.__version__)  # its corpus and parser shape the notes
        return params


def _slug(piece: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in piece).strip("_")


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *keys]))


def _piece_key(piece: str) -> int:
    """A stable integer per corpus path (Python's hash() is salted per process)."""
    import zlib

    return zlib.crc32(piece.encode())


def candidate_order(spec: EmbeddedSpec) -> list[str]:
    """Corpus paths in the order they are tried: a seeded shuffle of the keyboard
    pieces interleaved with a seeded shuffle of the chorales."""
    rng = _rng(spec.seed, 1)
    keyboard = list(spec.pieces)
    rng.shuffle(keyboard)
    chorales = chorale_paths() if spec.chorales else []
    chorales = [c for c in chorales if c not in keyboard]
    rng.shuffle(chorales)
    order: list[str] = []
    for i in range(max(len(keyboard), len(chorales))):
        order.extend(pool[i] for pool in (keyboard, chorales) if i < len(pool))
    return order


def select_performances(spec: EmbeddedSpec, log: Callable[[str], None] = lambda s: None) -> list[Performance]:
    """Parse and perform candidates until their total duration reaches ``spec.minutes``
    (and there are at least two pieces, so that both splits get one)."""
    target = spec.minutes * 60.0
    chosen: list[Performance] = []
    total = 0.0
    for piece in candidate_order(spec):
        if total >= target and len(chosen) >= 2:
            break
        score = parse_corpus_piece(piece)
        performance = perform(
            score,
            piece,
            _rng(spec.seed, 2, _piece_key(piece)),
            default_tempo_bpm=spec.tempo_bpm,
            tempo_jitter=spec.tempo_jitter,
            max_seconds=spec.max_piece_seconds,
        )
        chosen.append(performance)
        total += performance.seconds
        log(f"  {piece}: {performance.seconds:.1f} s at {performance.tempo_bpm:.0f} bpm, {len(performance.notes)} notes")
    if len(chosen) < 2:
        raise WavegenError(
            f"the embedded dataset needs at least 2 pieces to split train/validation, got {len(chosen)} "
            f"(list more data.pieces or set data.chorales=true)"
        )
    return chosen


def validation_pieces(pieces: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded choice of about ``fraction`` of the pieces (at least one, never all)."""
    if fraction <= 0:
        return set()
    count = min(max(1, int(round(fraction * len(pieces)))), len(pieces) - 1)
    rng = _rng(seed, 3)
    return {pieces[i] for i in sorted(rng.choice(len(pieces), size=count, replace=False))}


def _renderings(spec: EmbeddedSpec, renderer: str) -> list[tuple[str, str | None]]:
    """(name, SoundFont or None) of each rendering of a piece: the resolved renderer(s), then the extra SoundFonts."""
    names = ["builtin", "fluidsynth"] if renderer == "both" else [renderer]
    return [(name, None) for name in names] + [
        (f"fluidsynth_{_slug(Path(font).stem)}", str(Path(font).expanduser())) for font in spec.extra_soundfonts]


def _render(spec: EmbeddedSpec, performance: Performance, renderer: str, soundfont: str | None = None) -> np.ndarray:
    if renderer.startswith("fluidsynth"):
        return render_fluidsynth(performance.notes, spec.sample_rate, peak=spec.piano.peak, soundfont=soundfont)
    piano = spec.piano
    if spec.timbre_spread:
        piano = piano.varied(spec.timbre_spread, _rng(spec.seed, 5, _piece_key(performance.piece)))
    return render_builtin(performance.notes, spec.sample_rate, seed=_piece_key(performance.piece) ^ spec.seed, params=piano)


def _build_into(folder: Path, spec: EmbeddedSpec, params: dict, log: Callable[[str], None]) -> dict:
    """Render every selected piece into ``folder`` and return the manifest dict (``params``: the spec's
    :meth:`~EmbeddedSpec.content_params`, computed once by the caller: they hash every extra SoundFont)."""
    started = time.perf_counter()
    renderer = params["renderer"]
    performances = select_performances(spec, log)
    held_out = validation_pieces([p.piece for p in performances], spec.validation_fraction, spec.seed)
    entries = []
    renderers = _renderings(spec, renderer)
    for index, performance in enumerate(performances):
        for name, soundfont in renderers:
            audio = _render(spec, performance, name, soundfont)
            suffix = f"_{name}" if len(renderers) > 1 else ""
            rel = f"audio/{index:03d}_{_slug(performance.piece)}{suffix}.wav"
            write_audio(folder / rel, audio, spec.sample_rate)
            entries.append(
                {
                    "file": rel,
                    "renderer": name,
                    "piece": performance.piece,
                    "title": performance.title,
                    "composer": performance.composer,
                    "split": "validation" if performance.piece in held_out else "train",
                    "duration": len(audio) / spec.sample_rate,
                    "tempo_bpm": round(performance.tempo_bpm, 3),
                    "notes": len(performance.notes),
                    "sha256": file_sha256(folder / rel),
                }
            )
    return {
        "kind": "embedded",
        "params": params,
        "params_hash": params_hash(params),
        "items": entries,
        "build_seconds": round(time.perf_counter() - started, 2),
    }


def _read_manifest(root: Path) -> dict | None:
    import json

    try:
        with open(root / MANIFEST) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _manifest_is_current(manifest: dict | None, root: Path, expected_hash: str) -> bool:
    if not manifest or manifest.get("params_hash") != expected_hash:
        return False
    return all((root / entry["file"]).is_file() for entry in manifest.get("items", []))


def _items_from_manifest(manifest: dict, root: Path) -> list[AudioItem]:
    items = [
        AudioItem(path=root / e["file"], piece=e["piece"], split=e["split"], duration=float(e["duration"]))
        for e in manifest["items"]
    ]
    return assign_file_ids(items)


def build_embedded(
    data_cfg: Mapping[str, Any],
    sample_rate: int,
    log: Callable[[str], None] = lambda s: None,
    force: bool = False,
) -> list[AudioItem]:
    """Build (or reuse) the embedded piano dataset and return its items.

    ``data_cfg`` is the ``data`` config group (kind: embedded); ``log`` receives
    progress lines when a build actually happens.
    """
    spec = EmbeddedSpec.from_config(data_cfg, sample_rate)
    root = expand_path(spec.root)
    params = spec.content_params()
    expected = params_hash(params)
    manifest = _read_manifest(root)
    if not force and _manifest_is_current(manifest, root, expected):
        return _items_from_manifest(manifest, root)
    with file_lock(root.parent / f".{root.name}.lock"):
        manifest = _read_manifest(root)  # someone may have built it while we waited
        if not force and _manifest_is_current(manifest, root, expected):
            return _items_from_manifest(manifest, root)
        log(f"building embedded piano dataset in {root} (seed {spec.seed}, renderer {resolve_renderer(spec.renderer)})")
        tmp = root.with_name(f".{root.name}.build-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            manifest = _build_into(tmp, spec, params, log)
            write_json_atomic(tmp / MANIFEST, manifest)
            replace_dir(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f"built {len(manifest['items'])} pieces in {manifest['build_seconds']:.1f} s")
    return _items_from_manifest(manifest, root)
