"""Pre-emphasis and its inverse (the AR study's pre-emphasis arm, train.pre_emphasis)."""

from __future__ import annotations

import torch

from wavegen.audio.dsp import de_emphasis, pre_emphasis


def test_de_emphasis_inverts_pre_emphasis_and_carries_state_across_a_split():
    x = 0.1 * torch.randn(2, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = pre_emphasis(x, 0.85)
    assert torch.allclose(y[:, 1:], x[:, 1:] - 0.85 * x[:, :-1]) and torch.equal(y[:, 0], x[:, 0])
    assert torch.allclose(de_emphasis(y, 0.85), x, atol=1e-12)
    # A continuation de-emphasised together with its (emphasised) prompt starts from the prompt's state:
    # the same samples as filtering the whole signal at once, while alone it would not be.
    whole = de_emphasis(y, 0.85)
    assert torch.allclose(whole[:, 1000:], x[:, 1000:], atol=1e-12)
    assert not torch.allclose(de_emphasis(y[:, 1000:], 0.85), x[:, 1000:], atol=1e-3)


def test_pre_emphasis_tilts_the_spectrum_up():
    t = torch.arange(16000, dtype=torch.float64) / 16000
    low, high = torch.sin(2 * torch.pi * 100 * t), torch.sin(2 * torch.pi * 4000 * t)
    gain = lambda s: float(pre_emphasis(0.5 * s, 0.85)[100:].std() / (0.5 * s)[100:].std())
    assert gain(low) < 0.2 and gain(high) > 1.2  # |1 - 0.85 e^{-iw}|: 0.15 near DC, ~1.31 at fs/4
    assert torch.equal(pre_emphasis(low, 0.0), low) and torch.equal(de_emphasis(low, 0.0), low)


def test_the_task_learns_the_emphasised_waveform():
    from wavegen.config import compose
    from wavegen.tasks.wavenet import WaveNetTask

    cfg = compose(["model=wavenet/debug", "train.pre_emphasis=0.85"])
    task = WaveNetTask(cfg)
    audio = 0.3 * torch.sin(torch.arange(2048) * 0.05)[None]
    with torch.no_grad():
        emphasised = task.nll(task.model, {"audio": audio, "piece": torch.zeros(1, dtype=torch.long)})
        task.pre_emphasis = 0.0
        plain = task.nll(task.model, {"audio": pre_emphasis(audio, 0.85), "piece": torch.zeros(1, dtype=torch.long)})
    assert torch.allclose(emphasised, plain)
