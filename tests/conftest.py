"""Shared test fixtures: small audio files and dataset layouts built on the fly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest


def benchmark(name: str):
    """Import ``benchmarks/NAME.py`` (a script folder, not a package) as a module."""
    import importlib
    import sys

    folder = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


def sine(seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """ndarray[T, C] float32: a sine, each channel slightly detuned so downmixing is visible."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    cols = [amplitude * np.sin(2 * np.pi * freq * (1 + 0.01 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write_sine(path: Path, seconds: float = 0.5, sample_rate: int = 16000, freq: float = 440.0,
               channels: int = 1, subtype: str | None = None) -> Path:
    """Write a sine file with soundfile directly (independent of the code under test)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), sine(seconds, sample_rate, freq, channels), sample_rate, subtype=subtype)
    return path


def random_wavenet(**config):
    """A WaveNet (``WaveNetConfig(**config)``, eval mode) with every weight drawn N(0, 0.3²) from torch's
    global generator: zero-initialised layers (the onsets projection, the last layer) then matter, so
    a test can see what they carry. Seed torch first for the same weights every run."""
    import torch

    from wavegen.models.wavenet import WaveNet, WaveNetConfig

    model = WaveNet(WaveNetConfig(**config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape) * 0.3)
    return model


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    tiny models on shared cores only wait on each other with more, and batch-1 sampling, which the
    CLI runs on one thread, must do the same arithmetic in tests as there."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """WAVEGEN_DATA for the module (one folder per session: the embedded debug set renders once),
    with WAVEGEN_DEBUG unset so commands print their one-line errors."""
    folder = tmp_path_factory.getbasetemp() / "wavegen-data"
    folder.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAVEGEN_DATA", str(folder))
        mp.delenv("WAVEGEN_DEBUG", raising=False)
        yield folder


@pytest.fixture
def tmp_audio_dir(tmp_path):
    """Factory: ``tmp_audio_dir({"a.wav": dict(seconds=1.0), "sub/b.flac": {}})`` -> a folder of sine files."""

    def make(files: dict[str, dict], name: str = "audio") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, options in files.items():
            write_sine(root / rel, **options)
        return root

    return make


MAESTRO_HEADER = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration"]


@pytest.fixture
def tiny_maestro(tmp_path):
    """Factory for a MAESTRO-v3-layout folder: a CSV plus short stereo 44.1/48 kHz WAVs.

    ``tiny_maestro(rows=None, header=None, write_audio=True)``; by default five
    recordings in train/validation/test. Returns the root folder.
    """

    def make(rows: list[dict] | None = None, header: list[str] | None = None, write_audio: bool = True,
             name: str = "maestro") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        if rows is None:
            rows = []
            for i, split in enumerate(["train", "train", "train", "validation", "test"]):
                year = 2004 + i % 2
                rows.append({
                    "canonical_composer": f"Composer {i}",
                    "canonical_title": f"Piece {i}",
                    "split": split,
                    "year": str(year),
                    "midi_filename": f"{year}/rec{i}.midi",
                    "audio_filename": f"{year}/rec{i}.wav",
                    "duration": "0.5",
                })
        header = header or MAESTRO_HEADER
        with open(root / "maestro-v3.0.0.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows:
                writer.writerow([row.get(col, "") for col in header])
        if write_audio:
            for i, row in enumerate(rows):
                if row.get("audio_filename"):
                    rate = 44100 if i % 2 == 0 else 48000
                    try:
                        seconds = float(row.get("duration") or 0.5)
                    except ValueError:  # rows with a deliberately broken duration still get audio
                        seconds = 0.5
                    write_sine(root / row["audio_filename"], seconds=seconds,
                               sample_rate=rate, freq=220.0 * (i + 1), channels=2)
        return root

    return make
