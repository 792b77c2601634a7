"""`wavegen data prompt`: a clip of a split, the loudest stretch of the file, never overwritten silently."""

from wavegen.audio.io import read_audio
from wavegen.cli import main


def test_prompt_is_the_loudest_stretch_of_a_validation_piece(tmp_path, data_dir, capsys):
    out = tmp_path / "prompt.wav"
    assert main(["data", "prompt", "data=embedded_debug", "-o", str(out), "--seconds", "0.5"]) == 0
    clip = read_audio(out, 16000)
    assert clip.shape == (8000,) and float(clip.abs().max()) > 0.05  # music, not a pause
    capsys.readouterr()
    for argv, message in [(["-o", str(out)], "already exists"),
                          (["-o", str(tmp_path / "p.mp3")], "must be a .wav"),
                          (["-o", str(tmp_path / "q.wav"), "--index", "99"], "--index must be in"),
                          (["-o", str(tmp_path / "r.wav"), "--split", "nope"], "unknown split")]:
        assert main(["data", "prompt", "data=embedded_debug", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
