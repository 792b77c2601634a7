"""Packaging glue that pyproject.toml cannot express on its own.

conf/ and recipes/ sit at the top of the checkout (where users look for them)
but must ship inside the wheel as ``wavegen/conf`` and ``wavegen/recipes``, so
an installed wavegen finds its Hydra configs. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["wavegen", "wavegen.*"]) + ["wavegen.conf", "wavegen.recipes"],
    package_dir={"wavegen.conf": "conf", "wavegen.recipes": "recipes"},
)
