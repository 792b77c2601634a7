"""Layers import only downward (issue 15).

The layer order, lowest first::

    kernels < audio < nn < codes, diffusion < models < everything else
    (data, tasks, train, generate, hierarchy, evaluation, recipes, api, commands, cli, ...)

A module of the low packages may import its own package, any lower layer and the base
modules (``BASE``), which import nothing of wavegen but each other. ``codes`` and
``diffusion`` share a rank but are separate packages: neither imports the other. An
upward import is how a model ends up needing the data pipeline or the CLI to load, and
how import cycles (train -> tasks -> models -> train) start, so the check reads every
``import`` statement, at module level and inside functions, of every module below.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "wavegen"

# Packages whose imports are checked, with their rank (lower may not import higher).
RANKS = {"kernels": 0, "audio": 1, "nn": 2, "codes": 3, "diffusion": 3, "models": 4}
# Modules any layer may import: they import nothing of wavegen but each other.
BASE = {"errors", "atomic", "threads", "checkpoint", "frames", "options"}
# Everything else under wavegen/ is an upper layer.
UPPER = 5

# Known upward imports, each with the reason it is still there: (importing module, imported module).
EXCEPTIONS: set = set()  # none: a new one needs its reason written here


def _rank(top: str) -> int:
    return RANKS.get(top, UPPER)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of every wavegen module ``source`` imports, wherever the statement is.

    ``from wavegen import x`` names ``wavegen.x``; relative imports are resolved against
    ``module`` (the importing module's dotted name; ``is_package`` for an ``__init__``).
    """
    found = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from .x import y`, `from .. import z`
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from wavegen import x` names the subpackage x; otherwise the module named is what counts.
            found += [(node.lineno, f"{name}.{alias.name}" if name == "wavegen" else name) for alias in node.names]
    return [(line, name) for line, name in found if name == "wavegen" or name.startswith("wavegen.")]


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """``"module:line imports name"`` for each import of ``source`` that goes up a layer."""
    parts = module.split(".")
    own = parts[1]
    rank = _rank(own)
    bad = []
    for line, name in imported_modules(source, module, is_package):
        target = name.split(".")
        top = target[1] if len(target) > 1 else ""
        if top == own:
            continue
        if own in BASE:  # a base module imports only other base modules
            allowed = top in BASE
        else:
            allowed = top in BASE or _rank(top) < rank
        if not allowed and (module, name) not in EXCEPTIONS:
            bad.append(f"{module}:{line} imports {name}")
    return sorted(set(bad))


def _modules():
    """(dotted name, is_package, path) of every checked module."""
    paths = [p for pkg in RANKS for p in sorted((ROOT / pkg).rglob("*.py"))]
    paths += [ROOT / f"{name}.py" for name in sorted(BASE)]
    for path in paths:
        rel = path.relative_to(ROOT.parent).with_suffix("")
        is_package = rel.name == "__init__"
        parts = rel.parts[:-1] if is_package else rel.parts
        yield ".".join(parts), is_package, path


def test_low_layers_import_only_downward():
    bad = []
    for module, is_package, path in _modules():
        bad += upward_imports(path.read_text(encoding="utf-8"), module, is_package)
    assert not bad, "upward imports (see tests/test_layers.py for the layer order):\n" + "\n".join(bad)


def test_exceptions_are_still_needed():
    """A listed exception that no longer occurs must be dropped from the list, so it cannot hide a new one."""
    seen: set = set()
    for module, is_package, path in _modules():
        names = {name for _, name in imported_modules(path.read_text(encoding="utf-8"), module, is_package)}
        seen |= {(module, name) for name in names if (module, name) in EXCEPTIONS}
    assert seen == EXCEPTIONS


def test_low_layers_do_not_import_hydra():
    """Models load from a checkpoint's plain dict on machines without hydra-core (the GPU machine):
    the config schemas that use Hydra and OmegaConf live above, in wavegen/schema.py."""
    bad = []
    for module, _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{module}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in ("hydra", "omegaconf")]
    assert not bad, bad


def test_recipes_do_not_import_the_cli():
    # The CLI runs recipes (`wavegen recipe run`), so it hands recipes its entry point.
    source = (ROOT / "recipes.py").read_text(encoding="utf-8")
    names = [name for _, name in imported_modules(source, "wavegen.recipes")]
    assert not [n for n in names if n == "wavegen.cli" or n.startswith("wavegen.cli.")], names


def test_checker_finds_planted_upward_imports():
    """Every import form, at module level and inside a function, is caught; downward ones are not."""
    source = "\n".join([
        "import torch",
        "from wavegen.audio.dsp import mel_spectrogram",  # down: fine
        "from wavegen.errors import WavegenError",  # base: fine
        "from . import base",  # own package: fine
        "import wavegen.train.checkpoint",  # up (line 5)
        "from wavegen import data",  # up (line 6)
        "from ...hierarchy import assembly",  # up, relative (line 7)
        "def load():",
        "    from wavegen.cli import main",  # up, inside a function (line 9)
        "    from wavegen.models.wavenet import WaveNet",  # own package: fine
        "    return main",
    ])
    assert upward_imports(source, "wavegen.models.vocoder.heldout") == sorted([
        "wavegen.models.vocoder.heldout:5 imports wavegen.train.checkpoint",
        "wavegen.models.vocoder.heldout:6 imports wavegen.data",
        "wavegen.models.vocoder.heldout:7 imports wavegen.hierarchy",
        "wavegen.models.vocoder.heldout:9 imports wavegen.cli",
    ])
    # Same rank is not lower: codes and diffusion do not import each other; nn does not import models.
    assert upward_imports("from wavegen.diffusion import noise", "wavegen.codes.stats") == [
        "wavegen.codes.stats:1 imports wavegen.diffusion"]
    assert upward_imports("import wavegen.models", "wavegen.nn.conv") == ["wavegen.nn.conv:1 imports wavegen.models"]
    # A base module imports only base modules.
    assert upward_imports("from wavegen.audio import io", "wavegen.checkpoint") == [
        "wavegen.checkpoint:1 imports wavegen.audio"]
    assert upward_imports("from wavegen.atomic import atomic_write", "wavegen.checkpoint") == []
    # The sampling loop is above the models.
    assert upward_imports("from wavegen.generate.sampling import generate_audio", "wavegen.models.autoencoder") == [
        "wavegen.models.autoencoder:1 imports wavegen.generate.sampling"]
