"""Does a continuation keep *simple* harmony? Probed only where choices may be tuned.

Picks the ``--prompts`` clips whose first second has the lowest chroma entropy among a pool, and
continues each for 2 s, ``--draws`` draws, once per arm. The pool (``--source``):

- ``train``: the ``--pool`` loudest clips of the embedded set's training split;
- ``tuning``: corpus pieces neither split holds, taken *after* every range the held-out evaluation
  reads (``wavegen eval continuation --source unseen`` reads the first pieces; this reads
  ``--piece-offset`` onwards, default 48), rendered by the training pianos only (the built-in one
  and FluidR3). New pieces on familiar pianos: tuning never sees an evaluation piece or an
  evaluation piano.

Arms (any number, in order):

- ``plain``: the model's own distribution, untruncated (temperature 1, no top-p);
- ``shipped``: the model's sampling defaults (``model.sampling``: a shipped name's registry entry, a
  checkpoint's training config's ``sampling`` block; plain for a checkpoint without one);
- ``network_off``: the same weights with the last layer zeroed (head ``lpc_mol``: exactly the
  model's linear predictor and its fitted logistic);
- ``network_off_burg``: the same, with the predictor fitted by Burg's method;
- ``temperature_T`` / ``mixture_temperature_T`` / ``top_p_P``: a sampling control;
- ``lpc_window_N`` / ``lpc_order_N`` / ``lpc_refit_N``: the predictor's setting changed at sampling
  time only (the network is the one trained with the model's own setting);
- ``onsets_SOURCE`` (a model with ``local_source: onsets``): where the continuation is told to strike
  notes. ``none``: nowhere (the prompt's own onsets only); ``real``: where the clip's real
  continuation did (an oracle: what the model does when told the right times); ``loop``: the
  prompt's onsets repeated (its rhythm, at a one-second period); ``loop_capped``: the same, each
  repeat of the prompt's first blocks (where the cut clip rises out of silence, a flux of about 3
  against 1.4 for the median strike) capped at the median strike profile; ``loop_uncut``: the same,
  those repeated blocks (the first N_FFT / hop, whose onset frames reach before the cut) told
  nothing. Without an onsets arm such a model gets its default plan (``loop``). ``strike_gain_G``:
  the plan's frames after the prompt times G (weaker or stronger strikes; with no onsets arm, of the
  ``loop`` plan).

Arms combine with ``+``: ``onsets_real+top_p_0.97``.

Prints, per arm and prompt, the chroma entropy of the prompt and of the continuations (median), the
peak-energy share and the RMS, the prompts that meet every check, and writes them to ``--out`` (JSON).

    python benchmarks/simple_harmony_probe.py --out runs/simple_harmony.json
    python benchmarks/simple_harmony_probe.py --out runs/fits.json --arms network_off network_off_burg
    python benchmarks/simple_harmony_probe.py --source tuning --prompts 8 --out runs/tuning.json \
        --arms plain lpc_window_3072 mixture_temperature_0.9
    python benchmarks/simple_harmony_probe.py --table runs/tuning*.json   # one markdown table of them all
    python benchmarks/simple_harmony_probe.py --table runs/new*.json --paired runs/shipped*.json  # paired
    python benchmarks/simple_harmony_probe.py --source tuning --noise-dbfs -50 --out runs/noisy.json --arms shipped
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/simple_harmony_probe.py` from a checkout
    sys.path.insert(0, str(ROOT))

FIXED_ARMS = ("plain", "shipped", "network_off", "network_off_burg")
CONTROL_ARM = re.compile(r"^(temperature|mixture_temperature|top_p)_([0-9.]+)$")
PREDICTOR_ARM = re.compile(r"^(lpc_window|lpc_order|lpc_refit)_([0-9]+)$")
ONSET_ARM = re.compile(r"^onsets_(none|real|loop|loop_capped|loop_uncut)$")
GAIN_ARM = re.compile(r"^strike_gain_([0-9.]+)$")


def arm_kind(arm: str) -> str:
    """argparse type: a valid arm name (parts joined by ``+``), else a clear error."""
    for part in arm.split("+"):
        if not (part in FIXED_ARMS or CONTROL_ARM.match(part) or PREDICTOR_ARM.match(part) or ONSET_ARM.match(part)
                or GAIN_ARM.match(part)):
            raise argparse.ArgumentTypeError(f"unknown arm {part!r} (see the module docstring)")
    return arm


def sampling_controls(arm: str, shipped: dict) -> dict:
    """An arm's sampling controls for ``continue_prompt``: the model's defaults (``shipped``), its controls
    (``top_p_0.97`` -> ``{"top_p": 0.97}``), or none (every other arm samples plainly)."""
    controls = {}
    for part in arm.split("+"):
        if part == "shipped":
            controls.update(shipped)
        elif match := CONTROL_ARM.match(part):
            controls[match.group(1)] = float(match.group(2))
    return controls


def onset_stream(net, clips, prompt_samples: int, source: str):
    """Tensor[N, T] clips (prompt, then the real continuation) -> Tensor[N, 1, F]: the onsets an
    ``onsets_SOURCE`` arm gives the model (see the module docstring; ``none`` and ``loop`` are the
    plans of :func:`wavegen.generate.onsets.onset_plan`)."""
    from wavegen.generate.onsets import onset_plan

    if source == "real":
        return net.onsets(clips)
    plan = "loop" if source.startswith("loop_") else source
    local = onset_plan(net, clips[:, :prompt_samples], len(clips), clips.shape[-1] - prompt_samples, plan)
    known = prompt_samples // net.cfg.local_hop
    if source == "loop_capped":  # the loop, its repeats of the prompt's first blocks capped at the median strike
        import torch

        from wavegen.generate.onsets import STRIKE

        cap = torch.tensor(STRIKE)
        for start in range(known, local.shape[-1], known):
            part = local[..., start : start + len(STRIKE)]
            part.copy_(torch.minimum(part, cap[: part.shape[-1]]))
    elif source == "loop_uncut":  # the loop, its repeats of the prompt's first blocks told no strike at all
        from wavegen.nn.onsets import N_FFT

        for start in range(known, local.shape[-1], known):
            local[..., start : start + N_FFT // net.cfg.local_hop] = 0.0
    return local


def arm_plan(net, arm: str, clips, prompt_samples: int):
    """The onsets an arm tells the model (Tensor[N, C, F]), or None for its default plan: its
    ``onsets_SOURCE`` part, then its ``strike_gain_G`` part, which scales the frames after the prompt
    (of the ``loop`` plan where the arm names no source)."""
    local = None
    for part in arm.split("+"):
        if m := ONSET_ARM.match(part):
            local = onset_stream(net, clips, prompt_samples, m.group(1))
    for part in arm.split("+"):
        if m := GAIN_ARM.match(part):
            if local is None:
                local = onset_stream(net, clips, prompt_samples, "loop")
            local[..., prompt_samples // net.cfg.local_hop :] *= float(m.group(1))
    return local


def tuning_clips(pool: int, offset: int, rate: int, seconds: float, soundfont=None):
    """Tensor[pool·pianos, round(seconds·rate)]: unseen pieces ``offset`` … ``offset+pool-1`` on the training
    pianos (the built-in one, then FluidR3 where it is installed), or on ``soundfont``'s piano alone."""
    import numpy as np
    import torch

    from wavegen.data.unseen import installed_soundfonts, render_unseen, unseen_pieces

    if soundfont is not None:
        pianos = [Path(soundfont)]
    else:
        fluidr3 = [f for f in installed_soundfonts() if "fluidr3" in f.name.lower()]
        pianos = [None] + fluidr3[:1]  # the built-in piano, and FluidR3 where fluidsynth has it
    pieces = unseen_pieces(offset + pool)[offset:]
    clips = [render_unseen(piece, rate, seconds, 5.0, font) for font in pianos for piece in pieces]
    return torch.from_numpy(np.stack(clips))


