"""Add a shipped model to the registry from a training checkpoint (a maintainer's tool).

::

    python -m wavegen.pretrained.export runs/vocoder_piano/checkpoints/last.pt \\
        --name piano-16k --card piano-16k.md [--fp16] [--default steps=6] [--root DIR]

What ships is what inference needs: the EMA weights (the raw weights, optimiser,
scheduler and RNG state are left behind), the model and audio config and the
family's inference extras (a vocoder's stored schedules). The weight file is
written atomically beside ``registry.json`` as a version-2 wavegen checkpoint,
its SHA-256 goes into the registry, and the registry is rewritten atomically.

The entry's ``sampling`` defaults, lowest precedence first: the family's (``_DEFAULTS``;
a vocoder's stored ``default_steps``), the ``sampling`` block of the config the checkpoint
was trained with (:func:`wavegen.checkpoint.sampling_defaults`), then each ``--default``.
A WaveNet's are checked against its head (:func:`wavegen.generate.sampling.checked_defaults`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Optional

import torch

from wavegen.data.files import write_bytes_atomic
from wavegen.errors import WavegenError
from wavegen.pretrained import ENV, FORMAT, REGISTRY, VERSION, file_sha256

# Sampling defaults per family, overridable with --default KEY=VALUE.
_DEFAULTS = {"vocoder": {"steps": 6}, "wavenet": {"temperature": 1.0}, "autoencoder": {"temperature": 1.0}}
# Bookkeeping of a training run that means nothing to a user of the model.
_TRAINING_EXTRA = ("nonfinite_total",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _target_folder(root: Optional[str | os.PathLike]) -> Path:
    """``root``, else ``$WAVEGEN_PRETRAINED_DIR``, else the package folder (the same order loading uses)."""
    chosen = root if root is not None else os.environ.get(ENV) or None
    return Path(chosen) if chosen is not None else Path(__file__).resolve().parent


def _read_index(folder: Path) -> dict:
    index = folder / REGISTRY
    if not index.exists():
        return {"format": FORMAT, "version": VERSION, "models": {}}
    from wavegen.pretrained import read_registry

    return {"format": FORMAT, "version": VERSION, "models": dict(read_registry(folder))}


def inference_state(ckpt: dict, fp16: bool = False) -> dict:
    """The part of a training checkpoint a shipped model keeps: EMA weights (as ``model``), configs, extras."""
    weights = ckpt.get("ema") or ckpt["model"]
    if fp16:
        weights = {k: (v.half() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in weights.items()}
    extra = {k: v for k, v in (ckpt.get("extra") or {}).items() if k not in _TRAINING_EXTRA}
    return {"format": ckpt["format"], "family": ckpt["family"], "model_config": ckpt["model_config"],
            "audio": ckpt["audio"], "model": weights, "step": int(ckpt.get("step", 0)), "extra": extra, "config": {}}


def export(checkpoint: str | os.PathLike, name: str, card: Optional[str | os.PathLike] = None, fp16: bool = False,
           defaults: Optional[dict] = None, root: Optional[str | os.PathLike] = None,
           overwrite: bool = False) -> dict:
    """Write ``name``'s weight file (and card) into ``root`` and register it.

    ``root`` defaults to ``$WAVEGEN_PRETRAINED_DIR``, else this package's folder.

    Returns the registry entry.
    """
    from wavegen.checkpoint import atomic_torch_save, load_checkpoint, sampling_defaults
    from wavegen.generate.sampling import checked_defaults
    from wavegen.models.wavenet import WaveNetConfig

    if not _NAME.match(name):
        raise WavegenError(f"model name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    folder = _target_folder(root)
    if not folder.is_dir():
        raise WavegenError(f"registry folder not found: {folder}")
    index = _read_index(folder)
    if name in index["models"] and not overwrite:
        raise WavegenError(f"a shipped model named {name!r} already exists (pass --overwrite to replace it)")
    card_text = None
    if card is not None:
        try:
            card_text = Path(card).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WavegenError(f"cannot read the model card {card}: {getattr(exc, 'strerror', None) or exc}") from None
    ckpt = load_checkpoint(checkpoint)  # verifies the training checkpoint's own checksum
    state = inference_state(ckpt, fp16)
    family = state["family"]
    sampling = dict(_DEFAULTS.get(family, {}))
    if family == "vocoder":
        stored = ((ckpt.get("extra") or {}).get("vocoder") or {}).get("default_steps")
        if stored:
            sampling["steps"] = int(stored)
    sampling.update(sampling_defaults(ckpt))
    sampling.update(defaults or {})
    if family == "wavenet":
        head = WaveNetConfig.from_mapping(state["model_config"]).head
        sampling = checked_defaults(sampling, head, where="sampling defaults")
    weight_file = folder / f"{name}.pt"
    atomic_torch_save(state, weight_file)
    entry = {
        "file": weight_file.name,
        "sha256": file_sha256(weight_file),
        "bytes": weight_file.stat().st_size,
        "family": family,
        "dtype": "float16" if fp16 else "float32",
        "audio": state["audio"],
        "sampling": sampling,
        "card": None,
    }
    if card_text is not None:
        card_file = folder / f"{name}.md"
        write_bytes_atomic(card_file, card_text.encode("utf-8"))
        entry["card"] = card_file.name
    index["models"][name] = entry
    index["models"] = dict(sorted(index["models"].items()))
    write_bytes_atomic(folder / REGISTRY, (json.dumps(index, indent=2) + "\n").encode("utf-8"))
    return entry


def _parse_default(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise WavegenError(f"--default takes KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wavegen.pretrained.export",
                                     description="Add a shipped model to wavegen's registry from a checkpoint.")
    parser.add_argument("checkpoint", help="a training checkpoint (e.g. runs/vocoder_piano/checkpoints/last.pt)")
    parser.add_argument("--name", required=True, help="the name users load it by (e.g. piano-16k)")
    parser.add_argument("--card", help="the model card (Markdown) shipped beside the weights")
    parser.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    parser.add_argument("--default", action="append", default=[], metavar="KEY=VALUE",
                        help="a sampling default of the loaded object (e.g. steps=6, top_p=0.97); overrides "
                        "the sampling block of the config the checkpoint was trained with, which is copied "
                        "otherwise")
    parser.add_argument("--root", help="registry folder (default: $WAVEGEN_PRETRAINED_DIR, else this "
                        "wavegen's own wavegen/pretrained)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing entry of that name")
    args = parser.parse_args(argv)
    try:
        defaults = dict(_parse_default(d) for d in args.default)
        entry = export(args.checkpoint, args.name, args.card, args.fp16, defaults, args.root, args.overwrite)
    except WavegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"registered {args.name!r}: {entry['file']} ({entry['bytes'] / 1e6:.1f} MB, {entry['family']}, "
          f"{entry['dtype']}, sha256 {entry['sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
