"""The tuning probes behind docs/ar_study section 8: their table, their arms, their tail figures."""

import json

import pytest
import torch
from conftest import benchmark


@pytest.fixture(scope="module")
def probes():
    return benchmark("simple_harmony_probe"), benchmark("residual_tails")


def _row(prompt_chroma, chroma, rms, prompt_rms, met, peak=0.8):
    return {"prompt_chroma": prompt_chroma, "chroma": chroma, "peak_share": peak, "rms_dbfs": rms,
            "prompt_rms_dbfs": prompt_rms, "copy": 0.3, "met": met}


def test_table_groups_runs_by_their_prompts_and_reports_the_worst(probes, tmp_path):
    probe, _ = probes
    set_a = [_row(2.3, 2.8, -14, -15, False), _row(2.5, 2.4, -60, -16, False, peak=0.6)]
    set_b = [_row(2.1, 2.2, -20, -15, True)]
    (tmp_path / "one.json").write_text(json.dumps({"plain": {"prompts": set_a, "prompts_met": 0}}))
    (tmp_path / "two.json").write_text(json.dumps({"top_p_0.97": {"prompts": set_a, "prompts_met": 1},
                                                   "plain": {"prompts": set_b, "prompts_met": 1}}))
    lines = probe.table([str(tmp_path / "one.json"), str(tmp_path / "two.json")]).splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    # Rows by set, then arm; set 1 is the first prompt list met, whichever file or arm holds it.
    assert [(r[0], r[1], r[2]) for r in rows] == [("plain", "set 1", "0/2"), ("top_p_0.97", "set 1", "1/2"),
                                                 ("plain", "set 2", "1/1")]
    # worst rise, median rise, min and median peak share (0.6 and the default 0.8), levels
    assert rows[0][3:] == ["+0.50", "+0.20", "0.60", "0.70", "+1.0", "-44.0"]
    assert rows[2][7] == ""  # one prompt: no second-lowest level


def test_table_pairs_each_prompt_with_a_baseline_run_on_the_same_prompts(probes, tmp_path):
    probe, _ = probes
    prompts = [_row(2.3, 2.5, -14, -15, True), _row(2.5, 2.4, -16, -16, True)]
    base = [_row(2.3, 2.8, -14, -15, False, peak=0.5), _row(2.5, 2.5, -16, -16, True)]
    (tmp_path / "new.json").write_text(json.dumps({"shipped": {"prompts": prompts, "prompts_met": 2},
                                                   "plain": {"prompts": prompts[:1], "prompts_met": 1}}))
    (tmp_path / "base.json").write_text(json.dumps({"shipped": {"prompts": base, "prompts_met": 1}}))
    lines = probe.table([str(tmp_path / "new.json")], [str(tmp_path / "base.json")]).splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert lines[0].endswith("chroma vs baseline, paired | peak share vs baseline, paired |")
    # Prompt by prompt: 2.5 - 2.8 and 2.4 - 2.5, mean -0.20, SD 0.10; peak shares 0.8 - 0.5 and 0.8 - 0.8,
    # mean +0.15; no baseline ran the one-prompt set.
    assert len(rows) == 2 and rows[0][:2] == ["shipped", "set 1"] and rows[0][-2:] == ["-0.20 (SD 0.10)", "+0.15"]
    assert rows[1][:2] == ["plain", "set 2"] and rows[1][-2:] == ["", ""]
    assert "paired" not in probe.table([str(tmp_path / "new.json")]).splitlines()[0]


def test_arms_are_checked_by_name(probes):
    import argparse

    probe, _ = probes
    for arm in ("plain", "shipped", "network_off", "top_p_0.97", "temperature_0.8", "lpc_window_3072"):
        assert probe.arm_kind(arm) == arm
    for arm in ("default", "top_p_", "lpc_window_x", "temperature"):
        with pytest.raises(argparse.ArgumentTypeError, match="unknown arm"):
            probe.arm_kind(arm)


def test_residual_tails_takes_only_sampling_arms_the_model_s_own_defaults_among_them(probes):
    import argparse

    _, tails = probes
    for arm in ("plain", "shipped", "top_p_0.97", "temperature_0.8"):
        assert tails.arm_kind(arm) == arm
    for arm in ("network_off", "lpc_window_3072", "top_p_"):
        with pytest.raises(argparse.ArgumentTypeError, match="unknown arm"):
            tails.arm_kind(arm)
    with pytest.raises(SystemExit):
        tails.main(["--out", "x.json", "--arms", "network_off"])


