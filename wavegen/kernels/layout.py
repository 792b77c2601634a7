"""The weight layout the compiled WaveNet kernels read, and its per-model cache.

:class:`~wavegen.kernels.reference.PackedWaveNet` stores matrices output-major,
as ``nn.Conv1d`` does. The kernels want them input-major (``W[k][n]``: one input
value times a contiguous run of outputs, which is a broadcast and a row of FMAs on
the CPU and a coalesced row of loads for a warp on the GPU), cut into *panels* of
64 output columns so that each panel is one contiguous stream of memory::

    W[k][n]  is stored at  [n // 64, k, n % 64]      (N zero-padded to a multiple of 64)

Streaming whole panels matters at batch 1, where the step is bound by how fast the
weights come in from cache: row-strided reads were 1.5x slower on the CPU.

====== ======================== ==================================================
name   shape                    meaning
====== ======================== ==================================================
embed  [classes, R] / [2, R]    input embedding (float32)
conv   [L, Gp/64, k·R, 64]      dilated conv; input ``tap·R + r``, tap 0 the oldest
proj   [L, (R+S)p/64, G/2, 64]  residual 1x1 in outputs ``[0, R)``, skip 1x1 in ``[R, R+S)``
res_b  [L, R]                   residual biases (float32)
skip_b [S]                      all layers' skip biases summed (float32)
out1   [Sp/64, S, 64]           first head layer; out1_b [S] (float32)
out2   [Ap/64, S, 64]           second head layer; out2_b [A] (float32)
====== ======================== ==================================================

(``Xp`` is X rounded up to a multiple of 64.) Matrices are stored in
``weights_dtype`` (float32, float16 or bfloat16; the kernels always accumulate in
float32); vectors stay float32.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from wavegen.kernels.reference import PackedWaveNet

WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
PANEL = 64  # output columns per panel; must equal kPanel in csrc/wavenet_problem.h


def to_panels(w: Tensor) -> Tensor:
    """Input-major Tensor[..., K, N] -> Tensor[..., ceil(N/64), K, 64], zero-padded columns."""
    *lead, K, N = w.shape
    panels = -(-N // PANEL)
    padded = torch.nn.functional.pad(w, (0, panels * PANEL - N))
    return padded.reshape(*lead, K, panels, PANEL).movedim(-2, -3).contiguous()


@dataclass(frozen=True)
class KernelWeights:
    dilations: tuple[int, ...]
    head_kind: int
    classes: int
    log_scale_min: float
    embed: Tensor
    conv: Tensor
    proj: Tensor
    res_b: Tensor
    skip_b: Tensor
    out1: Tensor
    out1_b: Tensor
    out2: Tensor
    out2_b: Tensor

    def op_args(self) -> tuple:
        """The trailing arguments of ``wavegen::wavenet_generate``, in schema order."""
        return (list(self.dilations), self.head_kind, self.classes, self.log_scale_min, self.embed, self.conv,
                self.proj, self.res_b, self.skip_b, self.out1, self.out1_b, self.out2, self.out2_b)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.embed, self.conv, self.proj, self.res_b,
                                                           self.skip_b, self.out1, self.out1_b, self.out2,
                                                           self.out2_b))


def to_kernel_layout(w: PackedWaveNet, weights_dtype: torch.dtype = torch.float32, device=None) -> KernelWeights:
    """PackedWaveNet -> :class:`KernelWeights` on ``device`` (default: where ``w`` lives)."""
    if weights_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHT_DTYPES}, got {weights_dtype}")
    device = w.conv_w.device if device is None else torch.device(device)
    L, k, G, R = w.conv_w.shape

    def matrix(t: Tensor) -> Tensor:
        """Input-major [..., K, N] -> panels in the storage dtype."""
        return to_panels(t.detach().to(device=device, dtype=torch.float32)).to(weights_dtype)

    def vector(t: Tensor) -> Tensor:
        return t.detach().to(device=device, dtype=torch.float32).contiguous()

    conv = w.conv_w.permute(0, 1, 3, 2).reshape(L, k * R, G)  # [L, k, R, G] -> inputs (tap, r)
    proj = torch.cat([w.res_w.transpose(1, 2), w.skip_w.transpose(1, 2)], dim=2)  # [L, G/2, R+S] input-major
    return KernelWeights(
        dilations=tuple(int(d) for d in w.dilations),
        head_kind=int(w.head_kind),
        classes=int(w.classes),
        log_scale_min=float(w.mol_log_scale_min),
        embed=vector(w.embed),
        conv=matrix(conv),
        proj=matrix(proj),
        res_b=vector(w.res_b),
        skip_b=vector(w.skip_b),
        out1=matrix(w.out1_w.t()),
        out1_b=vector(w.out1_b),
        out2=matrix(w.out2_w.t()),
        out2_b=vector(w.out2_b),
    )


def _fingerprint(w: PackedWaveNet) -> tuple:
    """Changes whenever a weight tensor is replaced or modified in place."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
                 for t in w.__dict__.values() if isinstance(t, Tensor)) + (tuple(w.dilations), w.kernel_size)


class _LayoutCache:
    """Kernel layouts per live PackedWaveNet (held weakly), per (dtype, device)."""

    def __init__(self):
        self._entries: dict[int, tuple[weakref.ref, tuple, dict]] = {}
        self._lock = threading.Lock()

    def get(self, w: PackedWaveNet, weights_dtype: torch.dtype, device) -> KernelWeights:
        key = id(w)
        fingerprint = _fingerprint(w)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0]() is not w or entry[1] != fingerprint:
                ref = weakref.ref(w, lambda _, key=key: self._entries.pop(key, None))
                entry = (ref, fingerprint, {})
                self._entries[key] = entry
            layouts = entry[2]
            slot = (weights_dtype, str(torch.device(device)))
            if slot not in layouts:
                layouts[slot] = to_kernel_layout(w, weights_dtype, device)
            return layouts[slot]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


layout_cache = _LayoutCache()
