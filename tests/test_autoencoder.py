"""The WaveNet autoencoder: configs, encode/decode shapes and lengths, training terms, the CLI."""

import json
import math
from pathlib import Path

import pytest
import torch

from wavegen.cli import main
from wavegen.codes import count_changes
from wavegen.codes.codefile import read_code_file
from wavegen.config import available_options, compose
from wavegen.errors import WavegenError
from wavegen.models.autoencoder import AutoencoderConfig, WaveNetAutoencoder
from wavegen.models.encoder import default_strides
from wavegen.tasks import build_task
from wavegen.models.registry import build_model
from wavegen.generate.autoencoder import decode

DEBUG = ["experiment=autoencoder_debug", "train.deterministic=true", "train.threads=1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def debug_model(seed: int = 0, **overrides) -> WaveNetAutoencoder:
    cfg = compose(["experiment=autoencoder_debug"] + [f"model.{k}={v}" for k, v in overrides.items()])
    torch.manual_seed(seed)
    model = build_task(cfg).model
    return model.eval()


def note_audio(batch: int, length: int, generator: torch.Generator, sample_rate: int = 16000) -> torch.Tensor:
    """Tensor[B, T] of piano-like notes: a new decaying tone every 50-200 ms."""
    out = torch.zeros(batch, length)
    t = torch.arange(length) / sample_rate
    for b in range(batch):
        pos = 0
        while pos < length:
            dur = int(sample_rate * (0.05 + 0.15 * torch.rand(1, generator=generator).item()))
            freq = 110 * 2 ** (torch.randint(0, 36, (1,), generator=generator).item() / 12)
            n = min(dur, length - pos)
            out[b, pos : pos + n] = 0.5 * torch.sin(2 * math.pi * freq * t[:n]) * torch.exp(-8 * t[:n])
            pos += dur
    return out


def test_every_autoencoder_size_and_experiment_composes_and_builds():
    assert {"debug", "tiny", "base"} <= set(available_options("model/autoencoder"))
    sizes = {}
    for size in ("debug", "tiny", "base"):
        cfg = compose([f"model=autoencoder/{size}"])
        task = build_task(cfg)
        sizes[size] = sum(p.numel() for p in task.model.parameters())
        rebuilt = build_model("autoencoder", task.model_config())
        assert rebuilt.cfg == task.model.cfg
        assert task.model.decoder.cfg.local_channels == len(task.model.levels)
        assert task.model.decoder.cfg.local_hop == task.model.hop
    assert sizes["debug"] < 20_000 < sizes["tiny"] < sizes["base"]
    for name in ("autoencoder_debug", "autoencoder_tiny", "autoencoder_tiny_fixed", "autoencoder_piano"):
        cfg = compose([f"experiment={name}"])
        assert cfg.model.family == "autoencoder"
    fixed = compose(["experiment=autoencoder_tiny_fixed"]).model
    assert fixed.hop == 512 and fixed.slowness.target_events_per_second is None and fixed.slowness.initial_weight == 0


def test_config_errors_are_one_line():
    base = AutoencoderConfig().to_dict()
    with pytest.raises(WavegenError, match="unknown encoder option"):
        AutoencoderConfig.from_mapping({**base, "encoder": {"widht": 3}})
    with pytest.raises(WavegenError, match="set by the autoencoder"):
        AutoencoderConfig.from_mapping({**base, "decoder": {"local_hop": 3}})
    with pytest.raises(WavegenError, match="multiply to the hop"):
        AutoencoderConfig.from_mapping({**base, "hop": 64, "encoder": {"strides": [4, 4]}})
    with pytest.raises(WavegenError, match="levels"):
        AutoencoderConfig.from_mapping({**base, "levels": [15, 1]})
    with pytest.raises(WavegenError, match="slowness kind"):
        AutoencoderConfig.from_mapping({**base, "slowness": {"kind": "l3"}})


@pytest.mark.parametrize("hop,strides", [(64, [4, 4, 4]), (256, [4, 4, 4, 4]), (512, [4, 4, 4, 4, 2]),
                                         (300, [4, 3, 5, 5]), (1, [])])
def test_default_strides_multiply_to_the_hop(hop, strides):
    assert default_strides(hop) == strides


@pytest.mark.parametrize("length", [1, 15, 16, 17, 250])
def test_encode_decode_shapes_and_exact_lengths(length):
    model = debug_model()
    hop, channels = model.hop, model.channels
    audio = torch.rand(2, length, generator=torch.Generator().manual_seed(length)) * 1.6 - 0.8
    indices = model.encode(audio)
    frames = math.ceil(length / hop)
    assert indices.shape == (2, channels, frames) and indices.dtype == torch.long
    assert torch.equal(model.encode(audio[0]), indices[0])
    features = model.decode_codes(indices)
    assert features.shape == (2, channels, frames) and float(features.abs().max()) <= 1.0
    g = torch.Generator().manual_seed(0)
    assert decode(model, indices, length, generator=g).shape == (2, length)
    assert decode(model, indices, generator=g).shape == (2, frames * hop)
    with pytest.raises(ValueError, match="hold"):
        decode(model, indices, frames * hop + 1)


def test_chunked_encoding_equals_whole_clip_encoding():
    model = debug_model()
    audio = torch.rand(1, 1500, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    whole = model.encode(audio)
    assert len(set(whole.flatten().tolist())) > 2, "the test needs codes that vary"
    for chunk in (1, 7, 64, 1000):
        assert torch.equal(model.encode(audio, chunk_frames=chunk), whole), chunk


def test_encoder_is_non_causal_and_local():
    """A frame sees the audio around it on both sides, but nothing far away."""
    model = debug_model()
    audio = (torch.rand(1, 4096, generator=torch.Generator().manual_seed(0)) * 0.2 - 0.1).requires_grad_()
    pre = model.encoder(audio)
    frame = 128
    (grad,) = torch.autograd.grad(pre[0, :, frame].sum(), audio)
    touched = torch.nonzero(grad[0]).flatten()
    centre = frame * model.hop
    assert int(touched.min()) < centre and int(touched.max()) > centre + model.hop
    assert centre - int(touched.min()) <= model.encoder.context
    assert int(touched.max()) - centre <= model.encoder.context + model.hop


def test_untrained_codes_already_follow_the_audio():
    """The encoder's initialisation must give codes that vary with the audio (else they never come alive)."""
    model = debug_model()
    notes = note_audio(2, 4096, torch.Generator().manual_seed(0))
    indices = model.encode(notes)
    assert len(torch.unique(indices)) >= 3
    assert float(count_changes(indices).sum()) / indices[..., 1:].shape[-1] / 2 > 0.2
    assert len(torch.unique(model.encode(torch.zeros(1, 4096)))) == 1, "silence should be one code"


def test_noise_substitution_feeds_the_decoder_noisy_values_only_in_training():
    model = debug_model()
    q = model.quantiser
    continuous = torch.rand(2, 3, 500) * 2 - 1
    noisy = q.noisy_values(continuous)
    step = 2 / 4  # 5 levels
    assert float((noisy - continuous).abs().max()) <= step / 2
    assert float((noisy - continuous).abs().mean()) > step / 8, "the noise must be a level wide"
    audio = note_audio(1, 512, torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        a, b = model(audio).logits, model(audio).logits
    assert torch.equal(a, b), "evaluation must be deterministic (rounded codes)"
    model.train()
    with torch.no_grad():
        c, d = model(audio).logits, model(audio).logits
    assert not torch.equal(c, d)


def test_teacher_forcing_matches_sampling_alignment():
    """Greedy decoding picks, at every step, the argmax of the teacher-forced logits.

    Checks that training and sampling agree on which code frame conditions which sample.
    """
    model = debug_model(seed=1)
    with torch.no_grad():  # a decoder that depends strongly on the codes
        model.decoder.local_proj.weight.mul_(30)
    audio = torch.rand(1, 96, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    indices = model.encode(audio)
    sampled = decode(model, indices, 96, temperature=0.0)
    tokens = model.decoder.head.encode(sampled)
    with torch.no_grad():
        out_logits = model.decoder(
            torch.cat([model.decoder.head.silence(1)[:, None], tokens[:, :-1]], dim=1),
            local=model.decode_codes(indices),
        )
    assert torch.equal(out_logits.argmax(dim=1), tokens)
    # The codes matter: other codes give other greedy audio.
    other = decode(model, (indices + 1) % 5, 96, temperature=0.0)
    assert not torch.equal(other, sampled)


def test_loss_terms_gradients_and_controller_updates():
    cfg = compose(DEBUG + ["model.slowness.initial_weight=0.5"])
    task = build_task(cfg)
    model = task.model.train()
    batch = {"audio": torch.rand(2, 256, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8}
    loss, metrics = task.loss(model, batch)
    assert torch.isfinite(loss)
    assert {"bits_per_sample", "slowness", "slowness_weight", "events_per_second"} <= set(metrics)
    assert metrics["slowness_weight"] == 0.5 and metrics["slowness"] > 0
    assert metrics["events_per_second"] > 0
    loss.backward()
    # The straight-through rounding lets the decoder's loss reach the encoder.
    assert model.encoder.input_conv.weight.grad.abs().sum() > 0
    assert int(model.controller.updates) == 1
    # The measured rate was far above the target of 100/s, so the weight went up.
    assert model.controller.weight > 0.5
    model.eval()
    task.loss(model, batch)
    assert int(model.controller.updates) == 1, "evaluation must not move the controller"
    val = task.validate(model, [batch])
    assert val["val_loss"] > 0 and val["val_events_per_second"] > 0 and val["val_code_bits_per_second"] > 0


def test_fingerprint_tracks_weights_and_config_but_not_the_controller():
    a, b = debug_model(seed=0), debug_model(seed=0)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    b.controller.update(1e6)
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.decoder.out2.bias[0] += 1e-3
    assert a.fingerprint() != b.fingerprint()
    assert debug_model(seed=0, margin_weight=0.5).fingerprint() != a.fingerprint()


# ----------------------------------------------------------------------------- training and the CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A debug autoencoder trained for 6 steps through the shared loop (and a second, resumed run)."""
    root = tmp_path_factory.mktemp("ae")
    from wavegen.train.loop import train

    full = root / "full"
    train(compose(DEBUG + [f"train.run_dir={full}"]))
    part = root / "part"
    train(compose(DEBUG + [f"train.run_dir={part}", "train.stop_at_step=3"]))
    train(compose(DEBUG + [f"train.run_dir={part}"]))
    return root


def test_training_resumes_exactly_with_the_controller_state(trained):
    from wavegen.checkpoint import load_checkpoint

    a = load_checkpoint(trained / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(trained / "part" / "checkpoints" / "last.pt")
    assert a["family"] == "autoencoder" and a["step"] == b["step"] == 6
    assert int(a["model"]["controller.updates"]) == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    # The controller moved, and the EMA copy carries the live controller state.
    assert float(a["model"]["controller.log_weight"]) != math.log(0.1)
    assert torch.equal(a["ema"]["controller.log_weight"], a["model"]["controller.log_weight"])
    rows = [json.loads(line) for line in (trained / "full" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_events_per_second" in row for row in rows)


def _write_clip(path: Path, samples: int) -> Path:
    from wavegen.audio.io import write_audio

    t = torch.arange(samples) / 16000
    write_audio(path, 0.5 * torch.sin(2 * math.pi * 440 * t) * torch.exp(-3 * t), 16000)
    return path


def test_encode_decode_cli_round_trip(trained, tmp_path, capsys):
    ckpt = trained / "full" / "checkpoints" / "last.pt"
    clip = _write_clip(tmp_path / "in.wav", 1000)  # not a multiple of the hop (16)
    codes = tmp_path / "x.codes"
    assert main(["encode", str(ckpt), str(clip), "-o", str(codes)]) == 0
    assert "events/s" in capsys.readouterr().out
    code = read_code_file(codes)
    assert code.num_samples == 1000 and code.frames == 63 and code.hop == 16
    out = tmp_path / "out.wav"
    assert main(["decode", str(ckpt), str(codes), "-o", str(out), "--seed", "3"]) == 0
    import soundfile as sf

    assert sf.info(str(out)).frames == 1000
    # Existing outputs are refused (and kept) unless --overwrite.
    before = out.read_bytes()
    assert main(["decode", str(ckpt), str(codes), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["encode", str(ckpt), str(clip), "-o", str(codes)]) == 2
    assert main(["encode", str(ckpt), str(clip), "-o", str(codes), "--overwrite"]) == 0


def test_decode_refuses_codes_of_another_model(trained, tmp_path, capsys):
    full = trained / "full" / "checkpoints" / "last.pt"
    clip = _write_clip(tmp_path / "in.wav", 500)
    codes = tmp_path / "x.codes"
    assert main(["encode", str(full), str(clip), "-o", str(codes)]) == 0
    # The same checkpoint's raw weights are another model as far as the codes are concerned.
    assert main(["decode", str(full), str(codes), "-o", str(tmp_path / "o.wav"), "--raw"]) == 2
    err = capsys.readouterr().err
    assert "another model" in err and err.count("\n") == 1
    assert not (tmp_path / "o.wav").exists()


def test_cli_bad_inputs_are_one_line(trained, tmp_path, capsys):
    ckpt = trained / "full" / "checkpoints" / "last.pt"
    garbage = tmp_path / "bad.codes"
    garbage.write_bytes(b"not codes at all")
    cases = [
        (["decode", str(ckpt), str(garbage), "-o", str(tmp_path / "a.wav")], "wrong magic"),
        (["decode", str(ckpt), str(tmp_path / "none.codes"), "-o", str(tmp_path / "a.wav")], "not found"),
        (["encode", str(ckpt), str(tmp_path / "none.wav"), "-o", str(tmp_path / "a.codes")], "not found"),
        (["encode", str(tmp_path / "none.pt"), str(garbage), "-o", str(tmp_path / "a.codes")], "checkpoint not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not any(p.name.startswith("a.") for p in tmp_path.iterdir())


def test_wavenet_checkpoint_is_refused_by_encode(tmp_path, capsys):
    from wavegen.train.loop import train

    run = tmp_path / "wn"
    train(compose(["experiment=wavenet_debug", "train.threads=1", "train.steps=1", f"train.run_dir={run}"]))
    clip = _write_clip(tmp_path / "in.wav", 200)
    assert main(["encode", str(run / "checkpoints" / "last.pt"), str(clip), "-o", str(tmp_path / "x.codes")]) == 2
    assert "'wavenet' model" in capsys.readouterr().err


@pytest.mark.slow
def test_controller_brings_the_debug_models_event_rate_to_its_target():
    """Train the debug autoencoder on note-like audio; the controller holds its mean event rate at the target.

    During the warm-up (weight near 0) the codes change several times more often than
    the target. Once the controller has first brought the rate down to the target, the
    mean rate over the rest of the run lies within 10 % of it. Over 50-step windows the
    rate still swings by about +-40 %: the codes answer a change of weight only after a
    few hundred steps, which a gentle integral controller averages out but cannot undo.
    (About 3 minutes on one CPU core.)
    """
    torch.manual_seed(0)
    cfg = compose(["experiment=autoencoder_debug", "model.slowness.warmup_steps=100"])
    task = build_task(cfg)
    model = task.model.train()
    target = float(cfg.model.slowness.target_events_per_second)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    rates = []
    for _ in range(2400):
        loss, metrics = task.loss(model, {"audio": note_audio(4, 1024, g)})
        opt.zero_grad()
        loss.backward()
        opt.step()
        rates.append(metrics["events_per_second"])
    free = sum(rates[50:100]) / 50
    assert free > 2 * target, f"without the penalty the codes change {free:.0f} times/s"
    reached = next(i for i in range(150, len(rates)) if sum(rates[i - 50 : i]) / 50 <= 1.1 * target)
    assert reached <= 1000, f"the rate first came down to the target only at step {reached}"
    settled = sum(rates[reached:]) / len(rates[reached:])
    assert abs(settled - target) <= 0.1 * target, f"mean rate {settled:.1f} events/s after step {reached}, target {target}"
