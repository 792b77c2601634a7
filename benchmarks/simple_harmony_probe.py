"""Does a continuation keep *simple* harmony? Probed on training prompts only, where choices may be tuned.

Picks the ``--prompts`` training clips whose first second has the lowest chroma entropy (among the
``--pool`` loudest of the training split), and continues each for 2 s, ``--draws`` draws, as:

- ``default``: the model at its default sampling settings;
- ``network_off``: the same weights with the last layer zeroed (head ``lpc_mol``: exactly the
  model's linear predictor and its fitted logistic);
- ``network_off_burg``: the same, with the predictor fitted by Burg's method (``lpc_method=burg``);
- ``temperature_T``: the model at temperature T, for every T in ``--temperatures`` (default 0.9).

Prints, per arm and prompt, the chroma entropy of the prompt and of the continuations (median), the
peak-energy share and the RMS, and writes them to ``--out`` (JSON).

    python benchmarks/simple_harmony_probe.py --out runs/simple_harmony.json
    python benchmarks/simple_harmony_probe.py --out runs/fits.json --arms network_off network_off_burg --temperatures
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/simple_harmony_probe.py` from a checkout
    sys.path.insert(0, str(ROOT))

ARMS = ("default", "network_off", "network_off_burg")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="piano-tiny", help="a shipped name or a WaveNet checkpoint (head lpc_mol)")
    p.add_argument("--out", required=True, help="JSON file for the figures")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--pool", type=int, default=48, help="loudest training clips the prompts are chosen from")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--arms", nargs="*", default=["default", "network_off"], choices=ARMS)
    p.add_argument("--temperatures", type=float, nargs="*", default=[0.9], help="one more arm per temperature")
    args = p.parse_args(argv)

    import torch

    import wavegen
    from wavegen.atomic import atomic_write
    from wavegen.config import compose
    from wavegen.data import loudest_clips
    from wavegen.generate.continuation import continuation_report, simplest_prompts

    torch.set_num_threads(1)
    cfg = compose(["data=embedded", "data.renderer=both", "train.segment_length=48000"])
    rate = int(cfg.audio.sample_rate)
    prompts = simplest_prompts(loudest_clips(cfg, "train", args.pool)[:, :rate], rate, args.prompts, rate)
    results = {}
    for arm in args.arms + [f"temperature_{t:g}" for t in args.temperatures]:
        net = wavegen.load(args.model).module.eval()
        controls = {"temperature": float(arm.split("_")[1])} if arm.startswith("temperature_") else {}
        if arm == "network_off_burg":
            net.cfg.lpc_method = "burg"  # read when each stream's predictor state is made
        if arm.startswith("network_off"):
            torch.nn.init.zeros_(net.out2.weight)
            torch.nn.init.zeros_(net.out2.bias)
        report = continuation_report(net, prompts, rate, 2.0, args.draws, 0, **controls)
        results[arm] = [{"prompt_chroma": r["prompt"]["chroma_entropy"], "chroma": r["median"]["chroma_entropy"],
                         "peak_share": r["median"]["peak_energy_share"], "rms_dbfs": r["median"]["rms_dbfs"],
                         "prompt_rms_dbfs": r["prompt"]["rms_dbfs"]} for r in report["prompts"]]
        print(arm, " | ".join(f"{r['prompt_chroma']:.2f} -> {r['chroma']:.2f}, peak {r['peak_share']:.2f}, "
                              f"RMS {r['rms_dbfs']:.1f} (prompt {r['prompt_rms_dbfs']:.1f})" for r in results[arm]),
              flush=True)
    atomic_write(Path(args.out), json.dumps(results, indent=1).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
