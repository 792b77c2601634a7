"""`wavegen vocode`, `wavegen vocoder search-schedule|distill` and `wavegen eval vocoder` through the CLI."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from wavegen.audio.dsp import AudioConfig, mel_spectrogram
from wavegen.cli import main
from wavegen.models.vocoder import VocoderConfig, WaveGradVocoder
from wavegen.checkpoint import FORMAT, VERSION, atomic_torch_save

AUDIO = AudioConfig()
TINY = dict(upsample_channels=[16, 16, 8, 8, 8], downsample_channels=[4, 8, 8, 8, 16], mel_channels=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_checkpoint(path, family="vocoder", extra=None):
    torch.manual_seed(0)
    cfg = VocoderConfig(**TINY)
    weights = WaveGradVocoder(cfg).state_dict()
    atomic_torch_save({
        "format": FORMAT, "version": VERSION, "family": family,
        "model_config": {"family": family, **cfg.to_dict()}, "audio": AUDIO.to_dict(),
        "model": weights, "ema": weights, "step": 0, "extra": extra or {}, "config": {},
    }, path)
    return path


def piano_like(seconds: float) -> torch.Tensor:
    t = torch.arange(int(seconds * AUDIO.sample_rate)) / AUDIO.sample_rate
    return sum(0.2 / (k + 1) * torch.sin(2 * math.pi * 262 * (k + 1) * t) for k in range(3)) * torch.exp(-2 * t)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from wavegen.audio.io import write_audio

    root = tmp_path_factory.mktemp("vocode")
    ckpt = write_checkpoint(root / "vocoder.pt")
    audio = piano_like(0.3)
    wav = write_audio(root / "clip.wav", audio, AUDIO.sample_rate)
    heldout = root / "heldout"
    write_audio(heldout / "a.wav", piano_like(0.4), AUDIO.sample_rate)
    mel = mel_spectrogram(audio, AUDIO).numpy()
    np.save(root / "mel.npy", mel)
    return {"root": root, "ckpt": ckpt, "wav": wav, "mel": mel, "npy": root / "mel.npy", "heldout": heldout}


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------- vocode: success


def test_vocode_a_mel_writes_wav_and_png(files, capsys, tmp_path):
    import soundfile as sf

    out = tmp_path / "out.wav"
    code, stdout, _ = run_cli(["vocode", files["ckpt"], files["npy"], "-o", out, "--steps", "2"], capsys)
    assert code == 0 and "2 steps" in stdout
    data, sr = sf.read(out)
    assert sr == AUDIO.sample_rate and len(data) == (files["mel"].shape[1] - 1) * AUDIO.hop_length
    assert out.with_suffix(".png").stat().st_size > 0


def test_vocode_audio_keeps_its_length_and_refuses_to_overwrite(files, capsys, tmp_path):
    import soundfile as sf

    out = tmp_path / "resynth.wav"
    code, _, _ = run_cli(["vocode", files["ckpt"], files["wav"], "-o", out, "--steps", "1", "--chunk-frames", "8",
                          "--overlap-frames", "4"], capsys)
    assert code == 0
    first = out.read_bytes()
    assert len(sf.read(out)[0]) == int(0.3 * AUDIO.sample_rate)
    code, _, err = run_cli(["vocode", files["ckpt"], files["wav"], "-o", out, "--steps", "1", "--seed", "5"], capsys)
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert out.read_bytes() == first
    code, _, _ = run_cli(["vocode", files["ckpt"], files["wav"], "-o", out, "--steps", "1", "--seed", "5",
                          "--overwrite"], capsys)
    assert code == 0 and out.read_bytes() != first


# ----------------------------------------------------------------------------- vocode: bad inputs


def _bad_npy(root, name, array):
    path = root / name
    np.save(path, array)
    return path


@pytest.mark.parametrize("case", ["n_mels", "transposed", "ndim", "nan", "inf", "decibels", "one_frame", "complex"])
def test_bad_mel_arrays_get_one_line(files, capsys, tmp_path, case):
    mel = files["mel"]
    arrays = {
        "n_mels": (mel[:64], "64 mel bins", "n_mels=80"),
        "transposed": (mel.T.copy(), "transposed"),
        "ndim": (mel[None, None], "shape [n_mels, frames]"),
        "nan": (np.where(np.arange(mel.shape[1]) == 3, np.nan, mel), "NaN or infinite"),
        "inf": (np.where(np.arange(mel.shape[1]) == 3, np.inf, mel), "NaN or infinite"),
        "decibels": (mel * 20 / math.log(10) - 40, "decibels"),
        "one_frame": (mel[:, :1], "at least 2"),
        "complex": (mel.astype(np.complex64), "real numbers"),
    }
    array, *fragments = arrays[case]
    out = tmp_path / "out.wav"
    code, _, err = run_cli(["vocode", files["ckpt"], _bad_npy(tmp_path, f"{case}.npy", array), "-o", out], capsys)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists() and not out.with_suffix(".png").exists()


@pytest.mark.parametrize("sidecar,fragment", [
    ({"sample_rate": 22050, "hop_length": 256}, "sample_rate=22050"),
    ({"sample_rate": 16000, "hop_length": 200}, "hop_length=200"),
    ("not json", "not valid JSON"),
])
def test_sidecar_settings_are_checked(files, capsys, tmp_path, sidecar, fragment):
    npy = _bad_npy(tmp_path, "mel.npy", files["mel"])
    npy.with_suffix(".json").write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar))
    code, _, err = run_cli(["vocode", files["ckpt"], npy, "-o", tmp_path / "out.wav"], capsys)
    assert_one_line_error(code, err, fragment)


def test_npz_needs_its_settings(files, capsys, tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, mel=files["mel"], sample_rate=16000, hop_length=256)
    code, _, _ = run_cli(["vocode", files["ckpt"], good, "-o", tmp_path / "ok.wav", "--steps", "1"], capsys)
    assert code == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, mel=files["mel"])
    code, _, err = run_cli(["vocode", files["ckpt"], bad, "-o", tmp_path / "out.wav"], capsys)
    assert_one_line_error(code, err, "sample_rate, hop_length")


def test_other_bad_inputs(files, capsys, tmp_path):
    out = tmp_path / "out.wav"
    wavenet = write_checkpoint(tmp_path / "wavenet.pt", family="wavenet")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not an array")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases = [
        (["vocode", wavenet, files["npy"], "-o", out], ["'wavenet' model", "'vocoder'"]),
        (["vocode", tmp_path / "missing.pt", files["npy"], "-o", out], ["checkpoint not found"]),
        (["vocode", files["ckpt"], tmp_path / "missing.npy", "-o", out], ["input not found"]),
        (["vocode", files["ckpt"], garbage, "-o", out], ["not a readable .npy"]),
        (["vocode", files["ckpt"], text, "-o", out], ["unsupported input"]),
        (["vocode", files["ckpt"], files["npy"], "-o", tmp_path / "out.mp3"], ["must be a .wav"]),
        (["vocode", files["ckpt"], files["npy"], "-o", out, "--steps", "0"], ["--steps"]),
        (["vocode", files["ckpt"], files["npy"], "-o", out, "--overlap-frames", "400"], ["overlap_frames"]),
    ]
    for argv, fragments in cases:
        code, _, err = run_cli(argv, capsys)
        assert_one_line_error(code, err, *fragments)
        assert not out.exists()


# ----------------------------------------------------------------------------- search, distill, eval


def test_search_schedule_stores_the_result_atomically_and_vocode_uses_it(files, capsys, tmp_path):
    ckpt = write_checkpoint(tmp_path / "v.pt")
    code, stdout, _ = run_cli(["vocoder", "search-schedule", ckpt, "--source", files["heldout"], "--steps", "2",
                               "--clips", "1", "--seconds", "0.25", "--max-evals", "6"], capsys)
    assert code == 0, stdout
    state = torch.load(ckpt, weights_only=True)
    info = state["extra"]["vocoder"]
    betas = info["schedules"]["2"]
    assert info["default_steps"] == 2 and len(betas) == 2
    assert info["search"]["2"]["score"] <= info["search"]["2"]["start_score"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    code, stdout, _ = run_cli(["vocode", ckpt, files["npy"], "-o", tmp_path / "o.wav"], capsys)
    assert code == 0 and "2 steps" in stdout


def test_distill_writes_a_student_checkpoint(files, capsys, tmp_path, monkeypatch):
    import wavegen.commands.vocoder as command

    monkeypatch.setattr(command, "_training_batches", lambda *a: iter([piano_like(0.1)[None, :1024]] * 10))
    student = tmp_path / "student.pt"
    code, stdout, _ = run_cli(["vocoder", "distill", files["ckpt"], "-o", student, "--iterations", "2",
                               "--teacher-steps", "3"], capsys)
    assert code == 0, stdout
    state = torch.load(student, weights_only=True)
    assert state["family"] == "vocoder" and state["extra"]["vocoder"]["default_steps"] == 1
    assert state["extra"]["vocoder"]["distilled"]["iterations"] == 2
    code, _, err = run_cli(["vocoder", "distill", files["ckpt"], "-o", student], capsys)
    assert_one_line_error(code, err, "already exists")


def test_eval_vocoder_prints_a_table_with_griffin_lim(files, capsys, tmp_path):
    """Whole pieces (here cut to 0.3 s), two noise seeds: mean and spread per row, and the
    Griffin-Lim row is exactly the metrics of Griffin-Lim's output averaged over the seeds."""
    from wavegen.audio.dsp import griffin_lim
    from wavegen.audio.io import read_audio
    from wavegen.audio.metrics import multi_resolution_stft_distance

    report = tmp_path / "eval.json"
    code, stdout, _ = run_cli(["eval", "vocoder", files["ckpt"], files["heldout"], "--steps", "2,1", "--seeds", "2",
                               "--max-seconds", "0.3", "--griffin-lim-iters", "4", "--json", report], capsys)
    assert code == 0
    assert "griffin-lim (4 it)" in stdout and "MR-STFT" in stdout and "peak share" in stdout
    payload = json.loads(report.read_text())
    rows = payload["rows"]
    assert [r["steps"] for r in rows] == [2, 1, None] and payload["seeds"] == [0, 1]
    assert all(r["rtf"] > 0 and r["seeds"] == 2 and 0.0 <= r["peak_share"] <= 1.0 for r in rows)
    piece = read_audio(files["heldout"] / "a.wav", AUDIO.sample_rate)[: int(0.3 * AUDIO.sample_rate)]
    expected = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out = griffin_lim(mel_spectrogram(piece[None], AUDIO), AUDIO, n_iter=4)[0]
        out = torch.nn.functional.pad(out, (0, max(0, piece.shape[-1] - out.shape[-1])))[: piece.shape[-1]]
        expected.append(multi_resolution_stft_distance(piece, out).item())
    assert rows[-1]["mr_stft"] == pytest.approx(sum(expected) / 2, rel=1e-5)
    assert rows[-1]["spread"]["mr_stft"] == pytest.approx(abs(expected[0] - expected[1]) / 2, rel=1e-4, abs=1e-7)


