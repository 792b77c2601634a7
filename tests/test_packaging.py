"""The wheel ships its configs and recipes: build it, install it into a fresh venv, use it."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_wheel_installs_and_composes(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("wavegen-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # Reuse this environment's dependencies (torch is gigabytes) but nothing of the checkout.
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = (
        "import wavegen, wavegen.config as c; "
        "assert 'site-packages' in wavegen.__file__, wavegen.__file__; "
        "cfg = c.compose(['experiment=quickstart']); print(cfg.model.name, c.config_dir()); "
        "print(sorted(p.stem for p in c.recipe_dir().glob('*.yaml'))); "
        "import wavegen.pretrained as p; r = p.registry_root(); "
        "assert 'site-packages' in str(r), r; print('registry', p.names())"
    )
    out = subprocess.run([str(py), "-c", probe], cwd=outside, check=True, capture_output=True, text=True).stdout
    assert "tiny" in out and "site-packages" in out and "quickstart" in out
    assert "registry [" in out  # the shipped registry is in the wheel (empty until the first model ships)
    help_text = subprocess.run([str(venv / "bin" / "wavegen"), "--help"], cwd=outside, check=True,
                               capture_output=True, text=True).stdout
    assert "train" in help_text and "sample" in help_text
