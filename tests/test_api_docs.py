"""docs/api.md runs as a doctest against untrained debug models registered under the shipped names.

The registry is a temporary folder (WAVEGEN_PRETRAINED_DIR); the examples' shapes
are the real models' shapes because the debug models share the audio config.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from hostile import models as M

DOC = Path(__file__).parent.parent / "docs" / "api.md"


def test_the_api_page_runs(tmp_path, monkeypatch, data_dir):
    from wavegen import pretrained
    from wavegen.pretrained.export import export

    registry = tmp_path / "registry"
    registry.mkdir()
    monkeypatch.setenv(pretrained.ENV, str(registry))
    for name, experiment in (("piano-16k", "vocoder_debug"), ("piano-tiny", "wavenet_debug"),
                             ("piano-ae", "autoencoder_debug")):
        export(M.untrained_checkpoint(tmp_path / f"{name}.pt", experiment), name, fp16=(name == "piano-16k"))
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} example(s) of docs/api.md failed (see the output above)"
