"""Code files: run-length events on disk, versioned, checksummed and strictly validated.

Layout (version 1, little-endian)::

    offset  size  field
    0       8     magic           b"\\x89WGCODE\\n" (the high byte and the newline catch text-mode mangling)
    8       2     version         u16, 1
    10      2     header_size     u16, bytes from offset 0 to the end of the header CRC
    12      4     sample_rate     u32, Hz
    16      4     hop             u32, samples per code frame
    20      8     num_samples     u64, length of the encoded audio (decode trims to it)
    28      8     frames          u64, code frames (= ceil(num_samples / hop))
    36      8     events          u64, run-length events in the payload
    44      8     payload_size    u64, bytes of payload after the header
    52      16    fingerprint     16 bytes identifying the model that wrote the codes
    68      2     channels        u16, C
    70      C     levels          u8 per channel, 2..255
    70+C    4     payload_crc32   CRC-32 of the payload
    74+C    4     header_crc32    CRC-32 of every header byte before this field
    78+C    ...   payload         per event: C bytes of level indices, then the run length as an
                                  unsigned LEB128 varint (7 bits per byte, high bit = more follows)

Every reader check raises a one-line :class:`~wavegen.errors.WavegenError` naming
the file: wrong magic, unknown version, truncation, checksum failures, header
fields that disagree with each other, indices outside their channel's levels,
malformed run lengths, and (given the decoding model's fingerprint) a code file
written by another model. Writing is atomic and refuses to replace a file unless
asked to.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from wavegen.atomic import atomic_write
from wavegen.codes.events import Events, codes_to_events, events_to_codes
from wavegen.errors import WavegenError

MAGIC = b"\x89WGCODE\n"
VERSION = 1
FINGERPRINT_BYTES = 16
SUFFIX = ".codes"

# magic, version, header_size, sample_rate, hop, num_samples, frames, events, payload_size, fingerprint, channels
_FIXED = struct.Struct("<8sHHIIQQQQ16sH")
_CRCS = struct.Struct("<II")


@dataclass
class CodeFile:
    """What a code file holds: the events plus everything needed to decode them."""

    sample_rate: int
    hop: int
    levels: list[int]
    num_samples: int  # audio samples the codes stand for; frames = ceil(num_samples / hop)
    fingerprint: bytes
    events: Events

    @classmethod
    def from_codes(
        cls, indices: Tensor, levels: Sequence[int], hop: int, sample_rate: int, num_samples: int, fingerprint: bytes
    ) -> "CodeFile":
        """Build from code indices LongTensor[C, F] (run-length encoded here)."""
        return cls(int(sample_rate), int(hop), [int(v) for v in levels], int(num_samples), bytes(fingerprint),
                   codes_to_events(indices.detach().cpu()))

    @property
    def channels(self) -> int:
        return len(self.levels)

    @property
    def frames(self) -> int:
        return self.events.frames

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate

    def codes(self) -> Tensor:
        """The code frames, LongTensor[C, F]."""
        return events_to_codes(self.events)


# ----------------------------------------------------------------------------- varints


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# ----------------------------------------------------------------------------- writing


def _check_consistent(code: CodeFile) -> None:
    """The writer's checks: refuse to produce a file the reader would reject."""
    if not 1 <= code.channels <= 0xFFFF or any(not 2 <= level <= 255 for level in code.levels):
        raise WavegenError(f"cannot write codes with levels {code.levels}: each channel needs 2..255 levels")
    if code.events.channels != code.channels:
        raise WavegenError(f"codes have {code.events.channels} channels but {code.channels} levels were given")
    if len(code.fingerprint) != FINGERPRINT_BYTES:
        raise WavegenError(f"a model fingerprint has {FINGERPRINT_BYTES} bytes, got {len(code.fingerprint)}")
    if code.sample_rate < 1 or code.hop < 1:
        raise WavegenError(f"invalid sample rate {code.sample_rate} or hop {code.hop}")
    if len(code.events):
        if int(code.events.lengths.min()) < 1:
            raise WavegenError("cannot write an event shorter than one frame")
        top = torch.tensor(code.levels).reshape(1, -1)
        if bool((code.events.values < 0).any()) or bool((code.events.values >= top).any()):
            raise WavegenError(f"cannot write code indices outside the levels {code.levels}")
    frames = code.frames
    if not (frames - 1) * code.hop < code.num_samples <= frames * code.hop:
        raise WavegenError(f"{frames} frames of hop {code.hop} cannot stand for {code.num_samples} samples")


