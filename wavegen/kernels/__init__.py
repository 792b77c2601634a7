"""Fused inference ops shared by every autoregressive decoder and the vocoder.

Each op has a pure-PyTorch reference (:mod:`wavegen.kernels.reference`) that
defines its meaning; compiled C++ (CPU) and CUDA (GPU) versions, registered as
``torch.library`` ops in the ``wavegen`` namespace, are chosen by the tensors'
device when they can be built, and the reference is used otherwise.

Map of the package:

- :mod:`~wavegen.kernels.reference` - the definitions (pure PyTorch).
- :mod:`~wavegen.kernels.dispatch` - backend choice per call, precision setting.
- :mod:`~wavegen.kernels.layout` - the weight layout the compiled WaveNet step reads.
- :mod:`~wavegen.kernels.ops` - op schemas (``wavegen::wavenet_generate`` ...).
- :mod:`~wavegen.kernels.build` - just-in-time compilation into a disk cache.
- ``csrc/`` - the C++ and CUDA sources.

Importing this package compiles nothing and needs only torch (and numpy).
"""

from __future__ import annotations

from wavegen.kernels import reference
from wavegen.kernels.dispatch import (
    BACKENDS,
    compiled_available,
    diffusion_update,
    film_leaky_relu,
    get_weights_dtype,
    set_weights_dtype,
    wavenet_generate,
    weights_precision,
)
from wavegen.kernels.reference import PackedWaveNet

__all__ = [
    "BACKENDS",
    "PackedWaveNet",
    "compiled_available",
    "diffusion_update",
    "film_leaky_relu",
    "get_weights_dtype",
    "reference",
    "set_weights_dtype",
    "wavenet_generate",
    "weights_precision",
]
