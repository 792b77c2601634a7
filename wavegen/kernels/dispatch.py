"""Choosing an implementation per call: reference, compiled CPU, or compiled CUDA.

``backend="auto"`` picks the compiled kernel for the tensors' device when it can be
built and supports the inputs, and the reference otherwise (after one warning line
if the build failed). Naming a backend forces it: it raises instead of falling back.
Setting ``WAVEGEN_KERNELS=reference`` in the environment makes ``auto`` always
choose the reference (handy when bisecting a numerical difference).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from typing import Iterator, Optional

import torch
from torch import Tensor

from wavegen.errors import WavegenError
from wavegen.kernels import build, reference
from wavegen.kernels.reference import HEAD_CATEGORICAL, PackedWaveNet

BACKENDS = ("auto", "reference", "cpu", "cuda")

_weights_dtype: contextvars.ContextVar[torch.dtype] = contextvars.ContextVar("wavegen_weights_dtype",
                                                                               default=torch.float32)


# ----------------------------------------------------------------------------- precision


def get_weights_dtype() -> torch.dtype:
    """Storage dtype of the WaveNet kernels' weight matrices (float32 unless changed)."""
    return _weights_dtype.get()


def set_weights_dtype(dtype: torch.dtype) -> None:
    """Store the kernels' weight matrices as ``dtype`` (float32, float16 or bfloat16) from now on.

    Accumulation stays float32. Reduced precision halves the weight memory traffic; samples
    then differ from the float32 reference within the tolerance stated in the tests.
    """
    from wavegen.kernels.layout import WEIGHT_DTYPES

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weights dtype must be one of {WEIGHT_DTYPES}, got {dtype}")
    _weights_dtype.set(dtype)


@contextlib.contextmanager
def weights_precision(dtype: torch.dtype) -> Iterator[None]:
    """``with weights_precision(torch.float16): ...`` - a scoped :func:`set_weights_dtype`."""
    from wavegen.kernels.layout import WEIGHT_DTYPES

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weights dtype must be one of {WEIGHT_DTYPES}, got {dtype}")
    token = _weights_dtype.set(dtype)
    try:
        yield
    finally:
        _weights_dtype.reset(token)


# ----------------------------------------------------------------------------- choosing


def _reference_forced() -> bool:
    return os.environ.get("WAVEGEN_KERNELS", "").strip().lower() in ("0", "off", "reference", "none")


def compiled_available(device_type: str) -> bool:
    """Build (once) and report whether the compiled kernels for ``cpu`` / ``cuda`` can be used."""
    if device_type == "cuda" and not torch.cuda.is_available():
        return False
    if device_type not in build.EXTENSIONS:
        return False
    return build.load(device_type).ok


