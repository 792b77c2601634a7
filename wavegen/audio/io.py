"""Audio files in and out, through soundfile (libsndfile) only.

Reading always gives ``Tensor[T]`` float32 mono in [-1, 1] at the rate the
caller asks for, or a :class:`~wavegen.errors.WavegenError` whose one-line
message names the file and the problem. Writing is atomic (through
:mod:`wavegen.atomic`): a finished file appears under its name in one step, or not at all.

The one deliberate exception to "never half-written output" is
:class:`StreamingWavWriter`: long generations write straight to the final path
so that an interrupted run (Ctrl-C, a killed job, a full GPU) still leaves a
valid WAV holding everything generated so far. Its header is rewritten after
every chunk, so the file on disk is a valid WAV at every moment.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from wavegen.atomic import atomic_write, new_file_mode  # noqa: F401  (new_file_mode: re-exported)
from wavegen.errors import WavegenError

if TYPE_CHECKING:
    from torch import Tensor

# torch is imported inside the functions that return tensors: a process that only
# streams or checks WAVs (a killed generator's survivor, `wavegen data check`
# workers) starts in a fraction of a second.

PathLike = Union[str, os.PathLike]

# Extensions we read. mp3 needs libsndfile >= 1.1 (the soundfile wheels bundle it).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")

# (format, subtype) soundfile writes for each extension we can write.
_WRITE_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
}

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: frames per channel, rate, channels, seconds."""

    frames: int
    sample_rate: int
    channels: int
    duration: float


# ----------------------------------------------------------------------------- checks


def _check_rate(sample_rate: int, path: PathLike | None = None) -> None:
    if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        where = f" in {path}" if path is not None else ""
        raise WavegenError(
            f"implausible sample rate {sample_rate} Hz{where} "
            f"(expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)"
        )


def _check_readable_path(path: Path) -> None:
    """Existence, type, size and extension: the cheap checks before libsndfile."""
    if not path.exists():
        raise WavegenError(f"audio file not found: {path}")
    if path.is_dir():
        raise WavegenError(f"expected an audio file but found a folder: {path}")
    ext = path.suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        raise WavegenError(
            f"unsupported audio format '{ext or path.name}' for {path} (supported: {', '.join(AUDIO_EXTENSIONS)})"
        )
    if path.stat().st_size == 0:
        raise WavegenError(f"audio file is empty (0 bytes): {path}")


def _wav_truncation(path: Path) -> str | None:
    """Why a RIFF/WAV file is truncated, or None.

    libsndfile quietly shortens a WAV whose ``data`` chunk claims more bytes than
    the file holds; a cut-off download would then train on half a piece without
    anyone noticing. We walk the chunks ourselves and compare.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not plain RIFF (RF64, W64...): leave it to libsndfile
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - (pos + 8)
                # 0 and 0xFFFFFFFF are how some streaming writers say "length unknown".
                if 0 < chunk_size < 0xFFFFFFFF and chunk_size > available:
                    return f"header declares {chunk_size} bytes of audio but only {available} are present"
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _sf_error(path: Path, exc: Exception) -> WavegenError:
    reason = " ".join(str(exc).split())
    # soundfile prefixes "Error opening '<path>': "; we name the file ourselves.
    if reason.startswith("Error opening"):
        reason = reason.split(": ", 1)[-1]
    return WavegenError(f"cannot decode audio file {path}: {reason}")


# ----------------------------------------------------------------------------- reading


def audio_info(path: PathLike) -> AudioInfo:
    """Header information of an audio file, with the same checks as :func:`read_audio`.

    Does not decode the samples, so NaN samples are only caught by reading.
    """
    import soundfile as sf

    path = Path(path)
    _check_readable_path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # LibsndfileError, RuntimeError from the C side
        raise _sf_error(path, exc) from None
    _check_rate(info.samplerate, path)
    if path.suffix.lower() == ".wav":
        why = _wav_truncation(path)
        if why:
            raise WavegenError(f"truncated WAV file {path}: {why}")
    if info.frames <= 0:
        raise WavegenError(f"audio file has no audio frames (empty, truncated or corrupt): {path}")
    return AudioInfo(
        frames=int(info.frames),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        duration=float(info.frames) / float(info.samplerate),
    )


def read_audio_frames(path: PathLike) -> tuple[np.ndarray, int]:
    """Decode a file at its own rate: (ndarray[T, C] float32, sample_rate).

    The building block of :func:`read_audio`; ``wavegen data check`` uses it to
    look at each channel before the downmix.
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _sf_error(path, exc) from None
    if data.shape[0] == 0:
        raise WavegenError(f"audio file has no audio frames (empty, truncated or corrupt): {path}")
    if data.shape[0] < info.frames and path.suffix.lower() != ".mp3":
        # mp3 headers only estimate the length; elsewhere fewer frames means a cut file.
        raise WavegenError(f"truncated audio file {path}: header declares {info.frames} frames, decoded {data.shape[0]}")
    if not np.isfinite(data).all():
        raise WavegenError(f"audio file contains NaN or infinite samples: {path}")
    return data, int(sr)


def read_audio(path: PathLike, sample_rate: int) -> Tensor:
    """Read any supported file -> Tensor[T] float32 mono in [-1, 1] at ``sample_rate``.

    Channels are averaged; the rate is converted with
    :func:`wavegen.audio.dsp.resample` (band-limited sinc).
    """
    import torch

    from wavegen.audio.dsp import resample

    _check_rate(sample_rate)
    data, sr = read_audio_frames(path)
    mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if sr != sample_rate:
        mono = resample(mono, sr, int(sample_rate))
    # Float files may exceed full scale and the sinc filter can ring past it.
    return mono.clamp_(-1.0, 1.0).contiguous()