def test_an_arm_names_its_sampling_controls(probes):
    probe, _ = probes
    shipped = {"temperature": 1.0, "top_p": 0.97}
    assert probe.sampling_controls("top_p_0.9", shipped) == {"top_p": 0.9}
    assert probe.sampling_controls("mixture_temperature_0.5", shipped) == {"mixture_temperature": 0.5}
    assert probe.sampling_controls("shipped", shipped) == shipped
    assert probe.sampling_controls("plain", shipped) == {} == probe.sampling_controls("lpc_window_3072", shipped)


def test_table_mode_needs_no_model(probes, tmp_path, capsys):
    probe, _ = probes
    (tmp_path / "r.json").write_text(json.dumps({"plain": {"prompts": [_row(2.3, 2.4, -15, -15, True)],
                                                           "prompts_met": 1}}))
    assert probe.main(["--table", str(tmp_path / "r.json")]) == 0
    assert "| plain | set 1 | 1/1 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        probe.main([])  # neither --out nor --table


def test_tail_figures_count_surprising_samples(probes):
    _, tails = probes
    bits = torch.tensor([1.0, 2.0, 9.0, 13.0] * 25, dtype=torch.float64)
    figures = tails.tail_figures(bits)
    assert figures == {"mean_bits": pytest.approx(6.25), "above_8": pytest.approx(0.5), "above_12": pytest.approx(0.25)}


def test_arms_combine_and_onset_arms_say_where_to_strike(probes):
    import argparse

    import torch

    from wavegen.generate.onsets import onset_plan
    from wavegen.models.wavenet import WaveNet, WaveNetConfig

    probe, _ = probes
    assert probe.arm_kind("onsets_loop+top_p_0.97") == "onsets_loop+top_p_0.97"
    for arm in ("onsets_beats", "top_p_0.97+bogus"):
        with pytest.raises(argparse.ArgumentTypeError, match="unknown arm"):
            probe.arm_kind(arm)
    shipped = {"temperature": 1.0, "top_p": 0.97}
    assert probe.sampling_controls("onsets_real+top_p_0.9", shipped) == {"top_p": 0.9}
    assert probe.sampling_controls("shipped+temperature_0.8", shipped) == {"temperature": 0.8, "top_p": 0.97}
    net = WaveNet(WaveNetConfig(layers=2, dilation_cycle=2, residual_channels=4, gate_channels=8, skip_channels=8,
                                head="lpc_mol", mixtures=2, lpc_order=4, lpc_window=32, lpc_refit=8,
                                local_channels=1, local_hop=64, local_hidden=4, local_source="onsets"))
    t = torch.arange(3200) / 16000
    clips = torch.stack([torch.sin(2 * torch.pi * 300 * t) * (t > 0.02) * (1 + (t > 0.15)),
                         torch.sin(2 * torch.pi * 450 * t) * (t > 0.05)]) * 0.3
    real = probe.onset_stream(net, clips, 1280, "real")
    assert torch.equal(real, net.onsets(clips))
    assert float(real[..., 20:].max()) > 0.5  # the real continuation's strike (t = 0.15 s, block 37)
    none = probe.onset_stream(net, clips, 1280, "none")
    assert torch.equal(none[..., :20], real[..., :20]) and float(none[..., 20:].abs().max()) == 0.0
    assert torch.equal(probe.onset_stream(net, clips, 1280, "loop"), onset_plan(net, clips[:, :1280], 2, 1920))


