"""A WaveNet told where notes are struck (``local_source: onsets``), and warm starts (``train.init_from``)."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import random_wavenet
from wavegen.config import compose
from wavegen.errors import WavegenError
from wavegen.models.wavenet import WaveNet, WaveNetConfig
from wavegen.nn.onsets import onset_strength
from wavegen.tasks.wavenet import shift_right
from wavegen.train.loop import Trainer, train

RATE = 16000
HOP = 64
SMALL = dict(layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16, head="lpc_mol",
             mixtures=3, lpc_order=8, lpc_window=64, lpc_refit=16)
ONSETS = dict(local_channels=1, local_hop=HOP, local_hidden=8, local_source="onsets")


def struck(length: int, at: list[int], pitch: list[float]) -> torch.Tensor:
    """Tensor[length]: notes struck at sample ``at[i]`` (a 2 ms broadband knock, then a decaying partial)."""
    t = torch.arange(length, dtype=torch.float64)
    out = torch.zeros(length, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for start, hz in zip(at, pitch):
        after = (t - start).clamp_min(0)
        on = (t >= start).double()
        out += on * 0.3 * torch.exp(-after / 8000) * torch.sin(2 * math.pi * hz * after / RATE)
        knock = torch.randn(32, generator=g, dtype=torch.float64) * 0.2
        out[start : start + 32] += knock
    return (out + 1e-4 * torch.randn(length, generator=g, dtype=torch.float64)).float()


def test_onset_strength_marks_the_block_a_note_starts_in_and_only_it():
    audio = struck(16000, [3000, 9000], [220.0, 330.0])[None]
    s = onset_strength(audio, HOP)[0]
    assert s.shape == (16000 // HOP,)
    for start in (3000, 9000):
        block = start // HOP
        assert float(s[block : block + 2].max()) > 1.0  # a chord measures 1-3 (module docstring)
    ringing = torch.ones_like(s, dtype=torch.bool)
    for start in (3000, 9000):
        ringing[start // HOP : start // HOP + 6] = False  # the 512-sample frames take 5 blocks to fill
    ringing[:2] = False  # the first blocks rise out of the silence before the clip
    assert float(s[ringing].max()) < 0.3  # sustained and decaying partials are no onsets


def test_onset_strength_of_a_block_reads_no_later_sample():
    audio = struck(8000, [2000], [262.0])[None]
    later = audio.clone()
    later[:, 5000:] += struck(3000, [100], [400.0])
    a, b = onset_strength(audio, HOP)[0], onset_strength(later, HOP)[0]
    first_changed = 5000 // HOP
    assert torch.equal(a[:first_changed], b[:first_changed])
    assert float((a[first_changed:] - b[first_changed:]).abs().max()) > 1.0  # the new note shows


def test_an_onsets_model_starts_as_the_same_model_without_them():
    """Its projection starts at zero: warm-started from piano-tiny, it begins as piano-tiny, whatever the onsets."""
    torch.manual_seed(0)
    plain = random_wavenet(**SMALL)
    told = WaveNet(WaveNetConfig(**SMALL, **ONSETS)).eval()
    missing, unexpected = told.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and set(missing) == {"local_net.weight", "local_net.bias", "local_proj.weight",
                                               "local_proj.bias"}
    audio = struck(1200, [200, 700], [300.0, 450.0])[None]
    inputs = shift_right(plain.head.encode(audio), plain.head.silence(1))
    with torch.no_grad():
        want = plain(inputs)
        for local in (told.onsets(audio), torch.full((1, 1, 1200 // HOP + 1), 2.0)):
            assert torch.equal(told(inputs, local), want)
        torch.nn.init.normal_(told.local_proj.weight, std=0.5)  # once trained, the onsets matter
        assert float((told(inputs, told.onsets(audio)) - want).abs().max()) > 0.01


def test_step_logits_equal_the_full_pass_when_told_onsets():
    torch.manual_seed(1)
    model = random_wavenet(**SMALL, **ONSETS)
    audio = struck(640, [100, 400], [300.0, 500.0])[None]
    local = model.onsets(audio)
    tokens = model.head.encode(audio)
    with torch.no_grad():
        full = model(shift_right(tokens, model.head.silence(1)), local)
    state = model.init_state(1)
    bias = model.frame_bias(1, local)
    _, logits = model.step(state, bias, torch.arange(640) // HOP, torch.zeros(640, 1, 2), forced=tokens,
                           return_logits=True)
    assert (logits.permute(1, 2, 0) - full).abs().max() < 1e-4


@pytest.mark.parametrize("options, message", [
    (dict(local_source="onsets", local_channels=2), "local_source"),
    (dict(local_source="beats", local_channels=1), "local_source"),
])
def test_onsets_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        WaveNet(WaveNetConfig(**SMALL, **options))


def test_configs_without_onsets_are_unchanged():
    assert "local_source" not in WaveNetConfig(**SMALL).to_dict()
    assert WaveNetConfig(**SMALL, **ONSETS).to_dict()["local_source"] == "onsets"


DEBUG = ["experiment=wavenet_debug", "model=wavenet/piano_tiny_debug", "train.deterministic=true",
         "train.threads=1", "train.steps=2", "train.val_every=2", "train.checkpoint_every=2", "train.progress=false"]


def test_a_run_warm_started_from_another_starts_from_its_weights(tmp_path):
    parent = tmp_path / "parent"
    train(compose(DEBUG + [f"train.run_dir={parent}"]))
    ckpt = parent / "checkpoints" / "last.pt"
    from wavegen.checkpoint import load_checkpoint

    ema = load_checkpoint(ckpt)["ema"]
    child = Trainer(compose(DEBUG + [f"train.run_dir={tmp_path / 'child'}", f"+train.init_from={ckpt}",
                                     "model.local_channels=1", "model.local_hop=64", "+model.local_source=onsets"]))
    own, own_ema = child.model.state_dict(), child.ema.state_dict()
    for key, value in ema.items():
        assert torch.equal(own[key], value) and torch.equal(own_ema[key], value), key
    assert float(own["local_proj.weight"].abs().max()) == 0.0
    # A checkpoint that does not fit is refused in one line, naming a weight.
    with pytest.raises(WavegenError, match="does not fit this model: .*layers"):
        Trainer(compose(DEBUG + [f"train.run_dir={tmp_path / 'other'}", f"+train.init_from={ckpt}",
                                 "model.residual_channels=4"]))


def test_the_loop_plan_strikes_in_the_prompts_rhythm_and_none_nowhere():
    from wavegen.generate.onsets import onset_plan

    model = WaveNet(WaveNetConfig(**SMALL, **ONSETS))
    prompt = struck(6400, [1000, 4000], [300.0, 450.0])[None]  # 100 blocks
    heard = model.onsets(prompt)[..., :100]
    loop = onset_plan(model, prompt, 2, 15000, "loop")
    assert loop.shape == (2, 1, -(-21400 // HOP))
    for start in (0, 100, 200, 300):  # the prompt's frames, then its rhythm again every 100 blocks
        assert torch.equal(loop[:1, :, start : start + 100], heard[..., : loop.shape[-1] - start])
    none = onset_plan(model, prompt, 2, 15000, "none")
    assert torch.equal(none[..., :100], loop[..., :100]) and float(none[..., 100:].abs().max()) == 0.0
    assert float(onset_plan(model, None, 1, 640, "none").abs().max()) == 0.0
    pulse = onset_plan(model, None, 1, 24000)[0, 0]  # no prompt: a steady pulse of typical strikes
    struck_blocks = (pulse > 0.5).nonzero()[:, 0].tolist()
    assert struck_blocks[:3] == [0, 1, 2] and 125 in struck_blocks and 250 in struck_blocks
    assert float(pulse[10:120].abs().max()) == 0.0
    with pytest.raises(ValueError, match="loop, none"):
        onset_plan(model, prompt, 1, 100, "beats")
    plain = WaveNet(WaveNetConfig(**SMALL))  # not told onsets: no stream, but a typo is still refused
    assert onset_plan(plain, prompt, 1, 100, "none") is None
    with pytest.raises(ValueError, match="loop, none"):
        onset_plan(plain, prompt, 1, 100, "beats")


def test_a_continuation_strikes_by_the_loop_plan_unless_told_otherwise():
    from wavegen.generate.continuation import continue_prompt
    from wavegen.generate.onsets import onset_plan

    torch.manual_seed(2)
    model = random_wavenet(**SMALL, **ONSETS)
    with torch.no_grad():
        model.local_proj.weight.mul_(10)  # strikes that matter
    prompt = struck(1280, [100, 700], [300.0, 450.0])
    default = continue_prompt(model, prompt, 1280, draws=2, seed=3)
    loop = continue_prompt(model, prompt, 1280, draws=2, seed=3, local=onset_plan(model, prompt[None], 1, 1280)[0])
    none = continue_prompt(model, prompt, 1280, draws=2, seed=3,
                           local=onset_plan(model, prompt[None], 1, 1280, "none")[0])
    assert torch.equal(default, loop)
    assert not torch.equal(default, none)


def test_sampling_a_checkpoint_told_onsets_from_the_command_line(tmp_path, capsys):
    from wavegen.audio.io import write_audio
    from wavegen.cli import main

    run = tmp_path / "run"
    train(compose(DEBUG + [f"train.run_dir={run}", "model.local_channels=1", "model.local_hop=64",
                           "+model.local_source=onsets"]))
    ckpt = str(run / "checkpoints" / "last.pt")
    prompt = tmp_path / "prompt.wav"
    write_audio(prompt, struck(3200, [200, 1800], [300.0, 450.0]).numpy(), RATE)
    for plan in ("loop", "none"):
        assert main(["sample", ckpt, "-o", str(tmp_path / plan), "--prompt", str(prompt), "--seconds", "0.05",
                     "--onsets", plan]) == 0
        assert (tmp_path / plan / "sample_000.wav").exists()
    capsys.readouterr()
    assert main(["sample", ckpt, "-o", str(tmp_path / "bad"), "--seconds", "0.05", "--onsets", "beats"]) != 0
    assert capsys.readouterr().err.strip() == "error: --onsets must be one of loop, none; got 'beats'"
    assert not (tmp_path / "bad" / "sample_000.wav").exists()
