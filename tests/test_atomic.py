"""wavegen.atomic: the one primitive every output goes through."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import wavegen
from wavegen import atomic
from wavegen.atomic import atomic_path, atomic_write, publish, publish_link, temp_file_for


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != name)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old contents")

    def writer(f):
        f.write(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, writer)
    assert target.read_bytes() == b"old contents"
    assert _leftovers(tmp_path, "out.bin") == []


def test_a_failing_block_leaves_no_file_at_all_when_there_was_none(tmp_path):
    target = tmp_path / "sub" / "lib.so"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert not target.exists()
    assert _leftovers(tmp_path / "sub", "lib.so") == []


def test_writes_replace_the_old_file_with_the_mode_open_would_give(tmp_path):
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    assert atomic_write(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert atomic_write(target, lambda f: f.write(b"newer")) == target
    assert target.read_bytes() == b"newer"
    assert target.stat().st_mode & 0o777 == atomic.new_file_mode()  # not mkstemp's 0600
    assert _leftovers(tmp_path, "out.json") == []


def test_no_overwrite_refuses_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "a.wav"
    tmp = temp_file_for(target)
    tmp.write_bytes(b"mine")
    target.write_bytes(b"someone else's")  # appeared after the caller's existence check
    with pytest.raises(FileExistsError):
        publish(tmp, target, overwrite=False)
    assert target.read_bytes() == b"someone else's"
    assert _leftovers(tmp_path, "a.wav") == []
    atomic_write(tmp_path / "b.wav", b"fresh", overwrite=False)
    assert (tmp_path / "b.wav").read_bytes() == b"fresh"


def test_every_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "x", b"data")
    assert events[:2] == ["fsync", "replace"]  # the data, then the rename (then the folder, where allowed)


def test_publish_link_points_a_second_name_at_the_file(tmp_path):
    step = tmp_path / "step_00000002.pt"
    atomic_write(step, b"weights")
    (tmp_path / "last.pt").write_bytes(b"older weights")
    publish_link(step, tmp_path / "last.pt")
    assert os.path.samefile(step, tmp_path / "last.pt")
    assert _leftovers(tmp_path, "last.pt") == ["step_00000002.pt"]


# A rename outside wavegen/atomic.py is a seventh atomic-write helper in the making
# (or a non-atomic write): route it through atomic_write / atomic_path / publish.
_RENAMES = re.compile(r"\bos\.(replace|rename|renames)\s*\(|\bshutil\.move\s*\(|\.rename\s*\("
                      r"|\b\w*(tmp|temp|partial)\w*\.replace\s*\(")


def test_no_rename_outside_the_atomic_module():
    package = Path(wavegen.__file__).parent
    offenders = []
    benchmarks = package.parent / "benchmarks"  # a checkout's scripts write results too
    for source in sorted(package.rglob("*.py")) + sorted(benchmarks.glob("*.py")):
        if source == package / "atomic.py":
            continue
        for number, line in enumerate(source.read_text().splitlines(), 1):
            if _RENAMES.search(line):
                offenders.append(f"{source.relative_to(package.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_rename_check_catches_each_form():
    for line in ["os.replace(tmp, path)", "os.rename(a, b)", "shutil.move(a, b)", "tmp.rename(path)",
                 "partial.replace(target)", "tmp_json.replace(p)"]:
        assert _RENAMES.search(line), line
    for line in ['name.replace("-", "_")', "dataclasses.replace(cfg, x=1)", "label.replace(suffix, '')"]:
        assert not _RENAMES.search(line), line