def pack_code_file(
    code: CodeFile, *, version: int = VERSION, magic: bytes = MAGIC, validate: bool = True
) -> bytes:
    """Serialise ``code`` to bytes. ``validate=False`` (and another version or magic) exist for tests."""
    if validate:
        _check_consistent(code)
    values = code.events.values.to(torch.uint8 if validate else torch.int64).tolist()
    payload = bytearray()
    for row, run in zip(values, code.events.lengths.tolist()):
        payload += bytes(v & 0xFF for v in row)
        payload += _varint(int(run))
    payload = bytes(payload)
    header_size = _FIXED.size + code.channels + _CRCS.size
    fixed = _FIXED.pack(
        magic, version, header_size, code.sample_rate, code.hop, code.num_samples, code.frames, len(code.events),
        len(payload), code.fingerprint, code.channels,
    )  # fmt: skip
    head = fixed + bytes(level & 0xFF for level in code.levels) + struct.pack("<I", zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def write_code_file(path: os.PathLike | str, code: CodeFile, overwrite: bool = False) -> Path:
    """Write ``code`` atomically to ``path``; refuses an existing file unless ``overwrite``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise WavegenError(f"output path is a folder: {path}")
    if path.exists() and not overwrite:
        raise WavegenError(f"output file already exists: {path} (pass --overwrite to replace it)")
    data = pack_code_file(code)
    try:
        atomic_write(path, data, overwrite=overwrite)
    except FileExistsError:  # the name appeared after the check above
        raise WavegenError(f"output file already exists: {path} (pass --overwrite to replace it)") from None
    return path


# ----------------------------------------------------------------------------- reading


def unpack_code_file(data: bytes, source: str = "<bytes>", fingerprint: Optional[bytes] = None) -> CodeFile:
    """Parse and validate a code file's bytes; ``source`` names it in error messages.

    ``fingerprint``: the decoding model's; a different one in the file is an error.
    """

    def fail(why: str) -> WavegenError:
        return WavegenError(f"invalid code file {source}: {why}")

    if data[: len(MAGIC)] != MAGIC[: len(data)] or len(data) == 0:
        raise fail("not a wavegen code file (wrong magic bytes)")
    if len(data) < _FIXED.size:
        raise fail(f"truncated: {len(data)} bytes is shorter than the header")
    (magic, version, header_size, sample_rate, hop, num_samples, frames, n_events, payload_size, file_fingerprint,
     channels) = _FIXED.unpack_from(data)  # fmt: skip
    if version != VERSION:
        raise fail(f"format version {version} is not supported (this wavegen reads version {VERSION})")
    if header_size != _FIXED.size + channels + _CRCS.size:
        raise fail(f"header size {header_size} does not match {channels} channels (corrupt header)")
    if len(data) < header_size:
        raise fail(f"truncated: {len(data)} bytes is shorter than the {header_size}-byte header")
    levels = list(data[_FIXED.size : _FIXED.size + channels])
    payload_crc, header_crc = _CRCS.unpack_from(data, _FIXED.size + channels)
    if zlib.crc32(data[: header_size - 4]) != header_crc:
        raise fail("header checksum mismatch (corrupt header)")
    if channels < 1 or any(level < 2 for level in levels):
        raise fail(f"levels {levels} are invalid: every channel needs at least 2 levels")
    if sample_rate < 1 or hop < 1:
        raise fail(f"sample rate {sample_rate} and hop {hop} must be positive")
    if not (frames - 1) * hop < num_samples <= frames * hop:
        raise fail(f"{frames} frames of hop {hop} cannot stand for {num_samples} samples")
    payload = data[header_size:]
    if len(payload) < payload_size:
        raise fail(f"truncated: payload has {len(payload)} of {payload_size} bytes")
    if len(payload) > payload_size:
        raise fail(f"{len(payload) - payload_size} unexpected bytes after the payload")
    if zlib.crc32(payload) != payload_crc:
        raise fail("payload checksum mismatch (corrupt data)")
    if fingerprint is not None and bytes(fingerprint) != file_fingerprint:
        raise WavegenError(
            f"code file {source} was written by another model (fingerprint {file_fingerprint.hex()}, "
            f"this checkpoint's is {bytes(fingerprint).hex()}); decode it with the checkpoint that encoded it"
        )
    values, runs = _parse_events(payload, channels, levels, n_events, fail)
    if sum(runs) != frames:
        raise fail(f"run lengths add up to {sum(runs)} frames but the header says {frames}")
    events = Events(
        values=torch.tensor(values, dtype=torch.long).reshape(n_events, channels),
        lengths=torch.tensor(runs, dtype=torch.long),
    )
    return CodeFile(sample_rate, hop, levels, num_samples, file_fingerprint, events)


def _parse_events(payload: bytes, channels: int, levels: list[int], n_events: int, fail):
    values: list[int] = []
    runs: list[int] = []
    pos, size = 0, len(payload)
    for event in range(n_events):
        if pos + channels > size:
            raise fail(f"payload ends inside event {event} of {n_events}")
        row = payload[pos : pos + channels]
        for channel, (value, level) in enumerate(zip(row, levels)):
            if value >= level:
                raise fail(f"event {event} has index {value} in channel {channel}, which has only {level} levels")
        values.extend(row)
        pos += channels
        run, shift = 0, 0
        while True:
            if pos >= size:
                raise fail(f"payload ends inside the run length of event {event}")
            byte = payload[pos]
            pos += 1
            run |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 63:
                raise fail(f"run length of event {event} is not a valid varint")
        if run < 1:
            raise fail(f"event {event} has run length {run}; runs last at least one frame")
        runs.append(run)
    if pos != size:
        raise fail(f"{size - pos} payload bytes after the last of {n_events} events")
    return values, runs


def read_code_file(path: os.PathLike | str, fingerprint: Optional[bytes] = None) -> CodeFile:
    """Read and validate a code file (see :func:`unpack_code_file`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WavegenError(f"code file not found: {path}")
    if path.is_dir():
        raise WavegenError(f"expected a code file but found a folder: {path}")
    return unpack_code_file(path.read_bytes(), str(path), fingerprint)
