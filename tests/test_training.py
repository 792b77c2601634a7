"""The shared training loop: exact resume, checkpoints, non-finite guarding, CLI errors."""

import json
from pathlib import Path

import pytest
import torch

from wavegen.cli import main
from wavegen.config import compose
from wavegen.errors import WavegenError
from wavegen.checkpoint import load_checkpoint
from wavegen.models.registry import load_model
from wavegen.train.checkpoint import latest_checkpoint
from wavegen.train.loop import Trainer, train

DEBUG = ["experiment=wavenet_debug", "train.deterministic=true", "train.threads=1"]


def losses(run_dir: Path) -> dict[int, float]:
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "loss" in row:
            out[row["step"]] = row["loss"]
    return out


def test_resume_equals_uninterrupted(tmp_path):
    full = tmp_path / "full"
    train(compose(DEBUG + [f"train.run_dir={full}"]))
    part = tmp_path / "part"
    train(compose(DEBUG + [f"train.run_dir={part}", "train.stop_at_step=3"]))
    assert load_checkpoint(part / "checkpoints" / "last.pt")["step"] == 3
    train(compose(DEBUG + [f"train.run_dir={part}"]))  # same run, more steps: resumes at 3
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(part / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    la, lb = losses(full), losses(part)
    assert la[6] == lb[6] and la[4] == lb[4]


def test_checkpoint_is_plain_and_validated(tmp_path):
    run = tmp_path / "run"
    train(compose(DEBUG + [f"train.run_dir={run}", "train.steps=3"]))
    path = run / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)  # plain containers only
    assert state["family"] == "wavenet" and state["audio"]["sample_rate"] == 16000
    model, _ = load_model(path)
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(WavegenError, match="holds a 'wavenet' model"):
        load_checkpoint(path, family="vocoder")
    with pytest.raises(WavegenError, match="other audio settings: sample_rate=16000"):
        load_checkpoint(path, audio={"sample_rate": 22050})
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WavegenError, match="not a readable wavegen checkpoint"):
        load_checkpoint(bad)
    # A damaged last.pt does not block resuming: the newest readable step file is used.
    (run / "checkpoints" / "last.pt").unlink()
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    assert latest_checkpoint(run / "checkpoints").name == "step_00000003.pt"


def test_resume_refuses_other_model(tmp_path):
    run = tmp_path / "run"
    train(compose(DEBUG + [f"train.run_dir={run}", "train.steps=3"]))
    with pytest.raises(WavegenError, match="different 'model' config"):
        train(compose(DEBUG + [f"train.run_dir={run}", "model.residual_channels=4"]))


def test_nonfinite_losses_are_skipped_then_stop(tmp_path):
    cfg = compose(DEBUG + [f"train.run_dir={tmp_path / 'run'}", "train.max_nonfinite=3", "train.steps=10"])
    trainer = Trainer(cfg)
    real_loss = trainer.task.loss
    calls = {"n": 0}

    def flaky(model, batch):
        calls["n"] += 1
        loss, metrics = real_loss(model, batch)
        if calls["n"] in (2, 5, 6, 7, 8):
            loss = loss * float("nan")
        return loss, metrics

    trainer.task.loss = flaky
    with pytest.raises(WavegenError, match="3 non-finite losses in a row at step 7"):
        trainer.run()
    assert trainer.nonfinite_total == 4


def test_unknown_config_key_is_one_line(capsys):
    code = main(["train", "experiment=wavenet_debug", "train.stepz=5"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "train.stepz" in err and "did you mean 'train.steps'" in err and "batch_size" in err


def test_unknown_config_group_option_lists_choices(capsys):
    code = main(["train", "model=wavenet/huge"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "wavenet/huge" in err and "wavenet/base" in err


def test_train_then_sample_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *DEBUG, f"train.run_dir={run}", "train.steps=2"]) == 0
    out = tmp_path / "samples"
    ckpt = str(run / "checkpoints" / "last.pt")
    assert main(["sample", ckpt, "-o", str(out), "--seconds", "0.05", "--num", "2"]) == 0
    import soundfile as sf

    for i in range(2):
        audio, sr = sf.read(out / f"sample_{i:03d}.wav")
        assert sr == 16000 and len(audio) == 800
        assert (out / f"sample_{i:03d}.png").stat().st_size > 0
    before = (out / "sample_000.wav").read_bytes()
    capsys.readouterr()
    assert main(["sample", ckpt, "-o", str(out), "--seconds", "0.05"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "sample_000.wav").read_bytes() == before


def test_tensorboard_logger_writes_scalars_and_media(tmp_path):
    run = tmp_path / "run"
    train(compose(DEBUG + [f"train.run_dir={run}", "logger=tensorboard", "train.media_seconds=0.05"]))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"audio": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert "loss" in tags["scalars"] and "val_loss" in tags["scalars"]
    assert "audio/sample" in tags["audio"] and "image/sample_spectrogram" in tags["images"]


def test_wandb_logger_runs_disabled_in_tests(tmp_path, monkeypatch):
    # Tests never write wandb runs; mode=disabled still exercises the wrapper end to end.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = tmp_path / "run"
    result = train(compose(DEBUG + [f"train.run_dir={run}", "logger=wandb", "logger.mode=disabled",
                                    "train.media_seconds=0.05"]))
    assert result["step"] == 6 and (run / "metrics.jsonl").exists()


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_max_minutes_ends_the_run_validated_and_checkpointed(tmp_path, clock):
    run = tmp_path / "run"
    # A budget every step exceeds: the run stops after its first step although 1000 are scheduled.
    result = train(compose(DEBUG + [f"train.run_dir={run}", "train.steps=1000", "train.max_minutes=1e-9",
                                    f"train.minutes_clock={clock}"]))
    assert result["step"] == 1
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_loss" in r]
    assert len(val) == 1 and val[0]["step"] == 1 and val[0]["train_minutes"] > 0
    with pytest.raises(WavegenError, match="minutes_clock"):
        Trainer(compose(DEBUG + [f"train.run_dir={tmp_path / 'bad'}", "train.minutes_clock=gpu"]))


def test_input_noise_perturbs_what_the_network_reads_in_training_only():
    from wavegen.tasks.wavenet import WaveNetTask

    task = WaveNetTask(compose(DEBUG + ["train.input_noise=0.05"]))
    batch = {"audio": 0.3 * torch.sin(torch.arange(2 * 256).reshape(2, 256) * 0.05)}
    clean = task.nll(task.model, batch)
    torch.manual_seed(0)
    noisy, _ = task.loss(task.model, batch)
    assert abs(noisy.item() - clean.item()) > 1e-4
    assert task.validate(task.model, [batch])["val_loss"] == pytest.approx(clean.item(), abs=1e-6)
    with pytest.raises(WavegenError, match="input_noise"):
        WaveNetTask(compose(DEBUG + ["train.input_noise=-1"]))
