"""Where do free-running continuations blur? In the far tail of the residual's logistic.

A continuation of piano-tiny is its linear predictor's filter driven by residuals drawn from the
network's logistic. A draw from far out in the logistic's tail is a white click: it rings every
pole of the filter at once, quiet partials included, and the next refits fit it. This counts how
often each sample lands in a μ-law class the model itself thought unlikely (surprisal, in bits, of
the class under the model's distribution at that step, read back teacher-forced, which equals the
distribution it was drawn from): over the prompts (real piano: how often it surprises the model)
and over the continuations, per sampling setting (an arm: ``plain``, ``shipped`` the model's own
defaults, or one control such as ``top_p_0.97``, as in the probe). Prompts: the tuning source of
``benchmarks/simple_harmony_probe.py`` (unseen pieces after every evaluated range, training pianos).

    python benchmarks/residual_tails.py --arms plain top_p_0.97 --out runs/residual_tails.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/residual_tails.py` from a checkout
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:  # its sibling, the probe
    sys.path.insert(0, str(ROOT / "benchmarks"))

from simple_harmony_probe import CONTROL_ARM, sampling_controls, tuning_clips  # noqa: E402


def arm_kind(arm: str) -> str:
    """argparse type: an arm that changes only sampling controls, else a clear error."""
    if arm in ("plain", "shipped") or CONTROL_ARM.match(arm):
        return arm
    raise argparse.ArgumentTypeError(f"unknown arm {arm!r}: plain (temperature 1, no top-p), shipped (the model's "
                                     "sampling defaults), temperature_T, mixture_temperature_T or top_p_P")


def tail_figures(bits) -> dict:
    """Tensor[N] surprisals in bits -> their mean and the share above 8 and 12 bits (p < 1/256, 1/4096)."""
    return {"mean_bits": float(bits.mean()), "above_8": float((bits > 8).double().mean()),
            "above_12": float((bits > 12).double().mean())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="piano-tiny")
    p.add_argument("--out", required=True, help="JSON file for the figures")
    p.add_argument("--arms", nargs="+", type=arm_kind, default=["plain", "shipped"],
                   help="default: plain against the model's own sampling defaults")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--pool", type=int, default=64, help="unseen pieces (x2 pianos) the prompts come from")
    p.add_argument("--piece-offset", type=int, default=176)
    p.add_argument("--draws", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    import wavegen
    from wavegen.atomic import atomic_write
    from wavegen.generate.continuation import continue_prompt, simplest_prompts

    torch.set_num_threads(1)
    model = wavegen.load(args.model)
    net, rate = model.module.eval(), int(model.audio.sample_rate)
    pool = tuning_clips(args.pool, args.piece_offset, rate, 3.0)
    prompts = simplest_prompts(pool[:, :rate], rate, args.prompts, rate)

    def surprisal(audio):  # Tensor[B, T] -> Tensor[B, T]: bits of each sample's class under the model
        tokens = net.head.encode(audio)
        inputs = torch.cat([net.head.silence(audio.shape[0])[:, None], tokens[:, :-1]], dim=1)
        with torch.no_grad():
            return net.head.nll(net(inputs), tokens).double() / math.log(2)

    results = {}
    for arm in args.arms:
        controls = sampling_controls(arm, model.sampling)
        prompt_bits, cont_bits = [], []
        for i, prompt in enumerate(prompts):
            audio = continue_prompt(net, prompt, 2 * rate, args.draws, args.seed + i, **controls)
            bits = surprisal(torch.cat([prompt[None].repeat(args.draws, 1), audio], dim=1))
            prompt_bits.append(bits[0, rate // 4 : rate])  # after the first 0.25 s (the predictor's cold start)
            cont_bits.append(bits[:, rate:].reshape(-1))
        results[arm] = {"prompts": tail_figures(torch.cat(prompt_bits)),
                        "continuations": tail_figures(torch.cat(cont_bits))}
        print(arm, " | ".join(f"{part}: mean {r['mean_bits']:.2f} bits, above 8 bits {r['above_8']:.3%}, above 12 bits "
                              f"{r['above_12']:.3%}" for part, r in results[arm].items()), flush=True)
    atomic_write(Path(args.out), json.dumps(results, indent=1).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
