"""How often would a prompt miss the acceptance at 4 draws? Read off a report with more draws.

The acceptance judges each prompt on the medians of its own 4 draws, and a median of 4 is a noisy
figure: two samplers that differ in almost nothing meet different prompts (docs/ar_study section 11).
Given a ``wavegen eval continuation --draws N --json F`` report with N > 4, this judges every 4-draw
subset of each prompt's draws exactly as the acceptance does (:func:`wavegen.generate.continuation.judge`)
and prints, per prompt, the medians over all N draws and the share of 4-draw subsets that miss (with
the check that fails most); per set, the expected number of prompts missed at 4 draws.

    wavegen eval continuation piano-tiny --draws 16 --source unseen --select simplest --pool 24 --clips 6 --json F
    python benchmarks/draw_noise.py F
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/draw_noise.py` from a checkout
    sys.path.insert(0, str(ROOT))

ACCEPTANCE_DRAWS = 4


def miss_share(prompt: dict, draws: int = ACCEPTANCE_DRAWS) -> tuple[float, Counter]:
    """One report prompt (its ``prompt`` row and ``draws`` rows) -> (share of ``draws``-subsets that miss,
    how often each check fails among them)."""
    from wavegen.generate.continuation import judge

    rows = prompt["draws"]
    if len(rows) < draws:
        raise ValueError(f"a prompt has {len(rows)} draws; at least {draws} are needed")
    missed, failing, total = 0, Counter(), 0
    for subset in itertools.combinations(rows, draws):
        checks = judge(prompt["prompt"], list(subset))["checks"]
        total += 1
        if not all(checks.values()):
            missed += 1
            failing.update(name for name, ok in checks.items() if not ok)
    return missed / total, failing


def report_lines(report: dict) -> list[str]:
    """The table for one ``eval continuation`` report (Markdown lines)."""
    lines = ["| set | prompt chroma H | draws | chroma rise (all draws) | peak share (all draws) | "
             f"missed at {ACCEPTANCE_DRAWS} draws | failing check |", "|---|---|---|---|---|---|---|"]
    for name, result in report["sets"].items():
        expected = 0.0
        for prompt in result["prompts"]:
            share, failing = miss_share(prompt)
            expected += share
            median = prompt["median"]
            rise = median["chroma_entropy"] - prompt["prompt"]["chroma_entropy"]
            check = failing.most_common(1)[0][0] if failing else ""
            lines.append(f"| {name} | {prompt['prompt']['chroma_entropy']:.2f} | {len(prompt['draws'])} | "
                         f"{rise:+.2f} | {median['peak_energy_share']:.2f} | {share:.0%} | {check} |")
        lines.append(f"| {name}: expected misses | | | | | {expected:.2f} of {len(result['prompts'])} | |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", metavar="JSON", help="wavegen eval continuation --json reports")
    args = p.parse_args(argv)
    for path in args.reports:
        try:
            report = json.loads(Path(path).read_text())
            lines = report_lines(report)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        print(f"{path}:")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
