"""Every notebook in notebooks/ executes headless from top to bottom, and the notebooks and docs/api.md
use only the public API: ``import wavegen`` and the names in ``wavegen.__all__``."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

import wavegen

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def private_uses(source: str) -> list[str]:
    """What ``source`` (Python) takes from wavegen beyond ``import wavegen`` and ``wavegen.<public name>``."""
    found = []
    public = set(wavegen.__all__)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("wavegen.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "wavegen":
            names = [a.name for a in node.names]
            if node.module != "wavegen" or not set(names) <= public:
                found.append(f"from {node.module} import {', '.join(names)}")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wavegen"
              and node.attr not in public):
            found.append(f"wavegen.{node.attr}")
    return found


def notebook_code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def doctest_code(markdown: str) -> str:
    """The Python of a page's doctests: each ``>>>`` line and its ``...`` continuations."""
    lines = [m.group(2) for m in re.finditer(r"^\s*(>>>|\.\.\.) ?(.*)$", markdown, re.MULTILINE)]
    return "\n".join(line for line in lines)


def test_the_checker_catches_private_imports():
    assert private_uses("import wavegen\nwavegen.load('x')\nfrom wavegen import train_model, Hierarchy") == []
    assert private_uses("from wavegen.train.loop import train") == ["from wavegen.train.loop import train"]
    assert private_uses("import wavegen.config as c") == ["import wavegen.config"]
    assert private_uses("from wavegen import compose") == ["from wavegen import compose"]
    assert private_uses("import wavegen\nwavegen.train.loop.train(cfg)") == ["wavegen.train"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_use_only_the_public_api(path):
    code = notebook_code(path)
    assert "import wavegen" in code
    assert private_uses(code) == []


def test_the_api_page_uses_only_the_public_api():
    code = doctest_code((ROOT / "docs" / "api.md").read_text())
    assert "wavegen.load(" in code
    assert private_uses(code) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
