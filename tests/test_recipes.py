"""The recipe runner: stage graph, placeholders, skipping finished stages, resuming."""

import json
from pathlib import Path

import pytest

from wavegen.errors import WavegenError
from wavegen.recipes import load_recipe, run_recipe, stage_argv


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


RECIPE = """
description: test
stages:
  - name: a
    command: train
    args: [experiment=wavenet_debug]
  - name: b
    command: sample
    args: ["{ckpt:a}", -o, "{out}"]
  - name: c
    command: eval
    args: ["{dir:b}"]
    after: [a]
"""


def test_graph_and_placeholders(tmp_path):
    recipe = load_recipe(write(tmp_path, RECIPE))
    assert [s.name for s in recipe.stages] == ["a", "b", "c"]
    assert recipe.stage("b").inputs() == ["a"] and recipe.stage("c").inputs() == ["a", "b"]
    root = tmp_path / "root"
    assert stage_argv(recipe.stage("a"), root, ["train.steps=2"]) == [
        "train", "experiment=wavenet_debug", "train.steps=2", f"train.run_dir={root / 'a'}"]
    assert stage_argv(recipe.stage("b"), root) == ["sample", str(root / "a/checkpoints/last.pt"), "-o", str(root / "b")]


@pytest.mark.parametrize("bad,message", [
    ("stages: []", "non-empty 'stages'"),
    ("stages:\n  - name: x\n    command: train\n  - name: x\n    command: train", "two stages are named 'x'"),
    ("stages:\n  - name: x\n    command: sample\n    args: ['{ckpt:y}']", "reads stage 'y', which does not come before it"),
    ("stages:\n  - name: x\n    command: sample\n    args: ['{nope}']", "unknown placeholder"),
    ("stages:\n  - name: x\n    command: t\n    argz: []", "unknown keys ['argz']"),
    ("stages: [", "not valid YAML"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, bad, message):
    with pytest.raises(WavegenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_recipe(write(tmp_path, bad))


def test_finished_stages_are_skipped_and_failures_resume(tmp_path):
    recipe = load_recipe(write(tmp_path, RECIPE))
    root = tmp_path / "root"
    calls = []

    def failing_at_b(argv):
        calls.append(argv[0])
        return 1 if argv[0] == "sample" else 0

    with pytest.raises(WavegenError, match="stage 'b' failed"):
        run_recipe(recipe, root, runner=failing_at_b, log=lambda s: None)
    assert calls == ["train", "sample"]
    calls.clear()
    ran = run_recipe(recipe, root, runner=lambda argv: calls.append(argv[0]) or 0, log=lambda s: None)
    assert ran == ["b", "c"] and calls == ["sample", "eval"]  # a is done, not run again
    # A changed command line re-runs that stage only.
    assert run_recipe(recipe, root, ["train.steps=9"], runner=lambda argv: 0, log=lambda s: None) == ["a"]


def test_dry_run_prints_plan_and_runs_nothing(tmp_path):
    recipe = load_recipe(write(tmp_path, RECIPE))
    lines = []
    ran = run_recipe(recipe, tmp_path / "root", dry_run=True, runner=lambda argv: 1 / 0, log=lines.append)
    assert ran == [] and len(lines) == 3 and "wavegen train experiment=wavenet_debug" in lines[0]


def test_quickstart_recipe_end_to_end(tmp_path, capsys):
    """The README's main job, shortened: trains the tiny model a few steps, continues a validation prompt with it
    and with the shipped piano-tiny, and measures both side by side."""
    from wavegen.cli import main

    root = tmp_path / "qs"
    code = main(["recipe", "run", "quickstart", "--root", str(root), "--train", "train.steps=2",
                 "--train", "train.progress=false", "--train", "data=embedded_debug"])
    assert code == 0, capsys.readouterr().err
    assert (root / "train" / "checkpoints" / "last.pt").exists()
    for folder in ("samples", "shipped"):
        for i in range(2):
            assert (root / folder / f"sample_{i:03d}.wav").stat().st_size > 44
            assert (root / folder / f"sample_{i:03d}.png").exists()
    rows = json.loads((root / "compare" / "tonality.json").read_text())["rows"]
    assert [Path(r["file"]).parent.name for r in rows] == ["samples", "samples", "shipped", "shipped"]
    assert all(r["seconds"] == pytest.approx(3.0) for r in rows)  # the continuations, without the prompt
    # Running again skips every stage.
    assert main(["recipe", "run", "quickstart", "--root", str(root), "--train", "train.steps=2",
                 "--train", "train.progress=false", "--train", "data=embedded_debug"]) == 0
    assert "done, skip" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["quickstart", "piano_tiny", "piano_wavenet", "piano_autoencoder", "piano_vocoder",
                                  "piano_ae"])
def test_recipes_run_end_to_end_from_an_empty_root_at_smoke_scale(tmp_path, capsys, name):
    """Every stage of the recipe runs (a few steps each, debug sizes, the small data) from an empty
    root and leaves its marker; piano_hierarchy_tiny runs end to end in tests/test_hierarchy.py.
    piano_hierarchy (MAESTRO, GPU-sized) has no smoke arguments yet."""
    from wavegen.cli import main
    from wavegen.recipes import DONE, load_recipe

    root = tmp_path / name
    code = main(["recipe", "run", name, "--root", str(root), "--smoke", "--train", "data.renderer=builtin"])
    assert code == 0, capsys.readouterr().err
    for stage in load_recipe(name).stages:
        assert (root / stage.name / DONE).exists(), stage.name
    if name == "piano_tiny":
        # Its evals pass no sampling flag: they sample at the default the experiment's sampling block
        # stored in the checkpoint, the shipped model's top-p 0.97.
        for report in ("eval/validation.json", "eval_simplest/validation_simplest.json"):
            controls = json.loads((root / report).read_text())["controls"]
            assert controls == {"temperature": 1.0, "mixture_temperature": 1.0, "top_p": 0.97}, report
