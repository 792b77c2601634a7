"""``wavegen recipe run|list|show``: multi-stage pipelines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("recipe", help="run multi-stage recipes (recipes/*.yaml)")
    rs = p.add_subparsers(dest="recipe_command", metavar="<action>")
    rs.required = True
    run_p = rs.add_parser("run", help="run a recipe's stages in order; finished stages are skipped")
    run_p.add_argument("name", help="recipe name (recipes/NAME.yaml) or a path to a recipe file")
    run_p.add_argument("--root", help="run folder (default: runs/<recipe name>)")
    run_p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    run_p.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    run_p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                       help="extra Hydra override for every train stage (e.g. --train train.steps=50)")
    run_p.add_argument("--smoke", action="store_true",
                       help="append each stage's smoke arguments: a few steps per stage on small data, to check "
                       "every path of the recipe in seconds (the output is not music)")
    run_p.set_defaults(func=run)
    list_p = rs.add_parser("list", help="list the recipes")
    list_p.set_defaults(func=list_recipes)


def run(args: argparse.Namespace) -> int:
    from wavegen.cli import main  # each stage runs in this process, through the CLI's own entry point
    from wavegen.locking import FolderLock
    from wavegen.recipes import StageInterrupted, load_recipe, run_recipe

    recipe = load_recipe(args.name)
    root = Path(args.root) if args.root else Path("runs") / recipe.name
    print(f"recipe {recipe.name}: {recipe.description} -> {root}")
    if args.dry_run:  # reads only: no lock, so a plan can be printed while the recipe runs
        run_recipe(recipe, root, args.train, dry_run=True, only=args.stage, runner=main, smoke=args.smoke)
        return 0
    with FolderLock(root, "the recipe root"):  # one `recipe run` per root at a time
        try:
            run_recipe(recipe, root, args.train, only=args.stage, runner=main, smoke=args.smoke)
        except StageInterrupted as stopped:
            print(stopped, file=sys.stderr, flush=True)
            return stopped.exit_code
    return 0


def list_recipes(args: argparse.Namespace) -> int:
    from wavegen.config import recipe_dir
    from wavegen.recipes import load_recipe

    for path in sorted(recipe_dir().glob("*.yaml")):
        recipe = load_recipe(str(path))
        print(f"{recipe.name:28s} {recipe.description}")
    return 0
