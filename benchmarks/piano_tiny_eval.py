"""Issue 12's acceptance figures for an autoregressive model: likelihood against the LPC baseline, primed continuations.

    python benchmarks/piano_tiny_eval.py piano-tiny [--source validation|unseen|train] [--json OUT]

Clips (3 s each, ``--prompts`` of them, loudest first):

- ``validation``: the embedded set's validation split (pieces held out from training), both renderings;
- ``unseen``: corpus pieces the embedded set never selects, rendered with every installed SoundFont
  except FluidR3 (pianos the training data never used; :mod:`wavegen.data.unseen`), from 5 s in;
- ``train``: training clips, where sampling defaults are chosen (never on the other two).

Per clip: teacher-forced NLL of the whole 3 s in bits per sample beside the LPC baseline (order 32,
window 1024, refit 256) and, for a model with its own predictor (``lpc_order``), that predictor's
logistic alone; then the first second is the prompt and ``--draws`` independent continuations of
2 s are judged (:mod:`wavegen.generate.continuation`: peak share >= 0.5, chroma entropy <= the
prompt's + 0.3, RMS >= the prompt's - 12 dB, no copying). Medians over all draws; one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a WaveNet checkpoint or a shipped model's name")
    p.add_argument("--source", default="validation", choices=["validation", "unseen", "train"])
    p.add_argument("--prompts", type=int, default=4, help="clips (validation/train) or pieces per piano (unseen)")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--temperature", type=float, default=None, help="default: the model's own default (else 1)")
    p.add_argument("--mixture-temperature", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the whole report here")
    return p.parse_args(argv)


def split_clips(split: str, count: int):
    """Tensor[count, 48000]: the loudest 3 s clips of a split of the embedded set (both renderings)."""
    import torch

    from wavegen.config import compose
    from wavegen.data import build_sampler

    cfg = compose(["model=wavenet/tiny", "data.renderer=both", "logger=none", "train.segment_length=48000"])
    clips = torch.cat([b["audio"] for b in build_sampler(cfg, split).validation_batches()])
    order = clips.pow(2).mean(dim=1).argsort(descending=True)
    return {"embedded " + split: clips[order[:count]]}


def unseen_clips(count: int):
    """piano name -> Tensor[count, 48000]: unseen pieces on every installed SoundFont but FluidR3."""
    import torch

    from wavegen.data.unseen import installed_soundfonts, render_unseen, unseen_pieces

    pieces = unseen_pieces(count)
    out = {}
    for font in installed_soundfonts():
        if "fluidr3" in font.name.lower():
            continue
        out[font.stem] = torch.stack([torch.from_numpy(render_unseen(p, 16000, 3.0, 5.0, font)) for p in pieces])
    return out


def main(argv=None) -> int:
    import torch

    import wavegen
    from wavegen.generate.continuation import continuation_report, teacher_forced_bits
    from wavegen.nn.lpc import LPCBaseline, lpc_nll_bits

    args = parse_args(argv)
    torch.set_num_threads(1)
    model = wavegen.load(args.model)
    net = model.module.eval()
    controls = {"temperature": args.temperature if args.temperature is not None
                else float(model.sampling.get("temperature", 1.0)),
                "mixture_temperature": args.mixture_temperature if args.mixture_temperature is not None
                else float(model.sampling.get("mixture_temperature", 1.0))}
    sets = unseen_clips(args.prompts) if args.source == "unseen" else split_clips(args.source, args.prompts)
    report = {"model": args.model, "source": args.source, "controls": controls, "sets": {}}
    lines = ["| clips | NLL bits/sample | LPC-32 baseline | own predictor | peak share | chroma H (prompt) | "
             "RMS dBFS (prompt) | copy (max) | met |", "|---|---|---|---|---|---|---|---|---|"]
    for name, clips in sets.items():
        started = time.process_time()
        bits = teacher_forced_bits(net, clips)
        baseline = lpc_nll_bits(clips)
        own = None
        if getattr(net.cfg, "lpc_order", 0):
            c = net.cfg
            own = float(LPCBaseline(c.lpc_order, c.lpc_window, c.lpc_refit).nll_bits(clips).mean())
        result = continuation_report(net, clips[:, :16000], 16000, 2.0, args.draws, args.seed, **controls)
        overall = result["overall"]
        m, pm = overall["median"], result["prompt_median"]
        max_copy = max(r["copy_score"] for p in result["prompts"] for r in p["draws"])
        met = all(overall["checks"].values()) and bits <= baseline - 0.5
        lines.append(f"| {name} ({clips.shape[0]}×{args.draws}) | {bits:.3f} | {baseline:.3f} | "
                     f"{'' if own is None else f'{own:.3f}'} | {m['peak_energy_share']:.3f} | "
                     f"{m['chroma_entropy']:.2f} ({pm['chroma_entropy']:.2f}) | {m['rms_dbfs']:.1f} ({pm['rms_dbfs']:.1f}) | "
                     f"{max_copy:.3f} | {'yes' if met else 'no'} |")
        report["sets"][name] = {"nll_bits": bits, "lpc32_bits": baseline, "own_predictor_bits": own, **result,
                                "cpu_seconds": time.process_time() - started}
        print(lines[-1], flush=True)
    text = (f"`python benchmarks/piano_tiny_eval.py {args.model} --source {args.source}`; sampling {controls}; "
            f"1 s prompts, {args.draws} draws of 2 s each, medians over all draws.\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.json:
        from wavegen.atomic import atomic_write

        clean = json.loads(json.dumps(report, default=float))
        atomic_write(Path(args.json), (json.dumps(clean, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