def choose_backend(backend: str, device: torch.device, unsupported: Optional[str]) -> str:
    """Resolve ``backend`` for tensors on ``device``; ``unsupported`` says why the kernel cannot run (or None)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose one of {BACKENDS}")
    if backend == "reference":
        return "reference"
    if backend == "auto":
        if _reference_forced() or unsupported is not None or device.type not in ("cpu", "cuda"):
            return "reference"
        return device.type if compiled_available(device.type) else "reference"
    if backend != device.type:
        raise ValueError(f"kernel backend {backend!r} cannot run on tensors on {device}")
    if unsupported is not None:
        raise ValueError(f"the {backend} kernel does not support these inputs: {unsupported}")
    if backend == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the cuda kernel backend needs a CUDA device")
    result = build.load(backend, warn=False)
    if not result.ok:
        raise RuntimeError(f"the {backend} kernels could not be built: {result.error}")
    return backend


def _needs_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# ----------------------------------------------------------------------------- WaveNet step


def _wavenet_unsupported(w: PackedWaveNet, queues: Tensor, bias: Tensor) -> Optional[str]:
    if queues.dtype != torch.float32:
        return f"queues must be float32 (got {queues.dtype}); the kernels keep activations in float32"
    if not queues.is_contiguous():
        return "queues must be contiguous (they are updated in place)"
    if w.kernel_size < 2:
        return f"kernel size must be at least 2, got {w.kernel_size}"
    if bias.device != queues.device:
        return f"bias is on {bias.device} but the queues are on {queues.device}"
    if _needs_grad(bias, w.conv_w):
        return "an input requires grad (the kernels are inference-only)"
    return None


def _check_ranges(w: PackedWaveNet, next_input: Tensor, forced: Optional[Tensor], frame_index: Tensor,
                  frames: int) -> None:
    """Indices the kernels would read memory with: frames, and categorical tokens.

    Only tensors in host memory are checked: reading a GPU tensor's range would synchronise
    the device with the host on every call. The CUDA kernel clamps frame indices and tokens
    to their valid ranges instead, so a bad index on the device cannot read outside memory.
    """
    checks = [] if frame_index.numel() == 0 else [("frame_index", frame_index, frames)]
    if w.head_kind == HEAD_CATEGORICAL:
        checks.append(("next_input token", next_input, w.classes))
        if forced is not None and forced.numel():
            checks.append(("forced token", forced, w.classes))
    checks = [check for check in checks if check[1].device.type == "cpu"]
    if not checks:
        return
    bounds = torch.stack([torch.stack([t.min().long(), t.max().long()]).cpu() for _, t, _ in checks]).tolist()
    for (name, _, limit), (low, high) in zip(checks, bounds):
        if low < 0 or high >= limit:
            raise ValueError(f"{name} out of range: values span [{low}, {high}], valid [0, {limit})")


def wavenet_generate(
    w: PackedWaveNet,
    queues: Tensor,
    t0: int,
    next_input: Tensor,
    bias: Tensor,
    frame_index: Tensor,
    uniforms: Tensor,
    forced: Optional[Tensor] = None,
    temperature: float = 1.0,
    return_logits: bool = False,
    backend: str = "auto",
    weights_dtype: Optional[torch.dtype] = None,
) -> tuple[Tensor, Optional[Tensor]]:
    """Advance a WaveNet by ``n = len(frame_index)`` samples; see :func:`reference.wavenet_generate`.

    Same arguments and results as the reference (``queues`` updated in place), plus
    ``backend`` ("auto" | "reference" | "cpu" | "cuda") and ``weights_dtype`` (storage of
    the kernels' weight matrices; default :func:`get_weights_dtype`).
    """
    choice = choose_backend(backend, queues.device, _wavenet_unsupported(w, queues, bias))
    if choice == "reference":
        return reference.wavenet_generate(w, queues, t0, next_input, bias, frame_index, uniforms, forced,
                                          temperature, return_logits)
    from wavegen.kernels.layout import layout_cache

    _check_ranges(w, next_input, forced, frame_index, bias.shape[1])
    device = queues.device
    kw = layout_cache.get(w, weights_dtype or get_weights_dtype(), device)
    token_dtype = torch.long if w.head_kind == HEAD_CATEGORICAL else torch.float32
    G = kw.conv.shape[2]
    if bias.dtype != torch.float32 or bias.stride(3) != 1 or bias.stride(2) != G:
        bias = bias.to(torch.float32).contiguous()
    forced_arg = None if forced is None else forced.to(device=device, dtype=token_dtype).contiguous()
    try:
        tokens, logits = torch.ops.wavegen.wavenet_generate(
            queues,
            int(t0),
            next_input.to(device=device, dtype=token_dtype).contiguous(),
            bias,
            frame_index.to(device=device, dtype=torch.long).contiguous(),
            uniforms.to(device=device, dtype=torch.float32).contiguous(),
            forced_arg,
            float(temperature),
            bool(return_logits),
            *kw.op_args(),
        )
    except RuntimeError as exc:
        # A launch shape forced through WAVEGEN_CUDA_* that the kernel cannot run is the
        # user's setting, not a bug: say so in one line.
        planner = re.search(r"cannot plan the launch:[^\n]*", str(exc))
        if planner is None:
            raise
        raise WavegenError(planner.group(0)) from None
    if forced is not None and forced.dtype != tokens.dtype:
        tokens = tokens.to(forced.dtype)  # the reference returns forced tokens as given
    return tokens, (logits if return_logits else None)


# ----------------------------------------------------------------------------- vocoder ops


def film_leaky_relu(x: Tensor, scale: Tensor, shift: Tensor, negative_slope: float = 0.2,
                    backend: str = "auto") -> Tensor:
    """``leaky_relu(scale * x + shift)``; see :func:`reference.film_leaky_relu` (inference-only kernels)."""
    unsupported = None
    if _needs_grad(x, scale, shift):
        unsupported = "an input requires grad (the kernels are inference-only)"
    elif x.dim() != 3:
        unsupported = f"x must be Tensor[B, C, T], got {tuple(x.shape)}"
    elif not (x.dtype == scale.dtype == shift.dtype) or x.dtype not in (torch.float32, torch.float16,
                                                                          torch.bfloat16):
        unsupported = "x, scale and shift must share one of float32, float16, bfloat16"
    elif not (x.device == scale.device == shift.device):
        unsupported = "x, scale and shift must be on one device"
    else:
        try:
            torch.broadcast_shapes(scale.shape, shift.shape, x.shape)
        except RuntimeError:
            unsupported = "scale and shift do not broadcast to x"
        else:
            if torch.broadcast_shapes(scale.shape, shift.shape, x.shape) != x.shape:
                unsupported = "scale and shift would broadcast x to a larger shape"
    choice = choose_backend(backend, x.device, unsupported)
    if choice == "reference":
        return reference.film_leaky_relu(x, scale, shift, negative_slope)
    return torch.ops.wavegen.film_leaky_relu(x, scale.expand_as(x), shift.expand_as(x), float(negative_slope))


def diffusion_update(y: Tensor, eps: Tensor, noise: Optional[Tensor], c1: float, c2: float, sigma: float,
                     clamp: bool = True, backend: str = "auto") -> Tensor:
    """One reverse-diffusion step; see :func:`reference.diffusion_update` (inference-only kernels)."""
    unsupported = None
    tensors = [t for t in (y, eps, noise) if t is not None]
    if _needs_grad(*tensors):
        unsupported = "an input requires grad (the kernels are inference-only)"
    elif any(t.shape != y.shape or t.dtype != y.dtype or t.device != y.device for t in tensors):
        unsupported = "y, eps and noise must share shape, dtype and device"
    elif y.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        unsupported = f"dtype {y.dtype} is not float32, float16 or bfloat16"
    choice = choose_backend(backend, y.device, unsupported)
    if choice == "reference":
        return reference.diffusion_update(y, eps, noise, c1, c2, sigma, clamp)
    return torch.ops.wavegen.diffusion_update(y, eps, noise, float(c1), float(c2), float(sigma), bool(clamp))