# ----------------------------------------------------------------------------- vocode --model (shipped names)


def test_vocode_a_shipped_model_by_name_and_its_bad_inputs(files, capsys, tmp_path, monkeypatch):
    """A registry in a temporary folder (never the package's): a good name vocodes and prints the
    real-time factor; an unknown name and a damaged weight file are one line each, nothing written."""
    from wavegen.pretrained.export import export

    registry = tmp_path / "registry"
    registry.mkdir()
    export(files["ckpt"], "piano-test", root=registry)
    monkeypatch.setenv("WAVEGEN_PRETRAINED_DIR", str(registry))
    out = tmp_path / "shipped.wav"
    code, stdout, err = run_cli(["vocode", "--model", "piano-test", files["wav"], "-o", out, "--steps", "1",
                                 "--no-progress"], capsys)
    assert code == 0, err
    assert out.stat().st_size > 44 and "real-time factor" in stdout

    code, _, err = run_cli(["vocode", "--model", "piano-tset", files["wav"], "-o", tmp_path / "a.wav"], capsys)
    assert_one_line_error(code, err, "piano-tset")
    assert not (tmp_path / "a.wav").exists()

    weights = next(p for p in registry.iterdir() if p.suffix == ".pt")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, _, err = run_cli(["vocode", "--model", "piano-test", files["wav"], "-o", tmp_path / "b.wav"], capsys)
    assert_one_line_error(code, err, "checksum")
    assert not (tmp_path / "b.wav").exists()

    code, _, err = run_cli(["vocode", "--model", "piano-test", files["ckpt"], files["wav"], "-o", tmp_path / "c.wav"],
                           capsys)
    assert_one_line_error(code, err, "only the input")


