"""One-off diagnostic of round 11: the shipped piano-tiny's continuations of one tuning set's 8 simplest
prompts (4 draws, its sampling defaults), saved with the whole clips for the postfilter check.

    python docs/ar_study/round11/scratch/save_continuations.py SOUNDFONT PIECE_OFFSET SEED OUT.pt
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "benchmarks"))
import wavegen  # noqa: E402
from simple_harmony_probe import tuning_clips  # noqa: E402
from wavegen.generate.continuation import continue_prompt, simplest_prompts  # noqa: E402

torch.set_num_threads(1)
font, offset, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = wavegen.load("piano-tiny")
net = model.module.eval()
rate = model.sample_rate
clips = simplest_prompts(tuning_clips(64, offset, rate, 3.0, font), rate, 8, rate)
draws = torch.stack([continue_prompt(net, c[:rate], 2 * rate, 4, seed, **model.sampling) for c in clips])
torch.save({"clips": clips, "draws": draws}, out)
