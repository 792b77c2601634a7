"""The autoencoder with a mel decoder (``decoder_kind: mel``, the shipped piano-ae's kind):
configs, exact chunked encoding of its log-mel front end, training on a rendered clip, and
`wavegen encode/decode --model` with a registry in a temporary folder."""

import numpy as np
import pytest
import torch

from wavegen.cli import main
from wavegen.config import compose
from wavegen.errors import WavegenError
from wavegen.audio.metrics import peak_energy_share
from wavegen.models.autoencoder import AutoencoderConfig
from wavegen.tasks import build_task
from wavegen.models.registry import build_model
from wavegen.generate.autoencoder import decode_stream

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEBUG = ["experiment=autoencoder_debug_mel"]


def debug_task(*overrides):
    torch.manual_seed(0)
    return build_task(compose(DEBUG + list(overrides)))


def rendered_clip(seconds: float = 2.0) -> torch.Tensor:
    """Tensor[T]: a few seconds of a C-major arpeggio and chord by the built-in piano (a multiple of 256)."""
    from wavegen.data.renderer import NoteEvent, render_builtin

    notes = [NoteEvent(0.25 * i, 0.5, pitch, 80) for i, pitch in enumerate((60, 64, 67, 72, 67, 64))]
    notes += [NoteEvent(1.5, 0.5, pitch, 70) for pitch in (48, 55, 64)]
    audio = render_builtin(notes, 16000, seed=1)
    audio = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[: int(seconds * 16000)]
    return audio[: audio.shape[0] // 256 * 256]


def test_the_mel_kind_builds_and_round_trips_its_config():
    task = debug_task()
    model = task.model
    assert model.decoder_kind == "mel" and model.cfg.vocoder == "piano-16k"
    assert model.decoder.cfg.levels == model.levels and model.decoder.cfg.hop == model.hop
    assert build_model("autoencoder", task.model_config()).cfg == model.cfg
    for size in ("debug_mel", "piano_mel"):
        big = build_task(compose([f"model=autoencoder/{size}"])).model
        assert big.decoder_kind == "mel" and big.encoder.cfg.input == "mel"
    shipped_size = sum(p.numel() for p in big.parameters())
    assert shipped_size * 2 < 10 * 2**20  # float16 under the 10 MB a shipped model may take


def test_config_errors_of_the_mel_kind_are_one_line():
    base = debug_task().model.cfg.to_dict()
    with pytest.raises(WavegenError, match="unknown decoder_kind"):
        AutoencoderConfig.from_mapping({**base, "decoder_kind": "spectrogram"})
    with pytest.raises(WavegenError, match="set by the autoencoder"):
        AutoencoderConfig.from_mapping({**base, "decoder": {**base["decoder"], "levels": [3]}})
    with pytest.raises(WavegenError, match="multiple of encoder.mel_hop"):
        AutoencoderConfig.from_mapping({**base, "hop": 64})
    with pytest.raises(WavegenError, match="audio.n_mels"):
        debug_task("model.decoder.n_mels=40")


def test_a_wavenet_autoencoders_config_is_unchanged_by_the_new_options():
    """decoder_kind, vocoder and the encoder's mel options stay out of a WaveNet autoencoder's
    config: its fingerprint (in every .codes file it wrote) must not move."""
    d = build_task(compose(["experiment=autoencoder_debug"])).model.cfg.to_dict()
    assert "decoder_kind" not in d and "vocoder" not in d and "mel_hop" not in d["encoder"]


def test_chunked_encoding_of_the_mel_front_end_equals_whole_clip_encoding():
    model = debug_task("model.encoder.frame_dilations=[1,2,4]").model.eval()
    audio = rendered_clip(1.0)[None]
    whole = model.encode(audio)
    assert whole.shape[-1] == audio.shape[-1] // 256
    for chunk in (1, 5, 16):
        assert torch.equal(model.encode(audio, chunk_frames=chunk), whole), chunk


def test_decode_mel_has_the_frames_a_vocoder_needs_and_decode_stream_says_what_to_use():
    model = debug_task().model.eval()
    codes = model.encode(torch.zeros(1, 2560))
    assert model.decode_mel(codes).shape == (1, 80, 2560 // 256 + 1)
    assert model.decode_mel(codes, 2000).shape == (1, 80, -(-2000 // 256) + 1)
    with pytest.raises(ValueError, match="decode_mel"):
        next(decode_stream(model, codes))


def _log_mel_l1(model, clip, cfg):
    from wavegen.audio.dsp import mel_spectrogram

    mel = model.decode_mel(model.encode(clip[None]), clip.shape[-1])
    return float((mel - mel_spectrogram(clip[None], cfg)).abs().mean()), mel[0]


@pytest.mark.slow
def test_training_on_a_rendered_clip_lowers_the_log_mel_l1_and_decodes_pitched():
    """300 steps on one rendered clip: the log-mel L1 falls well below the untrained model's, and
    the decoded clip (codes -> mel -> the shipped piano-16k) is pitched where the untrained one is not."""
    import wavegen
    from wavegen.audio.dsp import AudioConfig

    task = debug_task("model.encoder.frame_dilations=[1,2,4]", "model.decoder.width=48",
                      "model.decoder.dilations=[1,2,4,8]")
    model, cfg = task.model, AudioConfig()
    clip = rendered_clip(2.0)
    before, untrained_mel = _log_mel_l1(model.eval(), clip, cfg)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss, _ = task.loss(model, {"audio": clip[None]})
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after, trained_mel = _log_mel_l1(model.eval(), clip, cfg)
    vocoder = wavegen.load("piano-16k")
    pitched = peak_energy_share(vocoder.vocode(trained_mel, generator=torch.Generator().manual_seed(0)))
    unpitched = peak_energy_share(vocoder.vocode(untrained_mel, generator=torch.Generator().manual_seed(0)))
    print(f"log-mel L1 {before:.3f} -> {after:.3f}; peak share {unpitched:.3f} -> {pitched:.3f}")
    # Measured: L1 2.794 -> 0.185, peak share 0.371 -> 0.897 (real piano: 0.91-0.96; noise: ~0).
    assert after < 0.5 * before
    assert pitched > 0.5 and pitched > unpitched + 0.3


# ----------------------------------------------------------------------------- CLI with --model


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A temporary registry holding a tiny vocoder and a debug mel autoencoder that names it."""
    from hostile import models as M
    from wavegen.pretrained.export import export

    folder = tmp_path / "registry"
    folder.mkdir()
    export(M.untrained_checkpoint(tmp_path / "voc.pt", "vocoder_debug"), "voc-test", root=folder)
    ckpt = tmp_path / "ae.pt"
    _untrained_mel_autoencoder(ckpt, "voc-test")
    export(ckpt, "ae-test", root=folder, fp16=True)
    monkeypatch.setenv("WAVEGEN_PRETRAINED_DIR", str(folder))
    return folder


def _untrained_mel_autoencoder(path, vocoder: str):
    import copy

    from omegaconf import OmegaConf

    from wavegen.checkpoint import FORMAT, atomic_torch_save, seal

    cfg = compose(DEBUG + [f"model.vocoder={vocoder}"])
    torch.manual_seed(0)
    task = build_task(cfg)
    weights = task.model.state_dict()
    atomic_torch_save(seal({"format": FORMAT, "family": task.family, "model_config": task.model_config(),
                            "audio": OmegaConf.to_container(cfg.audio, resolve=True), "model": weights,
                            "ema": copy.deepcopy(weights), "optimizer": {}, "scheduler": {}, "step": 0,
                            "extra": {}, "config": {}}), path)
    return path


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(code, err, fragment):
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_encode_and_decode_a_shipped_autoencoder_by_name(registry, tmp_path, capsys):
    import wavegen
    from wavegen.audio.io import read_audio, write_audio
    from wavegen.codes.codefile import read_code_file

    clip = rendered_clip(0.5)[:7000]  # not a multiple of the hop
    wav = write_audio(tmp_path / "in.wav", clip, 16000)
    codes, out = tmp_path / "x.codes", tmp_path / "out.wav"
    code, stdout, err = _run(["encode", "--model", "ae-test", wav, "-o", codes], capsys)
    assert code == 0 and "events/s" in stdout, err
    code, stdout, err = _run(["decode", "--model", "ae-test", codes, "-o", out, "--steps", "1", "--seed", "4"], capsys)
    assert code == 0, err
    audio = read_audio(out, 16000)
    assert audio.shape == (7000,)
    # The API takes the same path: the same codes, and the same audio for the same seed.
    model = wavegen.load("ae-test")
    assert torch.equal(read_code_file(codes).codes(), model.encode(read_audio(wav, 16000)))
    again = model.decode(read_code_file(codes).codes(), 7000, generator=torch.Generator().manual_seed(4), steps=1)
    assert torch.allclose(again, audio, atol=2 / 32768)


def test_bad_model_names_and_damaged_files_are_one_line(registry, tmp_path, capsys):
    from wavegen.audio.io import write_audio

    wav = write_audio(tmp_path / "in.wav", rendered_clip(0.25), 16000)
    code, _, err = _run(["encode", "--model", "ae-tset", wav, "-o", tmp_path / "a.codes"], capsys)
    _one_line(code, err, "ae-tset")
    code, _, err = _run(["encode", "--model", "ae-test", "ckpt.pt", wav, "-o", tmp_path / "a.codes"], capsys)
    _one_line(code, err, "only the input")
    code, _, err = _run(["encode", wav, "-o", tmp_path / "a.codes"], capsys)
    _one_line(code, err, "--model NAME")
    assert _run(["encode", "--model", "ae-test", wav, "-o", tmp_path / "a.codes"], capsys)[0] == 0
    weights = registry / "ae-test.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, _, err = _run(["decode", "--model", "ae-test", tmp_path / "a.codes", "-o", tmp_path / "b.wav"], capsys)
    _one_line(code, err, "checksum")
    assert not (tmp_path / "b.wav").exists()
