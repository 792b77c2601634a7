"""Hostile inputs for the CLI tests: broken files, forged checkpoints, bad datasets.

:mod:`hostile.files` makes damaged audio, mel and code files; :mod:`hostile.models`
makes real (untrained) checkpoints of each model family and forged variants of
them; :mod:`hostile.catalogue` lists the cases ``tests/test_hostile_input.py`` runs.
Everything is built with numpy, soundfile and torch directly, so a fixture never
depends on the code it is used to test.
"""
