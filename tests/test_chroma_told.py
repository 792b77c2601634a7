"""A WaveNet told which pitch classes sound (``local_source: onsets_chroma``): the feature, the model, and
a warm start from an onsets model that gains the 12 channels."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import random_wavenet
from wavegen.config import compose
from wavegen.models.wavenet import WaveNet, WaveNetConfig
from wavegen.nn.onsets import onset_strength, pitch_classes, sounding_chroma
from wavegen.tasks.wavenet import shift_right
from wavegen.train.loop import Trainer, train

RATE = 16000
HOP = 64
SMALL = dict(layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16, head="lpc_mol",
             mixtures=3, lpc_order=8, lpc_window=64, lpc_refit=16)
CHROMA = dict(local_channels=13, local_hop=HOP, local_hidden=8, local_source="onsets_chroma")


def tone(length: int, start: int, hz: float, harmonics: int = 6) -> torch.Tensor:
    """Tensor[length]: a harmonic tone (partials at 1/h) from sample ``start``."""
    t = torch.arange(length, dtype=torch.float64)
    wave = sum(torch.sin(2 * math.pi * hz * h * t / RATE) / h for h in range(1, harmonics + 1))
    return (0.1 * wave * (t >= start)).float()


def test_pitch_classes_of_bins_follow_equal_temperament():
    classes = pitch_classes(RATE)
    freqs = torch.fft.rfftfreq(512, 1 / RATE)
    assert int(classes[round(1760 / 31.25)]) == 0  # A6 (1760 Hz, bin 56.3) is an A
    assert int(classes[round(1046.5 / 31.25)]) == 3  # C6: three semitones above A
    assert bool((classes[(freqs < 1000) | (freqs > 5000)] == -1).all())  # outside the resolved band


def test_sounding_chroma_names_the_classes_of_the_notes_that_sound():
    audio = tone(16000, 4000, 261.63)[None]  # C4: its harmonics above 1 kHz are C, E, G, A#
    chroma = sounding_chroma(audio, HOP, RATE)[0]
    assert chroma.shape == (12, 16000 // HOP)
    assert float(chroma[:, : 4000 // HOP].abs().max()) == 0.0  # silence: nothing sounds
    held = chroma[:, 150:].mean(-1)  # well after the onset: the frame is full of the tone
    assert abs(float(chroma[:, 150:].sum(0).mean()) - 1.0) < 0.01  # loud frames: shares of about 1
    assert int(held.argmax()) in (3, 7, 10) and float(held[[3, 7, 10]].sum()) > 0.7  # C, E, G


def test_sounding_chroma_of_a_block_reads_no_later_sample():
    audio = tone(8000, 1000, 261.63)[None]
    later = audio.clone()
    later[:, 5000:] += tone(3000, 0, 370.0)[None]
    a, b = sounding_chroma(audio, HOP, RATE)[0], sounding_chroma(later, HOP, RATE)[0]
    first_changed = 5000 // HOP
    assert torch.equal(a[:, :first_changed], b[:, :first_changed])
    assert float((a[:, first_changed + 8] - b[:, first_changed + 8]).abs().max()) > 0.05  # F#4 now sounds too


def test_a_chroma_model_reads_onsets_then_chroma_and_steps_as_it_runs_whole():
    torch.manual_seed(1)
    model = random_wavenet(**SMALL, **CHROMA)
    audio = tone(640, 100, 440.0)[None] + tone(640, 400, 660.0)[None]
    local = model.onsets(audio)
    assert local.shape == (1, 13, 10)
    assert torch.equal(local[:, 0], onset_strength(audio, HOP))
    assert torch.equal(local[:, 1:], sounding_chroma(audio, HOP, 16000))
    tokens = model.head.encode(audio)
    with torch.no_grad():
        full = model(shift_right(tokens, model.head.silence(1)), local)
    _, logits = model.step(model.init_state(1), model.frame_bias(1, local), torch.arange(640) // HOP,
                           torch.zeros(640, 1, 2), forced=tokens, return_logits=True)
    assert (logits.permute(1, 2, 0) - full).abs().max() < 1e-4


@pytest.mark.parametrize("channels", [1, 12])
def test_a_chroma_model_needs_13_channels(channels):
    with pytest.raises(ValueError, match="onsets_chroma \\(13\\)"):
        WaveNet(WaveNetConfig(**SMALL, **{**CHROMA, "local_channels": channels}))


def test_the_loop_plan_carries_every_channel_and_the_pulse_tells_no_pitch():
    from wavegen.generate.onsets import onset_plan

    model = WaveNet(WaveNetConfig(**SMALL, **CHROMA))
    prompt = tone(6400, 1000, 440.0)[None]
    heard = model.onsets(prompt)[..., :100]
    loop = onset_plan(model, prompt, 2, 6400)
    assert loop.shape == (2, 13, 200) and torch.equal(loop[:1, :, 100:], heard)
    pulse = onset_plan(model, None, 1, 16000)
    assert float(pulse[:, 0].max()) > 1.0 and float(pulse[:, 1:].abs().max()) == 0.0


DEBUG = ["experiment=wavenet_debug", "model=wavenet/piano_tiny_debug", "train.deterministic=true",
         "train.threads=1", "train.steps=2", "train.val_every=2", "train.checkpoint_every=2", "train.progress=false"]


def test_an_onsets_run_warm_starts_a_chroma_model_that_begins_as_it(tmp_path):
    parent = tmp_path / "parent"
    onsets = ["model.local_channels=1", "model.local_hop=64", "+model.local_source=onsets"]
    train(compose(DEBUG + [f"train.run_dir={parent}"] + onsets))
    ckpt = parent / "checkpoints" / "last.pt"
    from wavegen.checkpoint import load_checkpoint

    ema = load_checkpoint(ckpt)["ema"]
    child = Trainer(compose(DEBUG + [f"train.run_dir={tmp_path / 'child'}", f"+train.init_from={ckpt}",
                                     "model.local_channels=13", "model.local_hop=64",
                                     "+model.local_source=onsets_chroma"]))
    own = child.model.state_dict()
    assert torch.equal(own["local_net.weight"][:, :1], ema["local_net.weight"])
    assert float(own["local_net.weight"][:, 1:].abs().max()) == 0.0  # the 12 new channels are read at zero
    for key, value in ema.items():
        if key != "local_net.weight":
            assert torch.equal(own[key], value), key
    # So it computes what its parent did, whatever chroma it is told.
    parent_model = Trainer(compose(DEBUG + [f"train.run_dir={parent}"] + onsets)).model.eval()
    parent_model.load_state_dict(ema)
    audio = tone(2048, 300, 440.0)[None]
    inputs = shift_right(parent_model.head.encode(audio), parent_model.head.silence(1))
    with torch.no_grad():
        want = parent_model(inputs, parent_model.onsets(audio))
        got = child.model.eval()(inputs, child.model.onsets(audio))
    assert torch.equal(got, want)
