"""benchmarks/draw_noise.py: how often a prompt would miss at 4 draws, from a report with more."""

import json

import pytest
from conftest import benchmark


@pytest.fixture(scope="module")
def draw_noise():
    return benchmark("draw_noise")


def _prompt(rises, chroma=2.4):
    draws = [{"peak_energy_share": 0.8, "chroma_entropy": chroma + r, "rms_dbfs": -16.0, "copy_score": 0.3,
              "copies": False} for r in rises]
    return {"prompt": {"peak_energy_share": 0.95, "chroma_entropy": chroma, "rms_dbfs": -15.0}, "draws": draws,
            "median": {"peak_energy_share": 0.8, "chroma_entropy": chroma + sorted(rises)[len(rises) // 2],
                       "rms_dbfs": -16.0}}


def test_the_share_counts_every_four_draw_subset(draw_noise):
    # Half the draws rise +0.5, half 0: a 4-draw median is above +0.3 only when 3 or 4 of them rise, in
    # (C(8,3)·C(8,1) + C(8,4)) / C(16,4) = 518 / 1820 of the subsets.
    share, failing = draw_noise.miss_share(_prompt([0.5] * 8 + [0.0] * 8))
    assert share == pytest.approx(518 / 1820)
    assert set(failing) == {"chroma_entropy"}
    assert draw_noise.miss_share(_prompt([0.1] * 16)) == (0.0, {})
    with pytest.raises(ValueError, match="at least 4"):
        draw_noise.miss_share(_prompt([0.1] * 3))


def test_the_command_prints_the_expected_misses_and_refuses_a_bad_file(draw_noise, tmp_path, capsys):
    report = {"sets": {"MuseScore": {"prompts": [_prompt([0.5] * 8 + [0.0] * 8), _prompt([0.0] * 16)]}}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert draw_noise.main([str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| MuseScore: expected misses | | | | | 0.28 of 2 | |" in out
    (tmp_path / "bad.json").write_text("{")
    assert draw_noise.main([str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'bad.json'}:")
