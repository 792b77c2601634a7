"""The CLI without surprises: file modes, greedy sampling at temperature 0."""

from __future__ import annotations

import os
import stat

import pytest

from conftest import write_sine
from hostile import models as M
from wavegen.cli import main


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("ckpt")
    return {"wavenet": M.untrained_checkpoint(folder / "wavenet.pt", "wavenet_debug"),
            "autoencoder": M.untrained_checkpoint(folder / "autoencoder.pt", "autoencoder_debug")}


def test_code_files_get_the_mode_of_every_other_output(checkpoints, tmp_path):
    wav = write_sine(tmp_path / "in.wav", seconds=0.05)
    old = os.umask(0o022)
    try:
        assert main(["encode", str(checkpoints["autoencoder"]), str(wav), "-o", str(tmp_path / "a.codes"),
                     "--device", "cpu"]) == 0
        assert main(["decode", str(checkpoints["autoencoder"]), str(tmp_path / "a.codes"), "-o",
                     str(tmp_path / "b.wav"), "--device", "cpu", "--backend", "reference"]) == 0
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("a.codes", "b.wav")}
    assert modes == {"a.codes": 0o644, "b.wav": 0o644}  # 0666 minus the umask, not mkstemp's 0600


def test_temperature_0_is_greedy_not_refused(checkpoints, tmp_path):
    outs = []
    for seed in (1, 2):
        out = tmp_path / f"s{seed}"
        assert main(["sample", str(checkpoints["wavenet"]), "-o", str(out), "--seconds", "0.01", "--seed", str(seed),
                     "--temperature", "0", "--backend", "reference", "--device", "cpu"]) == 0
        outs.append((out / "sample_000.wav").read_bytes())
    assert outs[0] == outs[1]  # no noise is drawn: the seed changes nothing


def test_one_thread_policy_and_a_negative_count_is_one_line(checkpoints, tmp_path, capsys, monkeypatch):
    import torch

    from wavegen.commands import apply_threads, usable_cores

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # an explicit choice is kept
        torch.set_num_threads(1)
        assert apply_threads(0) == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert 1 <= apply_threads(0) == torch.get_num_threads() <= usable_cores() == len(os.sched_getaffinity(0))
        assert apply_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    wav = write_sine(tmp_path / "in.wav", seconds=0.05)
    assert main(["encode", str(checkpoints["autoencoder"]), str(wav), "-o", str(tmp_path / "x.codes"),
                 "--threads", "-2"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --threads must be 0 (every idle usable core) or more, got -2"]
    assert not (tmp_path / "x.codes").exists()
