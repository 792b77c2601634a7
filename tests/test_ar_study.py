"""benchmarks/ar_study.py end to end at smoke scale: trains, scores in WaveNet units, continues, reports."""

import json
import math

import pytest
import torch
from conftest import benchmark


@pytest.mark.slow
def test_ar_study_smoke(tmp_path, data_dir):
    ar_study = benchmark("ar_study")
    from wavegen.config import compose
    from wavegen.data import build_sampler
    from wavegen.generate.continuation import teacher_forced_bits
    from wavegen.models.registry import load_model

    out = tmp_path / "study"
    minutes = 0.04
    code = ar_study.main(["--out", str(out), "--minutes", str(minutes), "--smoke", "--arms", "baseline,mol_lpc32",
                          "--val-every", "3", "--eval-clips", "3", "--prompts", "1", "--draws", "2",
                          "--prompt-seconds", "0.5", "--continue-seconds", "0.3"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["arms"]) == ["baseline", "mol_lpc32"]
    for name, arm in results["arms"].items():
        # Stopped by the CPU-time budget (not the 100,000 scheduled steps), with a learning curve.
        assert 0 < arm["steps"] < 100000
        minutes_seen = [c["cpu_minutes"] for c in arm["curve"]]
        assert len(minutes_seen) >= 2 and minutes_seen == sorted(minutes_seen)
        assert minutes <= minutes_seen[-1] < minutes + 0.2
        assert math.isfinite(arm["nll_bits"]) and math.isfinite(arm["lpc_bits"])
        assert len(arm["continuation"]["rows"]) == 2
        # The script's teacher-forced NLL is the training task's validation NLL: same clips, same number.
        model, _ = load_model(out / name / "checkpoints" / "last.pt", family="wavenet", use_ema=True)
        cfg = compose(ar_study.arm_overrides(name, ar_study.COMMON + ar_study.SMOKE))
        clips = torch.cat([b["audio"] for b in build_sampler(cfg, "validation").validation_batches(
            int(cfg.train.val_batches))])
        assert teacher_forced_bits(model.eval(), clips) == pytest.approx(arm["own_val_bits_per_sample"],
                                                                                   abs=1e-4)
    # μ-law and 16-bit NLLs live on different scales: the LPC baseline is computed in each arm's own units.
    assert results["arms"]["mol_lpc32"]["lpc_bits"] > results["arms"]["baseline"]["lpc_bits"] + 4
    table = (out / "results.md").read_text()
    assert "| baseline |" in table and "| mol_lpc32 |" in table
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
