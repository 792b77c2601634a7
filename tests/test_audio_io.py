"""wavegen.audio.io and wavegen.audio.plots: real files, real failures."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import sine, write_sine
from wavegen.audio.dsp import AudioConfig
from wavegen.audio.io import (
    AUDIO_EXTENSIONS,
    StreamingWavWriter,
    audio_info,
    read_audio,
    write_audio,
)
from wavegen.errors import WavegenError

SR = 16000


def peak_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * sample_rate / len(audio))


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext, tolerance", [(".wav", 1e-4), (".flac", 1e-4), (".ogg", 0.05)])
def test_write_read_round_trip(tmp_path, ext, tolerance):
    if ext == ".ogg" and "OGG" not in sf.available_formats():
        pytest.skip("libsndfile without Ogg/Vorbis")
    audio = torch.from_numpy(sine(0.5, SR)[:, 0])
    path = write_audio(tmp_path / f"x{ext}", audio, SR)
    back = read_audio(path, SR)
    assert back.dtype == torch.float32 and back.dim() == 1
    if ext == ".ogg":  # lossy: compare what matters, not samples
        assert abs(len(back) - len(audio)) < 2048
        assert peak_hz(back.numpy(), SR) == pytest.approx(440, abs=3)
    else:
        assert len(back) == len(audio)
        assert torch.max(torch.abs(back - audio)).item() < tolerance
    info = audio_info(path)
    assert info.sample_rate == SR and info.channels == 1
    assert info.duration == pytest.approx(0.5, abs=0.15)


def test_mp3_is_read(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without mp3")
    sf.write(str(tmp_path / "a.mp3"), sine(1.0, 22050, channels=2), 22050, format="MP3", subtype="MPEG_LAYER_III")
    audio = read_audio(tmp_path / "a.mp3", SR)
    assert abs(len(audio) - SR) < 2000
    assert 435 <= peak_hz(audio.numpy(), SR) <= 450


def test_wav_is_16_bit_pcm_and_flac_by_extension(tmp_path):
    write_audio(tmp_path / "a.wav", torch.zeros(100), SR)
    write_audio(tmp_path / "a.flac", torch.zeros(100), SR)
    assert sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"
    assert sf.info(str(tmp_path / "a.flac")).format == "FLAC"


def test_stereo_is_downmixed(tmp_path):
    left = np.full(1000, 0.5, dtype=np.float32)
    right = np.full(1000, -0.25, dtype=np.float32)
    sf.write(str(tmp_path / "s.wav"), np.stack([left, right], axis=1), SR, subtype="FLOAT")
    mono = read_audio(tmp_path / "s.wav", SR)
    assert mono.shape == (1000,)
    assert torch.allclose(mono, torch.full((1000,), 0.125))


@pytest.mark.parametrize("source_rate", [44100, 48000, 8000])
def test_resampling_keeps_length_and_pitch(tmp_path, source_rate):
    path = write_sine(tmp_path / "s.wav", seconds=1.0, sample_rate=source_rate, freq=1000.0, channels=2)
    audio = read_audio(path, SR)
    assert abs(len(audio) - SR) <= 1
    # Channel 1 is detuned by 1 %, so the mono peak sits between 1000 and 1010 Hz.
    assert 995 <= peak_hz(audio.numpy(), SR) <= 1015
    assert audio.abs().max() <= 1.0


def test_float_file_over_full_scale_is_clipped(tmp_path):
    sf.write(str(tmp_path / "loud.wav"), np.full((100, 1), 1.7, dtype=np.float32), SR, subtype="FLOAT")
    assert read_audio(tmp_path / "loud.wav", SR).max().item() == 1.0


# ----------------------------------------------------------------------------- bad inputs


def expect_error(fn, *words):
    with pytest.raises(WavegenError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def test_missing_file(tmp_path):
    expect_error(lambda: read_audio(tmp_path / "nope.wav", SR), "not found", "nope.wav")
    expect_error(lambda: audio_info(tmp_path / "nope.wav"), "not found")


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    expect_error(lambda: read_audio(tmp_path / "dir.wav", SR), "folder")


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    expect_error(lambda: read_audio(tmp_path / "e.wav", SR), "empty", "e.wav")


def test_zero_frames(tmp_path):
    sf.write(str(tmp_path / "z.wav"), np.zeros((0, 1), dtype=np.float32), SR)
    expect_error(lambda: read_audio(tmp_path / "z.wav", SR), "no audio frames", "z.wav")


def test_corrupt_bytes(tmp_path):
    (tmp_path / "c.wav").write_bytes(b"this is not audio at all " * 40)
    expect_error(lambda: read_audio(tmp_path / "c.wav", SR), "cannot decode", "c.wav")
    (tmp_path / "c.flac").write_bytes(os.urandom(2000))
    expect_error(lambda: read_audio(tmp_path / "c.flac", SR), "cannot decode", "c.flac")


def test_truncated_wav(tmp_path):
    path = write_sine(tmp_path / "t.wav", seconds=1.0, sample_rate=SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_error(lambda: read_audio(path, SR), "truncated", "t.wav")
    expect_error(lambda: audio_info(path), "truncated")


def test_truncated_flac(tmp_path):
    path = write_sine(tmp_path / "t.flac", seconds=1.0, sample_rate=SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_error(lambda: read_audio(path, SR), "t.flac")


def test_nan_samples(tmp_path):
    data = np.zeros((100, 1), dtype=np.float32)
    data[50] = np.nan
    sf.write(str(tmp_path / "n.wav"), data, SR, subtype="FLOAT")
    expect_error(lambda: read_audio(tmp_path / "n.wav", SR), "nan", "n.wav")
    data[50] = np.inf
    sf.write(str(tmp_path / "i.wav"), data, SR, subtype="FLOAT")
    expect_error(lambda: read_audio(tmp_path / "i.wav", SR), "infinite")


def test_unsupported_extension(tmp_path):
    write_sine(tmp_path / "a.wav")
    os.rename(tmp_path / "a.wav", tmp_path / "a.xyz")
    expect_error(lambda: read_audio(tmp_path / "a.xyz", SR), "unsupported", ".xyz")
    expect_error(lambda: write_audio(tmp_path / "b.aac", torch.zeros(10), SR), "cannot write", ".aac")
    assert set(AUDIO_EXTENSIONS) >= {".wav", ".flac", ".ogg", ".mp3"}


def test_absurd_sample_rate(tmp_path):
    # Patch the rate field of a valid WAV header to 50 Hz.
    path = write_sine(tmp_path / "r.wav", sample_rate=SR)
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", 50)
    path.write_bytes(bytes(data))
    expect_error(lambda: read_audio(path, SR), "sample rate", "50")
    expect_error(lambda: read_audio(write_sine(tmp_path / "ok.wav"), 10), "sample rate")
    expect_error(lambda: write_audio(tmp_path / "w.wav", torch.zeros(10), 500000), "sample rate")


def test_write_refuses_nan(tmp_path):
    expect_error(lambda: write_audio(tmp_path / "n.wav", torch.tensor([0.0, float("nan")]), SR), "nan")
    assert not (tmp_path / "n.wav").exists()


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_refuses_overwrite_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out" / "a.wav"
    write_audio(target, torch.zeros(100), SR)
    expect_error(lambda: write_audio(target, torch.ones(100) * 0.5, SR), "already exists")
    assert read_audio(target, SR).abs().max().item() == 0.0  # untouched
    write_audio(target, torch.ones(100) * 0.5, SR, overwrite=True)
    assert read_audio(target, SR).mean().item() == pytest.approx(0.5, abs=1e-3)
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.wav"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import soundfile

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile, "write", broken)
    with pytest.raises(OSError):
        write_audio(tmp_path / "a.wav", torch.zeros(100), SR)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- streaming


def test_streaming_writer_is_valid_after_every_chunk(tmp_path):
    path = tmp_path / "stream.wav"
    chunks = [torch.from_numpy(sine(0.1, SR, freq=f)[:, 0]) for f in (220, 330, 440)]
    with StreamingWavWriter(path, SR) as writer:
        for i, chunk in enumerate(chunks):
            writer.write(chunk)
            # Read back BEFORE close: a valid WAV holding exactly what was written.
            data, rate = sf.read(str(path), dtype="int16")
            expected = np.rint(torch.cat(chunks[: i + 1]).numpy() * 32767).astype(np.int16)
            assert rate == SR and np.array_equal(data, expected)
    assert writer.frames_written == sum(len(c) for c in chunks)
    assert audio_info(path).frames == writer.frames_written


def test_streaming_writer_multichannel_and_errors(tmp_path):
    path = tmp_path / "st.wav"
    with StreamingWavWriter(path, SR, channels=2) as writer:
        writer.write(torch.zeros(2, 100))
        expect_error(lambda: writer.write(torch.zeros(100)), "channel")
    assert sf.info(str(path)).channels == 2
    expect_error(lambda: StreamingWavWriter(path, SR), "already exists")
    with StreamingWavWriter(path, SR, overwrite=True) as writer:
        writer.write(torch.zeros(10))
    assert sf.info(str(path)).frames == 10
    expect_error(lambda: StreamingWavWriter(tmp_path / "x.flac", SR), ".wav")


def test_streaming_writer_survives_kill(tmp_path):
    """A generator process killed mid-stream leaves a valid WAV of every completed chunk."""
    path = tmp_path / "killed.wav"
    progress = tmp_path / "progress"
    script = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from wavegen.audio.io import StreamingWavWriter
        w = StreamingWavWriter({str(path)!r}, {SR})
        for i in range(1000):
            chunk = np.full(1600, ((i % 50) - 25) / 32767 * 100, dtype=np.float32)
            w.write(chunk)
            with open({str(progress)!r}, "w") as f:
                f.write(str(i + 1))
            time.sleep(0.01)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            # One read: the child rewrites the file ("w" truncates first), so a second read may see it empty.
            done = progress.read_text().strip() if progress.exists() else ""
            if done.isdigit() and int(done) >= 5:
                break
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no close(), no finally blocks
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = int(progress.read_text())
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == SR
    # The kill can land after a chunk was written but before progress was updated.
    assert len(data) % 1600 == 0 and len(data) // 1600 in (done, done + 1)
    chunks = data.reshape(-1, 1600)
    for i, chunk in enumerate(chunks):
        assert np.all(chunk == np.int16(round(((i % 50) - 25) * 100 / 32767 * 32767)))


# ----------------------------------------------------------------------------- plots


def test_spectrogram_png_and_image(tmp_path):
    from wavegen.audio.plots import save_spectrogram_comparison_png, save_spectrogram_png, spectrogram_image

    cfg = AudioConfig()
    audio = torch.from_numpy(sine(1.0, SR)[:, 0])
    png = save_spectrogram_png(tmp_path / "plots" / "one.png", audio, cfg, title="a sine")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both = save_spectrogram_comparison_png(tmp_path / "two.png", audio, audio * 0.5, cfg)
    assert both.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["one.png", "plots", "two.png"]

    image = spectrogram_image(audio, cfg)
    assert image.dtype == np.uint8 and image.shape == (cfg.n_mels, SR // cfg.hop_length + 1, 3)
    # 440 Hz is low in the mel range: the brightest row sits in the bottom quarter (row 0 = top).
    brightest_row = int(np.argmax(image.astype(float).sum(axis=(1, 2))))
    assert brightest_row > cfg.n_mels * 3 // 4


def test_the_mel_filterbank_is_built_once_per_config():
    from wavegen.audio.dsp import _mel_transform, mel_spectrogram

    cfg = AudioConfig()
    mel_spectrogram(torch.zeros(1, 4096), cfg)
    before = _mel_transform.cache_info()
    mel_spectrogram(torch.zeros(1, 4096), cfg)
    after = _mel_transform.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
