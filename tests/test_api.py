"""The Python API (wavegen.load) and the registry of shipped models.

Every registry here is a temporary folder (WAVEGEN_PRETRAINED_DIR); the shipped
wavegen/pretrained/registry.json is never written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wavegen
from wavegen import pretrained
from wavegen.cli import main
from wavegen.errors import WavegenError
from wavegen.pretrained.export import export
from wavegen.checkpoint import atomic_torch_save

from conftest import write_sine
from hostile import models as M

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {
        "vocoder": M.untrained_checkpoint(folder / "vocoder.pt", "vocoder_debug"),
        "wavenet": M.untrained_checkpoint(folder / "wavenet.pt", "wavenet_debug"),
        "autoencoder": M.untrained_checkpoint(folder / "autoencoder.pt", "autoencoder_debug"),
    }
    # A training checkpoint whose EMA differs from its raw weights and which carries optimiser and RNG state.
    state = torch.load(paths["vocoder"], weights_only=True)
    state["ema"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["ema"].items()}
    state["optimizer"] = {"state": {}, "param_groups": [{"lr": 1e-3}]}
    state["rng"] = {"torch": torch.get_rng_state()}
    state["extra"] = {"nonfinite_total": 3, "vocoder": {"default_steps": 4}}
    atomic_torch_save(state, folder / "trained_vocoder.pt")
    paths["trained_vocoder"] = folder / "trained_vocoder.pt"
    return paths


SHIPPED = ROOT / "wavegen" / "pretrained"


@pytest.fixture(autouse=True)
def the_shipped_registry_is_never_written():
    before = sorted((p.name, p.stat().st_mtime_ns) for p in SHIPPED.iterdir())
    yield
    assert sorted((p.name, p.stat().st_mtime_ns) for p in SHIPPED.iterdir()) == before


@pytest.fixture
def registry(tmp_path, monkeypatch):
    folder = tmp_path / "registry"
    folder.mkdir()
    monkeypatch.setenv(pretrained.ENV, str(folder))
    return folder


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    # 18 hops: a length the vocode command does not pad, so it reads the same mel as Vocoder.mel.
    return write_sine(tmp_path_factory.mktemp("audio") / "a.wav", seconds=18 * 256 / 16000, freq=262.0)


def read_wav(path):
    import soundfile as sf

    return torch.from_numpy(sf.read(str(path), dtype="float32")[0])


def test_the_shipped_registry_reads_and_is_not_touched_by_the_tests():
    assert pretrained.read_registry(Path(wavegen.__file__).parent / "pretrained") is not None
    text = (SHIPPED / "registry.json").read_text()
    assert json.loads(text)["format"] == "wavegen-registry"


def test_export_keeps_the_ema_weights_only_and_registers_the_file_checksum(checkpoints, registry, tmp_path):
    card = tmp_path / "card.md"
    card.write_text("# piano-16k\nA vocoder for solo piano.\n")
    entry = export(checkpoints["trained_vocoder"], "piano-16k", card=card)
    shipped = torch.load(registry / "piano-16k.pt", weights_only=True)
    source = torch.load(checkpoints["trained_vocoder"], weights_only=True)
    assert not {"ema", "optimizer", "scheduler", "rng"} & set(shipped)
    assert all(torch.equal(shipped["model"][k], source["ema"][k]) for k in source["ema"])
    assert shipped["extra"] == {"vocoder": {"default_steps": 4}} and shipped["version"] == 2
    assert entry["sha256"] == pretrained.file_sha256(registry / "piano-16k.pt")
    assert entry["sampling"] == {"steps": 4} and entry["family"] == "vocoder"
    vocoder = wavegen.load("piano-16k")
    assert isinstance(vocoder, wavegen.Vocoder) and vocoder.card.startswith("# piano-16k")
    ema = {k: v for k, v in source["ema"].items()}
    assert all(torch.equal(vocoder.module.state_dict()[k], ema[k]) for k in ema)
    with pytest.raises(WavegenError, match="already exists"):
        export(checkpoints["trained_vocoder"], "piano-16k")


def test_fp16_export_halves_the_file_and_loads_into_float32_weights(checkpoints, registry):
    full = export(checkpoints["vocoder"], "full")
    half = export(checkpoints["vocoder"], "half", fp16=True)
    assert half["dtype"] == "float16" and half["bytes"] < full["bytes"]

    def payload(name):
        weights = torch.load(registry / f"{name}.pt", weights_only=True)["model"]
        return sum(v.numel() * v.element_size() for v in weights.values()), {v.dtype for v in weights.values()}

    assert payload("half") == (payload("full")[0] // 2, {torch.float16})
    a, b = wavegen.load("full"), wavegen.load("half")
    for (name, x), y in zip(a.module.state_dict().items(), b.module.state_dict().values()):
        assert y.dtype == x.dtype and torch.allclose(x, y, rtol=1e-3, atol=1e-4), name


def test_a_damaged_shipped_file_and_an_unknown_name_get_one_line(checkpoints, registry):
    export(checkpoints["wavenet"], "piano-tiny")
    with pytest.raises(WavegenError, match=r"no shipped model named 'piano-tiyn'; did you mean 'piano-tiny'\?"):
        wavegen.load("piano-tiyn")
    data = bytearray((registry / "piano-tiny.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (registry / "piano-tiny.pt").write_bytes(bytes(data))
    with pytest.raises(WavegenError) as info:
        wavegen.load("piano-tiny")
    assert "shipped model 'piano-tiny'" in str(info.value) and "does not match its registry checksum" in str(info.value)
    assert "\n" not in str(info.value)


def test_export_cli_registers_and_reports_errors_in_one_line(checkpoints, registry, capsys):
    from wavegen.pretrained.export import main as export_main

    assert export_main([str(checkpoints["autoencoder"]), "--name", "piano-ae", "--default", "temperature=0.9"]) == 0
    assert pretrained.names() == ["piano-ae"]
    assert pretrained.entry("piano-ae")["sampling"] == {"temperature": 0.9}
    assert export_main([str(checkpoints["autoencoder"]), "--name", "Piano AE"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: model name 'Piano AE' must be lower-case letters, digits, '.', '_' or '-'"]


def test_the_vocoder_object_gives_the_cli_s_audio(checkpoints, wav, tmp_path):
    vocoder = wavegen.load(checkpoints["vocoder"])
    audio = read_wav(wav)
    mel = vocoder.mel(audio)
    assert mel.shape == (80, audio.numel() // 256 + 1)
    out = vocoder.vocode(mel, steps=3, generator=torch.Generator().manual_seed(5))
    assert out.shape == ((mel.shape[1] - 1) * 256,) == audio.shape
    assert main(["vocode", str(checkpoints["vocoder"]), str(wav), "-o", str(tmp_path / "v.wav"), "--steps", "3",
                 "--seed", "5", "--device", "cpu"]) == 0
    cli = read_wav(tmp_path / "v.wav")
    assert torch.allclose(out.clamp(-1, 1), cli, atol=2 / 32768)
    # Batched mels give the same rows; progress reports every sample.
    seen = []
    both = vocoder.vocode(torch.stack([mel, mel]), steps=3, generator=torch.Generator().manual_seed(5),
                          progress=lambda done, total: seen.append((done, total)))
    assert both.shape == (2, out.numel()) and seen[-1] == (out.numel(), out.numel())
    with pytest.raises(WavegenError, match=r"mel must be Tensor\[80, F\]"):
        vocoder.vocode(mel[:40])


def test_the_wavenet_object_gives_the_cli_s_audio(checkpoints, tmp_path):
    net = wavegen.load(checkpoints["wavenet"])
    audio = net.generate(0.01, generator=torch.Generator().manual_seed(3), backend="reference")
    assert audio.shape == (160,)
    assert main(["sample", str(checkpoints["wavenet"]), "-o", str(tmp_path / "s"), "--seconds", "0.01",
                 "--seed", "3", "--backend", "reference", "--device", "cpu"]) == 0
    assert torch.allclose(audio, read_wav(tmp_path / "s" / "sample_000.wav"), atol=2 / 32768)
    greedy = [net.generate(0.005, temperature=0, generator=torch.Generator().manual_seed(s), backend="reference")
              for s in (1, 2)]
    assert torch.equal(greedy[0], greedy[1])  # greedy ignores the noise
    with pytest.raises(WavegenError, match="temperature must not be negative"):
        net.generate(0.01, temperature=-1)


def test_the_autoencoder_object_gives_the_cli_s_codes_and_audio(checkpoints, wav, tmp_path):
    from wavegen.codes.codefile import read_code_file

    ae = wavegen.load(checkpoints["autoencoder"])
    audio = read_wav(wav)[:800]
    codes = ae.encode(audio)
    assert codes.dtype == torch.long and codes.shape[1] == -(-800 // ae.hop)
    clip = tmp_path / "clip.wav"
    from wavegen.audio.io import write_audio

    write_audio(clip, audio, 16000)
    assert main(["encode", str(checkpoints["autoencoder"]), str(clip), "-o", str(tmp_path / "c.codes"),
                 "--device", "cpu"]) == 0
    assert torch.equal(read_code_file(tmp_path / "c.codes").codes(), ae.encode(read_wav(clip)))
    decoded = ae.decode(codes, num_samples=800, generator=torch.Generator().manual_seed(2), backend="reference")
    assert decoded.shape == (800,)
    assert main(["decode", str(checkpoints["autoencoder"]), str(tmp_path / "c.codes"), "-o", str(tmp_path / "d.wav"),
                 "--seed", "2", "--backend", "reference", "--device", "cpu"]) == 0
    again = ae.decode(read_code_file(tmp_path / "c.codes").codes(), num_samples=800,
                      generator=torch.Generator().manual_seed(2), backend="reference")
    assert torch.allclose(again, read_wav(tmp_path / "d.wav"), atol=2 / 32768)


def test_load_of_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(WavegenError, match="checkpoint not found"):
        wavegen.load(tmp_path / "nothing.pt")


def test_importing_wavegen_stays_cheap():
    probe = ("import sys, wavegen, wavegen.nn, wavegen.kernels; "
             "print(sorted(m for m in ('hydra', 'omegaconf', 'soundfile', 'librosa', 'wavegen.api') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "[]"
