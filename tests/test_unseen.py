"""The held-out pianos: every installed SoundFont but the training data's FluidR3."""

from __future__ import annotations

import numpy as np
import pytest

from wavegen.data import unseen
from wavegen.errors import WavegenError


def test_unseen_soundfonts_leave_out_the_training_piano(tmp_path):
    for name in ("FluidR3_GM.sf2", "TimGM6mb.sf2", "Other.sf3", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [f.name for f in unseen.unseen_soundfonts(tmp_path)] == ["Other.sf3", "TimGM6mb.sf2"]


def test_unseen_sets_refuse_in_one_line_without_an_unseen_piano(monkeypatch):
    monkeypatch.setattr(unseen, "unseen_soundfonts", lambda folder="/usr/share/sounds": [])
    with pytest.raises(WavegenError, match="no SoundFont other than FluidR3"):
        unseen.unseen_sets(1, 16000, 0.5)


@pytest.mark.slow
@pytest.mark.skipif(not unseen.unseen_soundfonts(), reason="no unseen SoundFont installed")
def test_unseen_sets_render_each_piece_on_each_unseen_piano():
    sets = unseen.unseen_sets(1, 16000, 0.5)
    assert sorted(sets) == sorted(f.stem for f in unseen.unseen_soundfonts())
    piece = unseen.unseen_pieces(1)[0]
    for font in unseen.unseen_soundfonts():
        (clip,) = sets[font.stem]
        assert clip.shape == (8000,) and np.array_equal(clip, unseen.render_unseen(piece, 16000, 0.5, 5.0, font))
        assert np.abs(clip).max() > 0.01  # the piece sounds
