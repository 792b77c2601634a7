"""``wavegen <command>``: the command-line entry point.

Each sub-command lives in its own module under :mod:`wavegen.commands` and
registers itself. User errors (:class:`~wavegen.errors.WavegenError`, config
errors) print one line and exit 2; set ``WAVEGEN_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from wavegen.errors import WavegenError

# Modules under wavegen.commands, in the order their commands appear in --help.
COMMAND_MODULES = [
    "train",
    "sample",
    "recipe",
    "codes",
    "codeset",
    "generate",
    "data",
    "vocode",
    "vocoder",
    "evaluate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavegen",
        description="Generate music as raw audio: train WaveNets, autoencoders and vocoders; sample, vocode, encode.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"wavegen.commands.{name}")
        module.register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args, extra = parser.parse_known_args(argv)
    # argparse gives a command's Hydra overrides (a nargs="*" positional) only the KEY=VALUE words
    # before its first option; `codes dump CKPT -o OUT data=maestro` would be refused without this.
    overrides = getattr(args, "overrides", None)
    if extra and isinstance(overrides, list) and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = overrides + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    debug = os.environ.get("WAVEGEN_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except WavegenError as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # config and library errors still get one line
        if debug:
            raise
        from omegaconf.errors import OmegaConfBaseException
        from hydra.errors import HydraException

        if isinstance(exc, (OmegaConfBaseException, HydraException)):
            print(f"error: config: {_one_line(exc)}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (set WAVEGEN_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
