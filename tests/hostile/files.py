"""Damaged and unusual files, each written directly (numpy, soundfile, raw bytes)."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np

RATE = 16000


def _parent(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def sine(seconds: float = 0.2, rate: int = RATE, freq: float = 330.0) -> np.ndarray:
    """ndarray[T] float32, half scale."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def good_wav(path: Path, seconds: float = 0.2, rate: int = RATE) -> Path:
    import soundfile as sf

    sf.write(str(_parent(path)), sine(seconds, rate), rate, subtype="PCM_16")
    return path


def empty_file(path: Path) -> Path:
    _parent(path).write_bytes(b"")
    return path


def truncated_wav(path: Path) -> Path:
    """A WAV cut off mid-data: the header promises more samples than the file holds."""
    good_wav(path, seconds=0.5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def header_only_wav(path: Path) -> Path:
    """The 44-byte header of a WAV whose data never arrived."""
    good_wav(path, seconds=0.5)
    path.write_bytes(path.read_bytes()[:44])
    return path


def corrupt_wav(path: Path) -> Path:
    """A RIFF/WAVE signature followed by random bytes."""
    rng = np.random.default_rng(0)
    _parent(path).write_bytes(b"RIFF\x24\x10\x00\x00WAVE" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def random_bytes(path: Path, size: int = 4096) -> Path:
    """Noise with an audio file's name (e.g. a failed download saved as .flac)."""
    rng = np.random.default_rng(1)
    _parent(path).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def float_wav_with(path: Path, value: float) -> Path:
    """A 32-bit float WAV whose samples include ``value`` (NaN or +-inf)."""
    import soundfile as sf

    audio = sine(0.2)
    audio[100:110] = value
    sf.write(str(_parent(path)), audio, RATE, subtype="FLOAT")
    return path


def wav_with_rate(path: Path, rate: int) -> Path:
    """A valid 16-bit WAV whose header claims ``rate`` Hz (patched after writing)."""
    good_wav(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt ", "expected the canonical 44-byte header"
    block_align = struct.unpack_from("<H", data, 32)[0]
    struct.pack_into("<II", data, 24, rate, (rate * block_align) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def text_file(path: Path, text: str = "not audio\n") -> Path:
    _parent(path).write_text(text)
    return path


# ----------------------------------------------------------------------------- datasets


MAESTRO_HEADER = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename",
                  "duration"]


def maestro_folder(root: Path, rows: list[list[str]] | None = None, header: list[str] | None = None) -> Path:
    """A MAESTRO-layout folder: the CSV (rows as given, unvalidated) and a WAV per listed file."""
    root.mkdir(parents=True, exist_ok=True)
    header = header or MAESTRO_HEADER
    if rows is None:
        rows = [["A", "Piece", "train", "2004", "2004/a.midi", "2004/a.wav", "0.2"],
                ["B", "Piece", "validation", "2004", "2004/b.midi", "2004/b.wav", "0.2"]]
    with open(root / "maestro-v3.0.0.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    if "audio_filename" in header:
        col = header.index("audio_filename")
        for row in rows:
            if len(row) > col and row[col].endswith(".wav"):
                good_wav(root / row[col])
    return root


# ----------------------------------------------------------------------------- mels


def mel_npy(path: Path, shape: tuple[int, ...], fill: float = -3.0, nan: bool = False) -> Path:
    """A natural-log mel array of ``shape`` (right or wrong), optionally with a NaN."""
    mel = np.full(shape, fill, dtype=np.float32)
    if nan:
        mel.reshape(-1)[len(mel.reshape(-1)) // 2] = np.nan
    np.save(_parent(path), mel, allow_pickle=False)
    return path


# ----------------------------------------------------------------------------- code files


def truncated_copy(source: Path, target: Path, keep_fraction: float = 0.5, keep_bytes: int | None = None) -> Path:
    data = source.read_bytes()
    keep = keep_bytes if keep_bytes is not None else max(1, int(len(data) * keep_fraction))
    _parent(target).write_bytes(data[:keep])
    return target


def flipped_copy(source: Path, target: Path, offset_from_end: int = 1) -> Path:
    """A copy with one byte near the end changed (payload damage a checksum must catch)."""
    data = bytearray(source.read_bytes())
    data[-offset_from_end] ^= 0x5A
    _parent(target).write_bytes(bytes(data))
    return target


# Code file layout (see wavegen/codes/codefile.py's docstring), re-implemented here to forge files.
_CODE_FIXED = struct.Struct("<8sHHIIQQQQ16sH")


def forged_code_file(source: Path, target: Path, payload: bytes | None = None, **fields: int) -> Path:
    """A copy of a code file with header fields (``sample_rate``, ``hop``, ``num_samples``, ``frames``)
    and/or the payload replaced, and every checksum recomputed: damage only a validator can see."""
    import zlib

    data = source.read_bytes()
    names = ("magic", "version", "header_size", "sample_rate", "hop", "num_samples", "frames", "events",
             "payload_size", "fingerprint", "channels")
    header = dict(zip(names, _CODE_FIXED.unpack_from(data)))
    levels = data[_CODE_FIXED.size: _CODE_FIXED.size + header["channels"]]
    body = data[header["header_size"]:] if payload is None else payload
    header.update(fields, payload_size=len(body))
    fixed = _CODE_FIXED.pack(*(header[n] for n in names)) + levels + struct.pack("<I", zlib.crc32(body))
    _parent(target).write_bytes(fixed + struct.pack("<I", zlib.crc32(fixed)) + body)
    return target


def code_file_payload(path: Path) -> bytes:
    data = path.read_bytes()
    return data[_CODE_FIXED.unpack_from(data)[2]:]


def code_file_channels(path: Path) -> int:
    return _CODE_FIXED.unpack_from(path.read_bytes())[10]
