"""Prompt-copy detection and `wavegen eval tonality`."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegen.cli import main
from wavegen.data.renderer import NoteEvent, render_builtin
from wavegen.audio.metrics import copies_prompt, rms_dbfs

SR = 16000


def piano(pitches: list[int], seconds: float, seed: int) -> torch.Tensor:
    """A few notes from the built-in piano renderer, Tensor[T] at 16 kHz."""
    step = seconds / len(pitches)
    notes = [NoteEvent(onset=i * step, duration=step * 0.9, pitch=p, velocity=80) for i, p in enumerate(pitches)]
    audio = render_builtin(notes, SR, seed=seed, lead_in=0.0, tail=0.2)
    return torch.from_numpy(audio[: int(seconds * SR)].copy())


@pytest.fixture(scope="module")
def prompt() -> torch.Tensor:
    return piano([60, 64, 67, 72], 1.0, seed=0)


def test_a_copied_piece_with_a_gain_change_is_flagged(prompt):
    # 0.6 s of new material, then 0.5 s lifted from the middle of the prompt at -6 dB, then more new material.
    fresh = piano([50, 53, 57, 62, 65], 1.0, seed=1)
    continuation = torch.cat([fresh[:9600], 0.5 * prompt[4000:12000], fresh[9600:]])
    assert copies_prompt(continuation, prompt, SR) >= 0.9


def test_an_unrelated_piano_clip_and_noise_are_not_flagged(prompt):
    other = piano([49, 56, 61, 66, 70, 75], 2.0, seed=2)
    score = copies_prompt(other, prompt, SR)
    assert score < 0.9
    noise = torch.randn(2 * SR, generator=torch.Generator().manual_seed(0)) * 0.1
    assert copies_prompt(noise, prompt, SR) < 0.2
    assert copies_prompt(torch.zeros(SR), prompt, SR) == 0.0  # silence copies nothing


def test_copy_score_equals_a_direct_computation(prompt):
    """The FFT search equals brute force on a short case (every window, every offset)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(900, generator=g)
    y = torch.randn(500, generator=g)
    y[200:300] = 0.3 * x[400:500] + 0.05 * torch.randn(100, generator=g)
    n, hop = 100, 25
    best = 0.0
    for s in range(0, len(y) - n + 1, hop):
        w = y[s : s + n].double()
        for t in range(len(x) - n + 1):
            seg = x[t : t + n].double()
            best = max(best, float(w @ seg / (w.norm() * seg.norm())))
    assert copies_prompt(y, x, sample_rate=100, window_s=1.0, hop_s=0.25) == pytest.approx(best, abs=1e-9)


def test_rms_dbfs():
    assert rms_dbfs(torch.ones(100)) == pytest.approx(0.0)
    assert rms_dbfs(torch.full((100,), 0.1)) == pytest.approx(-20.0)
    assert rms_dbfs(torch.zeros(100)) == -200.0


def test_eval_tonality_prints_and_writes_json(tmp_path, prompt, capsys):
    fresh = piano([50, 53, 57, 62, 65], 1.0, seed=1)
    copy = torch.cat([fresh[:8000], 0.7 * prompt[2000:14000]])
    noise = torch.randn(SR, generator=torch.Generator().manual_seed(1)) * 0.1
    paths = {}
    for name, audio in (("prompt", prompt), ("copy", copy), ("fresh", fresh), ("noise", noise)):
        paths[name] = tmp_path / f"{name}.wav"
        sf.write(paths[name], audio.numpy(), SR, subtype="FLOAT")
    out = tmp_path / "tonality.json"
    code = main(["eval", "tonality", str(paths["copy"]), str(paths["fresh"]), str(paths["noise"]),
                 "--prompt", str(paths["prompt"]), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("COPIES THE PROMPT") == 1 and "copy.wav" in printed
    rows = {r["file"].split("/")[-1]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["copy.wav"]["copies"] and not rows["fresh.wav"]["copies"] and not rows["noise.wav"]["copies"]
    assert rows["fresh.wav"]["peak_energy_share"] > 0.8 > 0.1 > rows["noise.wav"]["peak_energy_share"]
    assert rows["noise.wav"]["chroma_entropy"] > 3.4 > rows["fresh.wav"]["chroma_entropy"]
    assert rows["noise.wav"]["rms_dbfs"] == pytest.approx(-20.0, abs=0.3)


def test_eval_tonality_refuses_bad_input_in_one_line(tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(SR, dtype=np.float32) + 0.1, SR)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = tmp_path / "exists.json"
    out.write_text("{}\n")
    cases = [
        (["eval", "tonality", str(tmp_path / "missing.wav")], "missing.wav"),
        (["eval", "tonality", str(good), "--prompt", str(broken)], "broken.wav"),
        (["eval", "tonality", str(broken)], "broken.wav"),
        (["eval", "tonality", str(good), "--json", str(out)], "--overwrite"),
    ]
    for argv, fragment in cases:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], (argv, err)
    assert out.read_text() == "{}\n"


def test_simplest_prompts_puts_a_single_note_before_a_chord_and_noise():
    from wavegen.generate.continuation import simplest_prompts

    note = piano([60, 60, 60, 60], 1.0, seed=1)  # one pitch class
    chord = piano([60, 63, 66, 69, 70, 73], 1.0, seed=2)  # six pitch classes, a cluster
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1)
    clips = torch.stack([noise, chord, note])
    chosen = simplest_prompts(clips, SR, 2, SR)
    assert torch.equal(chosen[0], note) and torch.equal(chosen[1], chord)


def test_prompts_met_counts_prompts_whose_every_check_holds():
    from wavegen.generate.continuation import prompts_met

    report = {"prompts": [{"checks": {"a": True, "b": True}}, {"checks": {"a": True, "b": False}},
                          {"checks": {"a": True}}]}
    assert prompts_met(report) == 2
