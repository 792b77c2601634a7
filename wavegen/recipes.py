"""Recipes: ordered stages of ``wavegen`` commands whose outputs feed later stages.

A recipe is ``recipes/<name>.yaml``::

    description: what it builds
    stages:
      - name: train
        command: train                 # any wavegen command
        args: [experiment=quickstart]  # its arguments
      - name: sample
        command: sample
        args: ["{ckpt:train}", -o, "{out}", --seconds, "2"]

Placeholders in ``args``: ``{out}`` (this stage's folder), ``{dir:STAGE}`` and
``{ckpt:STAGE}`` (an earlier stage's folder and its ``checkpoints/last.pt``),
``{root}`` (the recipe's run folder). ``train`` stages also get
``train.run_dir={out}``, so re-running a stopped recipe resumes its training.
A finished stage leaves ``.done.json`` (the exact command it ran) and is skipped
while its command stays the same.

A stage may list ``smoke: [...]``, arguments appended when the recipe runs with
``--smoke`` (``wavegen recipe run NAME --smoke``): a few steps per stage on the small
data and debug sizes, so every path of a recipe can be checked in seconds (CI runs
every recipe this way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from wavegen.atomic import atomic_write
from wavegen.errors import WavegenError

_PLACEHOLDER = re.compile(r"\{([a-z]+)(?::([A-Za-z0-9_\-]+))?\}")
DONE = ".done.json"


@dataclass
class Stage:
    name: str
    command: str
    args: list[str]
    after: list[str] = field(default_factory=list)
    smoke: list[str] = field(default_factory=list)

    def inputs(self) -> list[str]:
        """The stages this one reads from (placeholders and explicit ``after``)."""
        names = list(self.after)
        for arg in self.args:
            for kind, ref in _PLACEHOLDER.findall(arg):
                if ref and ref not in names:
                    names.append(ref)
        return names


@dataclass
class Recipe:
    name: str
    description: str
    stages: list[Stage]
    path: Optional[Path] = None

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise WavegenError(f"recipe {self.name!r} has no stage {name!r}")


def find_recipe(name_or_path: str) -> Path:
    from wavegen.config import recipe_dir

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = recipe_dir() / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in recipe_dir().glob("*.yaml"))
    raise WavegenError(f"unknown recipe {name_or_path!r}; available: {', '.join(known)}")


def load_recipe(name_or_path: str) -> Recipe:
    import yaml

    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise WavegenError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise WavegenError(f"{path}: a recipe needs a non-empty 'stages' list")
    stages, seen = [], set()
    for i, raw in enumerate(data["stages"]):
        if not isinstance(raw, dict) or "name" not in raw or "command" not in raw:
            raise WavegenError(f"{path}: stage {i + 1} needs 'name' and 'command'")
        unknown = set(raw) - {"name", "command", "args", "after", "smoke"}
        if unknown:
            raise WavegenError(f"{path}: stage {raw['name']!r} has unknown keys {sorted(unknown)}; "
                               "valid keys: name, command, args, after, smoke")
        stage = Stage(str(raw["name"]), str(raw["command"]), [str(a) for a in raw.get("args", [])],
                      [str(a) for a in raw.get("after", [])], [str(a) for a in raw.get("smoke", [])])
        if stage.name in seen:
            raise WavegenError(f"{path}: two stages are named {stage.name!r}")
        for ref in stage.inputs():
            if ref not in seen:
                raise WavegenError(f"{path}: stage {stage.name!r} reads stage {ref!r}, which does not come before it")
        for kind, _ in _PLACEHOLDER.findall(" ".join(stage.args)):
            if kind not in ("out", "dir", "ckpt", "root"):
                raise WavegenError(f"{path}: stage {stage.name!r} uses unknown placeholder {{{kind}}}")
        seen.add(stage.name)
        stages.append(stage)
    return Recipe(path.stem, str(data.get("description", "")), stages, path)


def stage_argv(stage: Stage, root: Path, train_overrides: list[str] = (), smoke: bool = False) -> list[str]:
    """The exact ``wavegen`` command line a stage runs (``smoke``: with the stage's smoke arguments)."""
    out = root / stage.name

    def fill(match: re.Match) -> str:
        kind, ref = match.group(1), match.group(2)
        if kind == "out":
            return str(out)
        if kind == "root":
            return str(root)
        if kind == "dir":
            return str(root / ref)
        return str(root / ref / "checkpoints" / "last.pt")

    args = [_PLACEHOLDER.sub(fill, a) for a in (stage.args + stage.smoke if smoke else stage.args)]
    argv = stage.command.split() + args
    if stage.command == "train":
        argv += list(train_overrides) + [f"train.run_dir={out}"]
    return argv


def is_done(stage: Stage, root: Path, argv: list[str]) -> bool:
    marker = root / stage.name / DONE
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text()).get("argv") == argv
    except (OSError, ValueError):
        return False


def mark_done(stage: Stage, root: Path, argv: list[str]) -> None:
    folder = root / stage.name
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / DONE, json.dumps({"argv": argv}, indent=1).encode("utf-8"))


# Exit statuses of a stage stopped by SIGINT / SIGTERM (128 + the signal's number).
_INTERRUPTED = (130, 143)


class StageInterrupted(WavegenError):
    """A stage was stopped by a signal (its progress is saved); the recipe exits with the stage's status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def run_recipe(recipe: Recipe, root: Path, train_overrides: list[str] = (), dry_run: bool = False,
               only: Optional[list[str]] = None, *, runner: Callable[[list[str]], int],
               log: Callable[[str], None] = print, smoke: bool = False) -> list[str]:
    """Run the recipe's stages in order, skipping finished ones; returns the names that ran.

    runner: runs one stage's ``wavegen`` command line and returns its exit status. The CLI
    passes its own entry point (:func:`wavegen.cli.main`); recipes sit below the CLI and do
    not import it.
    """
    ran = []
    for i, stage in enumerate(recipe.stages):
        if only and stage.name not in only:
            continue
        argv = stage_argv(stage, root, train_overrides, smoke)
        done = is_done(stage, root, argv)
        status = "done, skip" if done else "run"
        log(f"[{i + 1}/{len(recipe.stages)}] {stage.name} ({status}): wavegen {' '.join(argv)}")
        if dry_run or done:
            continue
        try:
            code = runner(argv)
        except SystemExit as exc:  # argparse exits on a malformed command line
            code = exc.code if isinstance(exc.code, int) else 2
        if code in _INTERRUPTED:
            raise StageInterrupted(f"recipe {recipe.name!r} interrupted in stage {stage.name!r}; run the same "
                                   "command again to resume", code)
        if code:
            raise WavegenError(f"recipe {recipe.name!r} stopped: stage {stage.name!r} failed (exit {code}); "
                               "run the same command again to resume")
        mark_done(stage, root, argv)
        ran.append(stage.name)
    return ran