# ----------------------------------------------------------------------------- writing


def _as_frames(audio: Tensor | np.ndarray) -> np.ndarray:
    """Tensor[T] or Tensor[C, T] -> ndarray[T, C] float32 clipped to [-1, 1]."""
    if hasattr(audio, "detach"):  # a torch.Tensor, on any device, in any float dtype
        audio = audio.detach().float().cpu().numpy()
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 2:
        arr = arr.T
    else:
        raise WavegenError(f"audio to write must be [T] or [C, T], got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise WavegenError("refusing to write audio that contains NaN or infinite samples")
    return np.clip(arr, -1.0, 1.0)


def write_audio(path: PathLike, audio: Tensor | np.ndarray, sample_rate: int, overwrite: bool = False) -> Path:
    """Write Tensor[T] or Tensor[C, T] in [-1, 1] atomically; returns the path.

    16-bit PCM WAV for ``.wav``, 16-bit FLAC for ``.flac``, Vorbis for ``.ogg``.
    The data goes to a hidden temporary file in the same folder, is fsynced, and
    is renamed over ``path`` in one step, so readers never see a partial file.
    """
    import soundfile as sf

    path = Path(path).expanduser()
    ext = path.suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise WavegenError(f"cannot write '{ext or path.name}' files: {path} (use one of {', '.join(_WRITE_FORMATS)})")
    _check_rate(sample_rate)
    if path.exists() and not overwrite:
        raise WavegenError(f"output file already exists: {path} (pass overwrite to replace it)")
    frames = _as_frames(audio)
    if frames.shape[0] == 0:
        raise WavegenError(f"refusing to write an empty audio file: {path}")
    fmt, subtype = _WRITE_FORMATS[ext]
    try:
        atomic_write(path, lambda handle: sf.write(handle, frames, int(sample_rate), format=fmt, subtype=subtype),
                     overwrite=overwrite)
    except FileExistsError:  # the name appeared after the check above
        raise WavegenError(f"output file already exists: {path} (pass overwrite to replace it)") from None
    return path


def float_to_pcm16(frames: np.ndarray) -> np.ndarray:
    """ndarray[...] float in [-1, 1] -> int16, scaling by 32767 and rounding (as libsndfile does)."""
    return np.rint(np.clip(frames, -1.0, 1.0) * 32767.0).astype("<i2")


class StreamingWavWriter:
    """Append audio chunks to a 16-bit PCM WAV that is valid at every moment.

    Use as a context manager::

        with StreamingWavWriter("out.wav", 16000) as w:
            for chunk in generator:       # Tensor[T] (mono) or Tensor[C, T]
                w.write(chunk)

    Each ``write`` appends the samples first and then rewrites the two size
    fields of the header, so at any instant the header declares no more data
    than the file holds: a process killed mid-write leaves a WAV that reads
    back exactly the chunks whose ``write`` returned. This is the one place
    where wavegen leaves a partial output on purpose (see the module docstring).
    """

    _HEADER_BYTES = 44
    _MAX_DATA_BYTES = 0xFFFFFFFF - 36  # the RIFF size field is 32-bit

    def __init__(
        self,
        path: PathLike,
        sample_rate: int,
        overwrite: bool = False,
        channels: int = 1,
        fsync_every_write: bool = False,
    ):
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() != ".wav":
            raise WavegenError(f"streaming output must be a .wav file: {self.path}")
        _check_rate(sample_rate)
        if channels < 1:
            raise WavegenError(f"a WAV needs at least one channel, got {channels}")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.fsync_every_write = fsync_every_write
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x" creates atomically and fails if the file exists: no check-then-open race.
            self._file = open(self.path, "wb" if overwrite else "xb")
        except FileExistsError:
            raise WavegenError(f"output file already exists: {self.path} (pass overwrite to replace it)") from None
        self._file.write(self._header(0))
        self._sync()

    # A canonical 44-byte PCM header; only the two size fields ever change.
    def _header(self, data_bytes: int) -> bytes:
        block_align = 2 * self.channels
        return struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF", 36 + data_bytes, b"WAVE",
            b"fmt ", 16, 1, self.channels, self.sample_rate, self.sample_rate * block_align, block_align, 16,
            b"data", data_bytes,
        )  # fmt: skip

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync_every_write:
            os.fsync(self._file.fileno())

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self.frames_written / self.sample_rate

    def write(self, chunk: Tensor | np.ndarray) -> None:
        """Append Tensor[T] (mono writer) or Tensor[C, T] in [-1, 1]; the file stays valid."""
        if self._file is None:
            raise WavegenError(f"streaming writer for {self.path} is already closed")
        frames = _as_frames(chunk)
        if frames.shape[1] != self.channels:
            raise WavegenError(
                f"chunk has {frames.shape[1]} channel(s) but {self.path} was opened with {self.channels}"
            )
        if frames.shape[0] == 0:
            return
        payload = float_to_pcm16(frames).tobytes()
        data_bytes = (self.frames_written + frames.shape[0]) * 2 * self.channels
        if data_bytes > self._MAX_DATA_BYTES:
            raise WavegenError(f"{self.path} would exceed the 4 GiB WAV size limit")
        # Data first, header second: the header never claims bytes that are not there.
        self._file.seek(0, os.SEEK_END)
        self._file.write(payload)
        self._file.flush()
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + data_bytes))
        self._file.seek(40)
        self._file.write(struct.pack("<I", data_bytes))
        self._sync()
        self.frames_written += frames.shape[0]

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> "StreamingWavWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
