"""The hierarchy: streaming levels equal whole-clip decoding, generate writes exact, complete outputs,
the recipes form the right stage graph, and the tiny recipe runs end to end."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegen.cli import main
from wavegen.errors import WavegenError
from wavegen.hierarchy import streaming as S
from wavegen.hierarchy.assembly import generate_to_files, load_hierarchy
from wavegen.hierarchy.randomised import build_random_hierarchy
from wavegen.models.wavenet import WaveNet, WaveNetConfig
from wavegen.recipes import load_recipe, run_recipe, stage_argv


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def debug_hierarchy(tmp_path_factory):
    return build_random_hierarchy(tmp_path_factory.mktemp("hierarchy"), "debug")


# ----------------------------------------------------------------------------- streaming levels


def _chunks(x: torch.Tensor, size: int):
    return (x[..., i : i + size] for i in range(0, x.shape[-1], size))


@pytest.mark.parametrize("chunk_frames", [1, 3])
def test_streamed_conditioning_equals_whole_clip(chunk_frames):
    torch.manual_seed(0)
    net = WaveNet(WaveNetConfig(layers=4, dilation_cycle=4, residual_channels=8, gate_channels=16, skip_channels=16,
                                classes=25, companding="none", local_channels=2, local_hop=5, local_kernel=3)).eval()
    features = torch.rand(1, 2, 9) * 2 - 1
    steps = 43  # not a multiple of the hop: the last frame is used in part
    whole = torch.cat(list(S.sample_conditioned(net, [features], steps, generator=torch.Generator().manual_seed(3),
                                                chunk_frames=1000)), dim=1)
    # Upstream delivers 2 frames at a time, the sampler asks for chunk_frames at a time.
    streamed = torch.cat(list(S.sample_conditioned(net, _chunks(features, 2), steps,
                                                   generator=torch.Generator().manual_seed(3),
                                                   chunk_frames=chunk_frames)), dim=1)
    assert streamed.shape == (1, steps) and torch.equal(streamed, whole)


def test_stream_fails_clearly_when_the_level_above_runs_dry():
    net = WaveNet(WaveNetConfig(layers=2, dilation_cycle=2, residual_channels=4, gate_channels=8, skip_channels=8,
                                classes=5, companding="none", local_channels=1, local_hop=4)).eval()
    with pytest.raises(WavegenError, match="produced 2 frames; 3 are needed"):
        list(S.sample_conditioned(net, [torch.zeros(1, 1, 2)], 12))


def test_streamed_codes_to_mel_equals_whole_clip(debug_hierarchy):
    from wavegen.models.registry import load_model

    model, _ = load_model(debug_hierarchy["codes_to_mel"])
    num_samples = 16 * 97 + 5
    codes = torch.randint(0, 5, (1, 3, model.num_code_frames(num_samples)))
    whole = model(codes, model.num_mel_frames(num_samples))
    streamed = torch.cat(list(S.codes_to_mel(model, _chunks(codes, 7), num_samples, chunk_frames=11)), dim=-1)
    assert streamed.shape == whole.shape == (1, model.cfg.n_mels, math.ceil(num_samples / 256) + 1)
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hop", [64, 256, 512])
def test_codes_to_mel_streams_for_code_hops_shorter_and_longer_than_the_mel_hop(hop):
    from wavegen.models.codes_to_mel import CodesToMel, CodesToMelConfig

    torch.manual_seed(0)
    model = CodesToMel(CodesToMelConfig(levels=[5, 5], hop=hop, n_mels=8, width=8, dilations=[1, 2])).eval()
    num_samples = 256 * 23 + 7
    codes = torch.randint(0, 5, (1, 2, model.num_code_frames(num_samples)))
    whole = model(codes, model.num_mel_frames(num_samples))
    # Each mel frame reads the code frame its centre sample falls in.
    centres = torch.arange(whole.shape[-1]) * 256
    expected = model.per_frame(model.code_values(codes))[..., torch.clamp(centres // hop, max=codes.shape[-1] - 1)]
    torch.testing.assert_close(whole, expected)
    streamed = torch.cat(list(S.codes_to_mel(model, _chunks(codes, 3), num_samples, chunk_frames=5)), dim=-1)
    torch.testing.assert_close(streamed, whole, rtol=1e-5, atol=1e-5)


def test_codes_to_mel_refuses_hops_that_do_not_divide():
    from wavegen.models.codes_to_mel import CodesToMelConfig

    with pytest.raises(WavegenError, match="divide one another"):
        CodesToMelConfig.from_mapping({"levels": [5], "hop": 96, "mel_hop": 256})


def test_streamed_vocoder_equals_the_chunked_vocoder(debug_hierarchy):
    from wavegen.diffusion.samplers import vocode_stream
    from wavegen.diffusion.schedules import default_schedule
    from wavegen.models.registry import load_model

    vocoder, _ = load_model(debug_hierarchy["vocoder"])
    mel = torch.randn(1, vocoder.cfg.n_mels, 23) - 6
    reference = torch.cat(list(vocode_stream(vocoder, mel, default_schedule(3), torch.Generator().manual_seed(1),
                                             chunk_frames=8, overlap_frames=4)), dim=1)
    streamed = torch.cat(list(vocode_stream(vocoder, _chunks(mel, 3), default_schedule(3), torch.Generator().manual_seed(1),
                                            chunk_frames=8, overlap_frames=4, num_frames=23, num_samples=22 * 256)), dim=1)
    torch.testing.assert_close(streamed, reference)
    # Asking for fewer samples trims the end exactly.
    short = torch.cat(list(vocode_stream(vocoder, _chunks(mel, 3), default_schedule(3), torch.Generator().manual_seed(1),
                                         chunk_frames=8, overlap_frames=4, num_frames=23, num_samples=1000)), dim=1)
    torch.testing.assert_close(short, reference[:, :1000])
    # The mel projection finishes both front-ends alike.
    projected = torch.cat(list(vocode_stream(vocoder, mel, default_schedule(3), torch.Generator().manual_seed(1),
                                             chunk_frames=8, overlap_frames=4, mel_projection=2)), dim=1)
    streamed = torch.cat(list(vocode_stream(vocoder, _chunks(mel, 3), default_schedule(3), torch.Generator().manual_seed(1),
                                            chunk_frames=8, overlap_frames=4, mel_projection=2, num_frames=23,
                                            num_samples=22 * 256)), dim=1)
    torch.testing.assert_close(streamed, projected)
    assert not torch.allclose(projected, reference)


def test_the_hierarchy_uses_the_vocoders_stored_schedule_and_projection(debug_hierarchy, tmp_path):
    """A searched schedule and a mel-projection count stored in the vocoder checkpoint (where
    `vocoder search-schedule` puts them) are what the vocoder way down samples with."""
    import shutil

    from wavegen.diffusion.schedules import NoiseSchedule
    from wavegen.models.vocoder.checkpoint import store_schedule, update_vocoder_extra

    p = debug_hierarchy
    vocoder = tmp_path / "vocoder.pt"
    shutil.copy(p["vocoder"], vocoder)
    searched = NoiseSchedule((1e-4, 0.05, 0.5))
    store_schedule(vocoder, searched)
    update_vocoder_extra(vocoder, {"mel_projection": 3})
    h = load_hierarchy(p["prior"], p["level1"], p["level2"], p["codes_to_mel"], str(vocoder), "vocoder")
    assert h.vocoder_schedule == searched.to_list() and h.vocoder_projection == 3
    plain = load_hierarchy(p["prior"], p["level1"], p["level2"], p["codes_to_mel"], p["vocoder"], "vocoder")
    assert plain.vocoder_schedule is None and plain.vocoder_projection == 0


# ----------------------------------------------------------------------------- generate


@pytest.mark.parametrize("down", ["wavenet", "vocoder"])
def test_generate_writes_exact_length_and_every_output(tmp_path, debug_hierarchy, down):
    p = debug_hierarchy
    h = load_hierarchy(p["prior"], p["level1"], p["level2"], p["codes_to_mel"], p["vocoder"], down)
    seconds = 0.73  # not a whole number of frames at any level
    summary = generate_to_files(h, tmp_path / "out.wav", seconds, seed=1, progress=False, log=lambda s: None)
    audio, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and audio.shape == (round(seconds * 16000),) and summary["samples"] == audio.shape[0]
    assert np.abs(audio).max() > 0
    level1 = np.load(tmp_path / "out.level1.npy")
    level2 = np.load(tmp_path / "out.level2.npy")
    assert level1.shape == (3, math.ceil(audio.shape[0] / 16)) and level1.max() < 5
    assert level2.shape == (2, math.ceil(level1.shape[1] / 4)) and level2.max() < 5
    assert (tmp_path / "out.png").stat().st_size > 1000
    info = json.loads((tmp_path / "out.json").read_text())
    assert [lvl["name"] for lvl in info["levels"]] == ["level2", "level1"] and info["down"] == down
    # The reported event rate is that of the stored codes (counted while they streamed by).
    for lvl, codes in zip(info["levels"], [level2, level1]):
        events = 1 + int((codes[:, 1:] != codes[:, :-1]).any(axis=0).sum())
        assert lvl["events_per_second_generated"] == pytest.approx(events / info["seconds"])
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        ["out.wav", "out.png", "out.json", "out.level1.npy", "out.level2.npy"])  # no temporary files left


def test_generate_is_reproducible_for_a_seed(tmp_path, debug_hierarchy):
    p = debug_hierarchy
    h = load_hierarchy(p["prior"], p["level1"], p["level2"])
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_to_files(h, tmp_path / f"{name}.wav", 0.2, seed=seed, progress=False, log=lambda s: None)
    a, b, c = (sf.read(tmp_path / f"{n}.wav")[0] for n in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_generate_refuses_to_overwrite_and_leaves_no_partial_output(tmp_path, debug_hierarchy):
    p = debug_hierarchy
    h = load_hierarchy(p["prior"], p["level1"], p["level2"])
    (tmp_path / "out.png").write_text("precious")
    with pytest.raises(WavegenError, match="already exists.*--overwrite"):
        generate_to_files(h, tmp_path / "out.wav", 0.1, progress=False)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.png"]
    # A failure mid-way (here: an interrupted decoder) leaves neither partial nor replaced files.
    def broken(*args, **kwargs):
        yield torch.zeros(1, 100)
        raise KeyboardInterrupt

    import wavegen.hierarchy.streaming as streaming
    original = streaming.decode_wavenet
    streaming.decode_wavenet = broken
    try:
        with pytest.raises(KeyboardInterrupt):
            generate_to_files(h, tmp_path / "out.wav", 0.1, overwrite=True, progress=False)
    finally:
        streaming.decode_wavenet = original
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.png"]
    assert (tmp_path / "out.png").read_text() == "precious"


def test_mismatched_levels_are_refused(tmp_path, debug_hierarchy):
    other = build_random_hierarchy(tmp_path, "debug", seed=1)
    p = debug_hierarchy
    with pytest.raises(WavegenError, match="trained on codes of other weights"):
        load_hierarchy(p["prior"], other["level1"], p["level2"])
    with pytest.raises(WavegenError, match="is a level-2 autoencoder, not a top prior"):
        load_hierarchy(p["level2"], p["level1"])
    with pytest.raises(WavegenError, match="needs --codes-to-mel and --vocoder"):
        load_hierarchy(p["prior"], p["level1"], p["level2"], down="vocoder")


def test_generate_command_from_checkpoints_and_from_a_recipe(tmp_path, debug_hierarchy, capsys):
    p = debug_hierarchy
    out = tmp_path / "cli.wav"
    argv = ["generate", "--prior", str(p["prior"]), "--level2", str(p["level2"]), "--level1", str(p["level1"]),
            "--seconds", "0.25", "-o", str(out), "--no-progress"]
    assert main(argv) == 0 and sf.info(out).frames == 4000
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert main(["generate", "--seconds", "1", "-o", str(out)]) == 2
    assert main(["generate", "--recipe", "piano_hierarchy_tiny", "--root", str(tmp_path / "none"), "-o",
                 str(tmp_path / "r.wav")]) == 2
    assert "has not produced its checkpoints yet" in capsys.readouterr().err
    # A recipe's folder layout: the generate stage's checkpoints, found through --recipe.
    root = tmp_path / "root"
    for stage, level in (("prior", "prior"), ("ae2", "level2"), ("ae1", "level1")):
        (root / stage / "checkpoints").mkdir(parents=True)
        (root / stage / "checkpoints" / "last.pt").symlink_to(p[level])
    out2 = tmp_path / "recipe.wav"
    assert main(["generate", "--recipe", "piano_hierarchy_tiny", "--root", str(root), "--seconds", "0.2", "-o", str(out2),
                 "--no-progress", "--seed", "5"]) == 0
    assert sf.info(out2).frames == 3200
    # --down vocoder takes the recipe's generate stage that goes down through the vocoder.
    for stage, level in (("codes_to_mel", "codes_to_mel"), ("vocoder", "vocoder")):
        (root / stage / "checkpoints").mkdir(parents=True)
        (root / stage / "checkpoints" / "last.pt").symlink_to(p[level])
    out3 = tmp_path / "recipe_vocoder.wav"
    assert main(["generate", "--recipe", "piano_hierarchy_tiny", "--root", str(root), "--down", "vocoder",
                 "--seconds", "0.2", "-o", str(out3), "--no-progress"]) == 0
    assert json.loads(out3.with_suffix(".json").read_text())["down"] == "vocoder"


# ----------------------------------------------------------------------------- recipes


def test_tiny_recipe_stage_graph():
    recipe = load_recipe("piano_hierarchy_tiny")
    graph = {s.name: s.inputs() for s in recipe.stages}
    assert graph == {
        "ae1": [], "codes1": ["ae1"], "ae2": ["codes1"], "codes2": ["ae2", "codes1"], "prior": ["codes2"],
        "generate": ["prior", "ae2", "ae1"], "codes_to_mel": ["ae1"], "vocoder": [],
        "generate_vocoder": ["prior", "ae2", "ae1", "codes_to_mel", "vocoder"],
        "event_prior": ["codes2"], "generate_events": ["event_prior", "ae2", "ae1"],
    }
    downs = [s.args[s.args.index("--down") + 1] for s in recipe.stages if s.command == "generate"]
    assert downs == ["wavenet", "vocoder", "wavenet"]


def test_full_recipe_stage_graph_and_composition(tmp_path):
    from wavegen.config import compose

    recipe = load_recipe("piano_hierarchy")
    names = [s.name for s in recipe.stages]
    assert names.index("ae1") < names.index("codes1") < names.index("ae2") < names.index("codes2") \
        < names.index("prior") < names.index("generate")
    for stage in recipe.stages:
        argv = stage_argv(stage, tmp_path, ["data=maestro"])
        if stage.command == "train":
            cfg = compose([a for a in argv[1:] if "=" in a])
            assert cfg.train.run_dir == str(tmp_path / stage.name)
            assert cfg.model.name in ("base", "level2_base", "spectral") and cfg.data.kind == "maestro"


def test_recipe_dry_run_skips_finished_stages_and_resumes(tmp_path):
    recipe = load_recipe("piano_hierarchy_tiny")
    root = tmp_path / "root"
    lines = []
    assert run_recipe(recipe, root, ["train.steps=2"], dry_run=True, runner=lambda argv: 1 / 0,
                      log=lines.append) == []
    assert len(lines) == 11 and all("(run)" in line for line in lines)
    # Stop at the prior: the finished stages are skipped when the recipe runs again.
    calls = []

    def runner(argv):
        calls.append(argv[0])
        return 1 if argv[-1].endswith("prior") else 0

    with pytest.raises(WavegenError, match="stage 'prior' failed"):
        run_recipe(recipe, root, ["train.steps=2"], runner=runner, log=lambda s: None)
    assert calls == ["train", "codes", "train", "codes", "train"]
    calls.clear()
    lines.clear()
    run_recipe(recipe, root, ["train.steps=2"], runner=lambda argv: calls.append(argv[0]) or 0, log=lines.append)
    assert calls == ["train", "generate", "train", "train", "generate", "train", "generate"]
    assert sum("(done, skip)" in line for line in lines) == 4


@pytest.mark.slow
def test_tiny_recipe_full_length(tmp_path):
    """The tiny recipe as shipped: every stage at its full number of steps (CPU minutes)."""
    root = tmp_path / "run"
    assert main(["recipe", "run", "piano_hierarchy_tiny", "--root", str(root)]) == 0
    for name in ("generate/piano_wavenet.wav", "generate_vocoder/piano_vocoder.wav"):
        assert sf.info(root / name).frames == 10 * 16000


def test_tiny_recipe_end_to_end(tmp_path):
    """Every stage of the tiny recipe with the fewest steps and the debug data set, then both generate stages."""
    root = tmp_path / "run"
    overrides = ["--train", "train.steps=2", "--train", "data=embedded_debug", "--train", "train.progress=false",
                 "--train", "train.val_batches=1", "--train", "train.batch_size=2"]
    assert main(["recipe", "run", "piano_hierarchy_tiny", "--root", str(root), *overrides]) == 0
    for name, down in (("generate/piano_wavenet", "wavenet"), ("generate_vocoder/piano_vocoder", "vocoder"),
                       ("generate_events/piano_events", "wavenet")):
        audio, rate = sf.read(root / f"{name}.wav")
        assert rate == 16000 and audio.shape == (10 * 16000,)
        assert json.loads((root / f"{name}.json").read_text())["down"] == down
        assert np.load(root / f"{name}.level1.npy").shape == (3, 2500)
        assert np.load(root / f"{name}.level2.npy").shape == (2, 625)
    codes = json.loads((root / "codes1" / "codeset.json").read_text())
    assert codes["levels"] == [5, 5, 5] and codes["hop"] == 64
    # Running again skips everything.
    assert main(["recipe", "run", "piano_hierarchy_tiny", "--root", str(root), *overrides]) == 0


def test_weights_fingerprint_follows_the_weights_not_the_training_state(debug_hierarchy):
    from wavegen.hierarchy.provenance import weights_fingerprint
    from wavegen.models.registry import load_model

    model, _ = load_model(debug_hierarchy["level1"])
    before = weights_fingerprint(model)
    model.controller.rate_ema.fill_(123.0)  # steers training only: codes mean the same
    assert weights_fingerprint(model) == before
    with torch.no_grad():
        next(model.encoder.parameters()).add_(1e-3)
    assert weights_fingerprint(model) != before
