"""docs/api.md runs as a doctest against untrained debug models registered under the shipped names.

The registry is a temporary folder (WAVEGEN_PRETRAINED_DIR); the examples' shapes
are the real models' shapes because the debug models share the audio config. The
working directory is a temporary folder holding ``runs/piano_hierarchy_tiny`` as
``wavegen recipe run`` lays it out, with random debug weights.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from hostile import models as M

DOC = Path(__file__).parent.parent / "docs" / "api.md"


def test_the_api_page_runs(tmp_path, monkeypatch, data_dir):
    import torch

    from wavegen import pretrained
    from wavegen.hierarchy.randomised import build_random_hierarchy
    from wavegen.pretrained.export import export

    monkeypatch.chdir(tmp_path)
    levels = build_random_hierarchy(tmp_path / "levels", "debug")
    for stage, level in (("prior", "prior"), ("ae2", "level2"), ("ae1", "level1"),
                         ("codes_to_mel", "codes_to_mel"), ("vocoder", "vocoder")):
        folder = tmp_path / "runs" / "piano_hierarchy_tiny" / stage / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "last.pt").symlink_to(levels[level])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 sampling: more threads only wait on each other

    registry = tmp_path / "registry"
    registry.mkdir()
    monkeypatch.setenv(pretrained.ENV, str(registry))
    for name, experiment in (("piano-16k", "vocoder_debug"), ("piano-tiny", "wavenet_debug"),
                             ("piano-ae", "autoencoder_debug_mel")):
        export(M.untrained_checkpoint(tmp_path / f"{name}.pt", experiment), name, fp16=(name == "piano-16k"))
    try:
        result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    finally:
        torch.set_num_threads(threads)
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} example(s) of docs/api.md failed (see the output above)"
