"""Hostile input: every case in tests/hostile/catalogue.py fails with one clear line and touches nothing.

For each case the real CLI (``wavegen.cli.main``) must exit non-zero, print exactly
one stderr line starting with ``error:`` that names the relevant file, key or
expected value, and leave every file (inputs, earlier outputs, shared
checkpoints) byte-for-byte and mtime-for-mtime as it was, with nothing new
created. A few cases also run as fresh ``python -m wavegen.cli`` processes to
prove no traceback reaches the user there either.
"""

from __future__ import annotations

import pytest

from hostile import procs
from hostile.catalogue import CASES, Shared, Workspace, snapshot
from wavegen.cli import build_parser, main


@pytest.fixture(scope="module")
def shared(tmp_path_factory, data_dir):
    return Shared(tmp_path_factory.mktemp("hostile-shared"))


@pytest.fixture(scope="module")
def commands() -> set[str]:
    """The sub-commands ``wavegen --help`` lists right now (others are still being built)."""
    parser = build_parser()
    return {name for action in parser._subparsers._group_actions for name in action.choices}


def test_the_catalogue_is_large_and_covers_every_kind_of_input():
    assert len(CASES) >= 25
    names = " ".join(CASES)
    for kind in ("audio_", "folder_", "maestro_", "data_check_", "config_", "checkpoint_", "output_exists_",
                 "codes_", "mel_"):
        assert kind in names, kind


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_refused_in_one_line_and_changes_nothing(name, shared, commands, tmp_path, capsys):
    command, make = CASES[name]
    if command not in commands:
        pytest.skip(f"`wavegen {command}` is not registered in wavegen/cli.py yet")
    ws = Workspace(tmp_path / "case", shared)
    argv, expected = make(ws)
    before = snapshot(ws.dir, shared.dir)
    capsys.readouterr()  # forget what building the inputs printed

    code = main([str(a) for a in argv])

    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code != 0, f"accepted: {argv}\nstdout: {out}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr should be one error line, got:\n{err}"
    missing = [fragment for fragment in expected if fragment not in lines[0]]
    assert not missing, f"{lines[0]!r} does not mention {missing}"
    assert "Traceback" not in out + err
    after = snapshot(ws.dir, shared.dir)
    assert after == before, f"files changed: {sorted(set(after) ^ set(before)) or 'contents or mtimes'}"


SUBPROCESS_CASES = ["audio_corrupt_wav", "config_key_typo"]


def test_hostile_input_from_a_fresh_process_shows_no_traceback(shared, commands, tmp_path, data_dir):
    """The real entry point (``python -m wavegen.cli``), two cases run side by side."""
    import subprocess

    runs = []
    for name in SUBPROCESS_CASES:
        command, make = CASES[name]
        ws = Workspace(tmp_path / name, shared)
        argv, expected = make(ws)
        before = snapshot(ws.dir)
        proc = subprocess.Popen(procs.wavegen_cmd(*argv), cwd=tmp_path, env=procs.env(data_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((name, ws, expected, before, proc))
    for name, ws, expected, before, proc in runs:
        out, err = proc.communicate(timeout=240)
        lines = err.strip().splitlines()
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}\n{err}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: stderr was\n{err}"
        assert all(fragment in lines[0] for fragment in expected), f"{name}: {lines[0]}"
        assert "Traceback" not in out + err
        assert snapshot(ws.dir) == before, name


def test_data_check_lists_every_bad_file_exits_1_and_writes_nothing(tmp_path, data_dir, capsys):
    """`wavegen data check` reports (rather than stops at) each broken file of a folder."""
    from hostile import files as F

    folder = tmp_path / "audio"
    F.good_wav(folder / "ok.wav")
    broken = {
        "bad.wav": (F.corrupt_wav, "cannot decode"),
        "cut.wav": (F.truncated_wav, "truncated"),
        "nan.wav": (lambda p: F.float_wav_with(p, float("nan")), "NaN"),
        "slow.wav": (lambda p: F.wav_with_rate(p, 1), "sample rate 1 Hz"),
        "empty.flac": (F.empty_file, "empty (0 bytes)"),
    }
    for name, (make, _) in broken.items():
        make(folder / name)
    before = snapshot(tmp_path)
    capsys.readouterr()

    assert main(["data", "check", str(folder)]) == 1

    out = capsys.readouterr().out
    assert "5 unreadable file(s)" in out
    for name, (_, reason) in broken.items():
        assert any(line.strip().startswith(f"{name}:") and reason in line for line in out.splitlines()), name
    assert snapshot(tmp_path) == before