def table(paths: list[str], baselines: list[str] = ()) -> str:
    """Markdown: one row per arm and prompt set (a set is known by its prompts' chroma entropies). With
    ``baselines`` (earlier --out files), a row whose prompts a baseline's first arm also ran gains a paired
    column: the mean over its prompts of (its chroma entropy - the baseline's), and that difference's SD, and
    the same mean for the peak-energy share (a lever can lower the chroma rise by making the sound less pitched,
    which only the pair of figures shows)."""
    base = {}
    for path in baselines:
        prompts = next(iter(json.loads(Path(path).read_text()).values()))["prompts"]
        base.setdefault(tuple(round(r["prompt_chroma"], 3) for r in prompts), prompts)
    rows, sets = [], {}
    for path in paths:
        for arm, result in json.loads(Path(path).read_text()).items():
            prompts = result["prompts"]
            key = tuple(round(r["prompt_chroma"], 3) for r in prompts)
            name = sets.setdefault(key, f"set {len(sets) + 1}")
            rise = [r["chroma"] - r["prompt_chroma"] for r in prompts]
            level = [r["rms_dbfs"] - r["prompt_rms_dbfs"] for r in prompts]
            paired = ("", "")
            if key in base:
                diff = [r["chroma"] - b["chroma"] for r, b in zip(prompts, base[key])]
                peak = [r["peak_share"] - b["peak_share"] for r, b in zip(prompts, base[key])]
                paired = (f"{statistics.mean(diff):+.2f} (SD {statistics.pstdev(diff):.2f})",
                          f"{statistics.mean(peak):+.2f}")
            peaks = [r["peak_share"] for r in prompts]
            rows.append((arm, name, f"{result['prompts_met']}/{len(prompts)}", f"{max(rise):+.2f}",
                         f"{statistics.median(rise):+.2f}", f"{min(peaks):.2f}", f"{statistics.median(peaks):.2f}",
                         f"{sorted(level)[1]:+.1f}" if len(level) > 1 else "", f"{min(level):+.1f}")
                        + (paired if baselines else ()))
    head = ("arm", "prompts", "met", "chroma rise max", "chroma rise median", "peak share min", "peak share median",
            "RMS vs prompt, 2nd lowest (dB)", "lowest (dB)")
    if baselines:
        head += ("chroma vs baseline, paired", "peak share vs baseline, paired")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in sorted(rows, key=lambda r: (r[1], r[0]))]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="piano-tiny", help="a shipped name or a WaveNet checkpoint (head lpc_mol)")
    p.add_argument("--out", help="JSON file for the figures")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print one table of earlier --out files and stop")
    p.add_argument("--paired", nargs="+", metavar="JSON", default=[],
                   help="with --table: baseline --out files; rows on their prompts gain the paired chroma and peak "
                        "share differences")
    p.add_argument("--source", choices=("train", "tuning"), default="train")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--pool", type=int, default=48, help="train: loudest clips; tuning: pieces (x2 pianos)")
    p.add_argument("--piece-offset", type=int, default=48, help="tuning: the first unseen piece read")
    p.add_argument("--soundfont", metavar="SF2",
                   help="tuning: render the pieces by this SoundFont's piano only (one outside /usr/share/sounds, "
                        "so no held-out evaluation reads it), not by the training pianos")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--noise-dbfs", type=float, default=None,
                   help="add white noise of this RMS (dBFS) to every clip, as a recording's noise floor")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", nargs="*", type=arm_kind, default=["plain", "network_off"])
    p.add_argument("--temperatures", type=float, nargs="*", default=[],
                   help="one more arm temperature_T per value (the same as naming them in --arms)")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table, args.paired))
        return 0
    if not args.out:
        p.error("--out is required (or --table)")
    if args.soundfont is not None and (args.source != "tuning" or not Path(args.soundfont).is_file()):
        p.error(f"--soundfont needs --source tuning and an existing file; got {args.soundfont}")

    import torch

    import wavegen
    from wavegen.atomic import atomic_write
    from wavegen.config import compose
    from wavegen.data import loudest_clips
    from wavegen.generate.continuation import continuation_report, prompts_met, simplest_prompts

    torch.set_num_threads(1)
    cfg = compose(["data=embedded", "data.renderer=both", "train.segment_length=48000"])
    rate = int(cfg.audio.sample_rate)
    pool = (loudest_clips(cfg, "train", args.pool) if args.source == "train"
            else tuning_clips(args.pool, args.piece_offset, rate, 3.0, args.soundfont))
    clips = simplest_prompts(pool, rate, args.prompts, rate)  # whole clips: the onsets arms read their rest
    if args.noise_dbfs is not None:  # after choosing: the same prompts as without noise
        noise = torch.randn(clips.shape, generator=torch.Generator().manual_seed(args.seed))
        clips = clips + 10 ** (args.noise_dbfs / 20) * noise
    prompts = clips[:, :rate]
    results = {}
    for arm in args.arms + [f"temperature_{t:g}" for t in args.temperatures]:
        model = wavegen.load(args.model)
        net = model.module.eval()
        controls = sampling_controls(arm, model.sampling)
        for part in arm.split("+"):
            if m := PREDICTOR_ARM.match(part):
                setattr(net.cfg, m.group(1), int(m.group(2)))  # read when each stream's predictor state is made
            if part == "network_off_burg":
                net.cfg.lpc_method = "burg"
            if part.startswith("network_off"):
                torch.nn.init.zeros_(net.out2.weight)
                torch.nn.init.zeros_(net.out2.bias)
        local = arm_plan(net, arm, clips, rate)
        report = continuation_report(net, prompts, rate, 2.0, args.draws, args.seed, local=local, **controls)
        rows = [{"prompt_chroma": r["prompt"]["chroma_entropy"], "chroma": r["median"]["chroma_entropy"],
                 "peak_share": r["median"]["peak_energy_share"], "rms_dbfs": r["median"]["rms_dbfs"],
                 "prompt_rms_dbfs": r["prompt"]["rms_dbfs"], "copy": r["median"]["copy_score"],
                 "met": all(r["checks"].values())} for r in report["prompts"]]
        results[arm] = {"prompts": rows, "prompts_met": prompts_met(report)}
        print(f"{arm}: {prompts_met(report)}/{len(rows)} met | "
              + " | ".join(f"{r['prompt_chroma']:.2f} -> {r['chroma']:.2f}, peak {r['peak_share']:.2f}, "
                           f"RMS {r['rms_dbfs'] - r['prompt_rms_dbfs']:+.1f} dB" for r in rows), flush=True)
    atomic_write(Path(args.out), json.dumps(results, indent=1).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
