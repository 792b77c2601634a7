"""One-off reading of round 11's split reports (round 12): how strongly does a prompt hold the pitch class a
straying draw ends up playing loudest? For each draw marked ``strays``, its strongest class of its peaks, and the
prompt's share of that class (its ``peak_classes``) relative to the prompt's strongest class.

    python docs/ar_study/round12/scratch/stray_weights.py docs/ar_study/round11/tuning/sources_*.json
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from benchmarks.chroma_rise_sources import strongest_class  # noqa: E402

for path in sys.argv[1:]:
    weights = []
    for prompt in json.load(open(path))["prompts"]:
        held = np.array(prompt["prompt"]["peak_classes"])
        held = held / held.max()
        weights += [held[strongest_class(draw)] for draw in prompt["draws"] if draw["strays"]]
    weights = np.array(weights)
    print(f"{path}: {len(weights)} straying draws; the prompt's power in their class, relative to its strongest: "
          f"median {np.median(weights):.2f}, under 0.25 for {np.mean(weights < 0.25):.0%}")
