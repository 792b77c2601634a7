"""The README's shell commands run as printed.

Every line of the README's fenced ``bash`` blocks is either run here, in a temporary
working directory with ``.venv/bin`` on PATH (as the README's set-up says), or named in
SKIPPED with the reason. The quick commands need what ``make quickstart`` leaves behind:
``wavegen recipe run quickstart --smoke`` (which the README prints) makes it in seconds.
The inputs the README assumes a user has (``intro.wav``, ``~/my_piano``) are made here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_sine

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"

# Commands not run, and why. A line here that the README no longer prints fails the test.
SKIPPED = {
    "make quickstart": "the full job (venv install, data, 300 training steps: minutes); CI runs it, and "
                       "SETUP below runs the same recipe at smoke size",
    "make test": "the whole test suite",
    "make test-slow": "the long tests (tens of minutes)",
    "make test-cuda": "needs a GPU",
    "OUT=/tmp/gpu bash benchmarks/gpu_check.sh": "needs a GPU",
    "wavegen train experiment=quickstart": "300 training steps (minutes on 2 cores); its run folder is checked "
                                           "by test_the_quickstart_experiment_keeps_out_of_the_recipe_root",
    "wavegen train model=wavenet/base data=maestro data.root=/data/maestro-v3.0.0": "needs MAESTRO and a GPU",
}

# Run first, in the same folder: stands in for `make quickstart` (the README prints `--smoke`).
SETUP = ["wavegen recipe run quickstart --smoke"]


def readme_commands(text: str) -> list[str]:
    """Each command line of the fenced bash/sh/shell blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        pending = ""
        for line in block.splitlines():
            line = line.rstrip()
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            line = (pending + line).strip()
            pending = ""
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def without_comment(command: str) -> str:
    return re.sub(r"\s+#\s.*$", "", command).strip()


def test_the_extraction_reads_blocks_and_continuations():
    text = "x\n```bash\nwavegen a   # note\n# only a comment\nwavegen b \\\n    --c\n```\n```python\nno\n```\n"
    assert readme_commands(text) == ["wavegen a   # note", "wavegen b     --c"]
    assert without_comment("wavegen a   # note") == "wavegen a"


def test_every_skipped_command_is_still_in_the_readme():
    printed = {without_comment(c) for c in readme_commands(README.read_text())}
    assert set(SKIPPED) <= printed, f"SKIPPED names commands the README no longer prints: {set(SKIPPED) - printed}"


def test_the_quickstart_experiment_keeps_out_of_the_recipe_root():
    """`wavegen train experiment=quickstart` must not train into runs/quickstart, the recipe's root."""
    from wavegen.config import compose

    run_dir = Path(str(compose(["experiment=quickstart"]).train.run_dir))
    assert run_dir != Path("runs/quickstart") and Path("runs/quickstart") not in run_dir.parents


@pytest.mark.slow
def test_the_readme_commands_run_as_printed(tmp_path, data_dir):
    from wavegen.kernels.build import cache_root

    home = tmp_path / "home"
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        write_sine(home / "my_piano" / f"take_{i}.wav", seconds=2.0, freq=freq)
    work = tmp_path / "work"
    write_sine(work / "intro.wav", seconds=1.5, sample_rate=44100, channels=2)
    env = {**os.environ, "HOME": str(home), "WAVEGEN_DATA": os.environ.get("WAVEGEN_DATA", str(data_dir)),
           "WAVEGEN_KERNEL_CACHE": str(cache_root()), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
           # The README: the `wavegen` command lives in the virtual environment's bin folder.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("WAVEGEN_DEBUG", None)
    commands = [c for c in readme_commands(README.read_text()) if without_comment(c) not in SKIPPED]
    assert len(commands) >= 6
    for command in SETUP + commands:
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-8:])
        assert done.returncode == 0, f"README command failed (exit {done.returncode}): {command}\n{tail}"
    # What the sample lines promise: four 5-second samples, and a continuation of intro.wav.
    assert sorted(p.name for p in (work / "out").glob("*.wav")) == [f"sample_00{i}.wav" for i in range(4)]
    assert len(list((work / "continued").glob("sample_*.wav"))) == 1