def test_capped_and_uncut_loops_and_strike_gain_arms_change_only_the_plan_after_the_prompt(probes):
    import argparse

    from wavegen.generate.onsets import STRIKE
    from wavegen.models.wavenet import WaveNet, WaveNetConfig

    probe, _ = probes
    for arm in ("onsets_loop_capped+top_p_0.97", "strike_gain_0.6", "strike_gain_1.5+onsets_loop",
                "onsets_loop_uncut+shipped"):
        assert probe.arm_kind(arm) == arm
    with pytest.raises(argparse.ArgumentTypeError, match="unknown arm"):
        probe.arm_kind("strike_gain_")
    net = WaveNet(WaveNetConfig(layers=2, dilation_cycle=2, residual_channels=4, gate_channels=8, skip_channels=8,
                                head="lpc_mol", mixtures=2, lpc_order=4, lpc_window=32, lpc_refit=8,
                                local_channels=1, local_hop=64, local_hidden=4, local_source="onsets"))
    t = torch.arange(3840) / 16000
    clips = sum(torch.sin(2 * torch.pi * 300 * h * t) / h for h in range(1, 9))[None] * 0.3  # a cut clip
    loop = probe.onset_stream(net, clips, 1280, "loop")
    capped = probe.onset_stream(net, clips, 1280, "loop_capped")
    assert float(loop[0, 0, 20:27].max()) > 2.0  # the repeat of the cut's edge: far above a typical strike
    assert torch.equal(capped[..., :20], loop[..., :20])  # the prompt's own frames are what it heard
    for start in (20, 40):
        assert torch.equal(capped[0, 0, start : start + 7], torch.minimum(loop[0, 0, start : start + 7],
                                                                          torch.tensor(STRIKE)))
        assert torch.equal(capped[..., start + 7 : start + 20], loop[..., start + 7 : start + 20])
    uncut = probe.onset_stream(net, clips, 1280, "loop_uncut")
    assert torch.equal(uncut[..., :20], loop[..., :20])
    for start in (20, 40):  # each repeat's first 8 blocks (512-sample frames reaching before the cut): no strike
        assert float(uncut[..., start : start + 8].abs().max()) == 0.0
        assert torch.equal(uncut[..., start + 8 : start + 20], loop[..., start + 8 : start + 20])
    weak = probe.arm_plan(net, "strike_gain_0.5+top_p_0.97", clips, 1280)
    assert torch.equal(weak[..., :20], loop[..., :20]) and torch.allclose(weak[..., 20:], loop[..., 20:] * 0.5)
    assert torch.equal(probe.arm_plan(net, "onsets_loop_capped+strike_gain_1", clips, 1280), capped)
    assert probe.arm_plan(net, "top_p_0.97", clips, 1280) is None  # the model's default plan


def test_a_tuning_soundfont_needs_the_tuning_source_and_a_file(probes, tmp_path):
    probe, _ = probes
    for argv in (["--soundfont", str(tmp_path / "missing.sf2"), "--source", "tuning"],
                 ["--soundfont", __file__, "--source", "train"]):
        with pytest.raises(SystemExit):
            probe.main(["--out", str(tmp_path / "x.json")] + argv)
    assert not (tmp_path / "x.json").exists()


def test_chroma_rise_sources_splits_partials_from_the_noise_between_them():
    from wavegen.audio.metrics import chroma_entropy

    sources = benchmark("chroma_rise_sources")
    rate = 16000
    t = torch.arange(rate) / rate
    tone = torch.sin(2 * torch.pi * 440.0 * t)  # A: pitch class 9
    noisy = tone + 0.03 * torch.randn(rate, generator=torch.Generator().manual_seed(0))
    split = sources.split_entropy(noisy, rate)
    assert split["all"] == pytest.approx(chroma_entropy(noisy, rate), abs=1e-4)  # the acceptance figure itself
    assert split["peaks"] < 1.5 and split["floor"] > split["peaks"] + 0.8  # the partial: a class; the rest: spread
    assert max(range(12), key=lambda c: split["peak_classes"][c]) == 9
    assert sources.end_classes(noisy, rate)[0] == 9


def test_chroma_rise_sources_table_counts_the_draws_that_leave_the_prompts_notes(tmp_path):
    sources = benchmark("chroma_rise_sources")
    prompt = {"all": 2.0, "peaks": 1.8, "floor": 3.0}
    draws = [{"all": 2.5, "peaks": 2.4, "floor": 3.1, "strays": True},
             {"all": 2.1, "peaks": 1.8, "floor": 3.3, "strays": False},
             {"all": 2.2, "peaks": 1.9, "floor": 3.2, "strays": False}]
    (tmp_path / "r.json").write_text(json.dumps({"prompts": [{"prompt": prompt, "draws": draws}]}))
    row = [c.strip() for c in sources.table([tmp_path / "r.json"]).splitlines()[2].strip("|").split("|")]
    assert row == ["r.json", "3", "+0.20", "+0.10", "+0.20", "+0.20", "+0.30", "1/3", "+0.50", "+0.15"]
    assert sources.main(["--table", str(tmp_path / "missing.json")]) == 2
