"""Objective evaluation of trained models on held-out audio (an upper layer: it reads datasets).

- :mod:`.heldout`  held-out audio for evaluation and schedule search: a dataset split or a folder
- :mod:`.vocoder`  the vocoder evaluation table (whole pieces, seeds, Griffin-Lim beside)

The metrics themselves are :mod:`wavegen.audio.metrics`.
"""
