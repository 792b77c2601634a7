"""A kernel build (seconds of silence otherwise) says on stderr when it starts and ends; a warm cache says nothing."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from wavegen.kernels import build


@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
    """cpp_extension stand-in: ``load`` links the library file (as the real one does last) and counts calls."""
    calls = []

    def load(name, sources, build_directory, **kwargs):
        calls.append(name)
        library = Path(build_directory) / f"{name}.so"
        library.write_bytes(b"")
        return str(library)

    monkeypatch.setenv("WAVEGEN_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "_import_cpp_extension", lambda: types.SimpleNamespace(LIB_EXT=".so", load=load))
    return calls


def test_a_cold_build_announces_start_and_end_and_a_warm_one_is_silent(fake_compiler, capsys):
    first = build._build("cpu", verbose=False)
    err = capsys.readouterr().err.splitlines()
    folder = Path(first.library).parent
    assert first.ok and len(err) == 2
    assert err[0] == f"wavegen: compiling the CPU kernels (first use; cached in {folder})…"
    assert re.fullmatch(r"wavegen: compiled the CPU kernels in \d+\.\d s", err[1])

    second = build._build("cpu", verbose=False)
    assert second.ok and fake_compiler == ["wavegen_cpu_ops", "wavegen_cpu_ops"]  # loaded again, silently
    assert capsys.readouterr().err == ""


def test_waiting_on_another_process_build_says_so(fake_compiler, capsys, tmp_path):
    key = build.build_key("cpu", build.cpu_flags())
    folder = tmp_path / "cache" / f"cpu-{key}"
    folder.mkdir(parents=True)
    # Another builder: the flock cpp_extension takes on ``folder/lock`` (flocks on two open files
    # conflict even within one process).
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert build._build("cpu", verbose=False).ok
    finally:
        os.close(fd)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"wavegen: waiting for another process to finish compiling the CPU kernels (in {folder})…"
    assert re.fullmatch(r"wavegen: the CPU kernels are ready \(waited \d+\.\d s\)", err[1])


@pytest.mark.slow
def test_real_first_build_in_an_empty_cache_then_silence(tmp_path):
    """A real compile into an empty WAVEGEN_KERNEL_CACHE, then a second process finds it (no message)."""
    env = {**os.environ, "WAVEGEN_KERNEL_CACHE": str(tmp_path / "kernels"), "OMP_NUM_THREADS": "1"}
    code = "from wavegen.kernels import build; assert build.load('cpu').ok"
    cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    lines = [line for line in cold.stderr.splitlines() if line.startswith("wavegen:")]
    assert lines[0].startswith("wavegen: compiling the CPU kernels (first use; cached in " + str(tmp_path / "kernels"))
    assert re.fullmatch(r"wavegen: compiled the CPU kernels in \d+\.\d s", lines[1])
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0 and "compil" not in warm.stderr, warm.stderr