def test_mel_projection_defaults_to_the_stored_count_and_refuses_negatives(files, capsys, tmp_path):
    """The stored count is what `vocode` uses unless told otherwise: a checkpoint storing 2
    iterations gives the same audio as `--mel-projection 2` on one storing none, and other
    audio than `--mel-projection 0`; a negative count is one line."""
    import soundfile as sf

    from wavegen.models.vocoder.checkpoint import update_vocoder_extra

    stored = tmp_path / "stored.pt"
    stored.write_bytes(Path(files["ckpt"]).read_bytes())
    update_vocoder_extra(stored, {"mel_projection": 2})
    outputs = {}
    for name, ckpt, extra in [("stored", stored, []), ("flag", files["ckpt"], ["--mel-projection", "2"]),
                              ("off", stored, ["--mel-projection", "0"])]:
        out = tmp_path / f"{name}.wav"
        code, _, err = run_cli(["vocode", ckpt, files["npy"], "-o", out, "--steps", "2", *extra], capsys)
        assert code == 0, err
        outputs[name] = sf.read(out)[0]
    assert np.array_equal(outputs["stored"], outputs["flag"])
    assert not np.allclose(outputs["stored"], outputs["off"])
    code, _, err = run_cli(["vocode", files["ckpt"], files["npy"], "-o", tmp_path / "neg.wav",
                            "--mel-projection", "-1"], capsys)
    assert_one_line_error(code, err, "--mel-projection")
    assert not (tmp_path / "neg.wav").exists()
