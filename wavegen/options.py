"""Building a config dataclass from a mapping of its options (a checkpoint's dict or a composed config).

Model configs are read from two kinds of mapping: the ``model`` block of a composed Hydra
config (checked against its schema in :mod:`wavegen.schema` first) and the plain dict a
checkpoint stores (``torch.load(weights_only=True)``, no Hydra on the machine). Both go
through :func:`dataclass_from`, so an unknown option is one line naming the valid ones
whichever way the config came in. Nothing here imports Hydra or OmegaConf: an OmegaConf
node is read through the ``Mapping``/``Sequence`` interfaces it implements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable, TypeVar

from wavegen.errors import WavegenError

T = TypeVar("T")


def plain(value: Any) -> Any:
    """A mapping or sequence (OmegaConf's included, interpolations resolved) as nested dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def dataclass_from(cls: type[T], mapping: Mapping[str, Any] | None, where: str, *,
                   ignore: Iterable[str] = (), **fixed: Any) -> T:
    """``cls(**mapping, **fixed)``, refusing keys ``cls`` has no field for in one line.

    ``where`` names the block in the message (``"unknown encoder option(s) ['widht']; ..."``);
    keys in ``ignore`` are dropped silently (``family`` and ``name`` label a config, they are not options).
    """
    names = set(cls.__dataclass_fields__)
    values = {k: v for k, v in dict(mapping or {}).items() if k not in set(ignore)}
    unknown = set(values) - names
    if unknown:
        raise WavegenError(f"unknown {where} option(s) {sorted(unknown)}; valid options: {sorted(names)}")
    return cls(**{**values, **fixed})
