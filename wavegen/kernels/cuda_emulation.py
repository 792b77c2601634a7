"""Run the CUDA WaveNet kernel's code on the CPU, for tests on machines without a GPU.

``csrc/emulation/`` compiles ``csrc/wavenet_cuda.cu`` with the host compiler against a small
emulation of the CUDA features it uses (threads, barriers, warp shuffles, thread-block
clusters, distributed shared memory). Every CUDA thread becomes a fiber on one OS thread, so
it is slow (use a few dozen steps and blocks of 32-64 threads), but it executes the kernel's
real indexing, work split, exchanges and sampling, and the launch planner, and compares with
the reference like the GPU build would. It does not model timing or the GPU memory model's
weaker orderings (``compute-sanitizer`` racecheck and synccheck cover those on a GPU:
benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from wavegen.atomic import atomic_path
from wavegen.errors import WavegenError
from wavegen.kernels.build import CSRC, cache_root
from wavegen.kernels.layout import to_kernel_layout
from wavegen.kernels.reference import HEAD_CATEGORICAL, PackedWaveNet

EMULATION = CSRC / "emulation"
SOURCES = [CSRC / "wavenet_cuda.cu", CSRC / "cuda_launch.h", *sorted(EMULATION.glob("*.h")),
           EMULATION / "harness.cpp"]
STORAGE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

_library: Optional[ctypes.CDLL] = None


def available() -> bool:
    return shutil.which("g++") is not None


def build() -> ctypes.CDLL:
    """Compile (cached by source hash) and load the emulated kernel."""
    global _library
    if _library is not None:
        return _library
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in SOURCES)).hexdigest()[:16]
    folder = cache_root() / f"emulation-{digest}"
    target = folder / "wavegen_cuda_emulation.so"
    if not target.exists():
        with atomic_path(target) as partial:  # atomic: a concurrent build never sees half a library
            command = ["g++", "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-DWAVEGEN_CUDA_EMULATION",
                       f"-I{EMULATION}", f"-I{CSRC}", str(EMULATION / "harness.cpp"), "-o", str(partial)]
            subprocess.run(command, check=True, capture_output=True, text=True)
    library = ctypes.CDLL(str(target))
    library.wavegen_emulated_wavenet_generate.restype = ctypes.c_char_p
    library.wavegen_emulated_wavenet_generate.argtypes = [
        ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int64)]  # ints, floats, pointers, force, plan
    library.wavegen_emulated_device_queries.restype = ctypes.c_int64
    library.wavegen_emulated_device_queries.argtypes = []
    _library = library
    return library


def _pointer(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


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
    weights_dtype: torch.dtype = torch.float32,
    cluster: int = 0,
    streams: int = 0,
    threads: int = 64,
    plan_only: bool = False,
    cached: bool = False,
) -> tuple[Tensor, Optional[Tensor], dict]:
    """The reference's arguments and results (CPU tensors), plus the launch plan it ran with.

    ``cluster``, ``streams``, ``threads`` force the launch shape (0: the planner decides);
    ``plan_only`` returns the plan without running; ``cached`` plans through the per-process
    plan cache as the torch binding does (forced values then come only from WAVEGEN_CUDA_*).
    A launch shape the planner refuses raises :class:`WavegenError` (one line). The pretend
    GPU is an H100-like sm_90 part; ``WAVEGEN_EMU_SMEM`` (bytes of shared memory per block) and ``WAVEGEN_EMU_SMS``
    (multiprocessors) change it, e.g. to exercise weights read from L2.
    """
    library = build()
    kw = to_kernel_layout(w, weights_dtype, "cpu")
    categorical = w.head_kind == HEAD_CATEGORICAL
    token_dtype = torch.long if categorical else torch.float32
    B, n = queues.shape[0], frame_index.shape[0]
    R = queues.shape[2]
    G = bias.shape[3]
    S, A = kw.skip_b.shape[0], kw.out2_b.shape[0]
    assert queues.dtype == torch.float32 and queues.is_contiguous()
    bias = bias.float()
    if bias.stride(3) != 1 or bias.stride(2) != G:
        bias = bias.contiguous()
    frame_index = frame_index.long().contiguous()
    uniforms = uniforms.float().contiguous()
    next_input = next_input.to(token_dtype).contiguous()
    forced = None if forced is None else forced.to(token_dtype).contiguous()
    tokens = torch.empty(B, n, dtype=token_dtype)
    logits = torch.empty(n, B, A) if return_logits else None

    ints = [B, len(kw.dilations), kw.conv.shape[2] // R, R, G, S, A, kw.head_kind, kw.classes,
            STORAGE[weights_dtype], n, int(t0), bias.shape[1], bias.stride(0), bias.stride(1), *kw.dilations]
    floats = [float(temperature), float(kw.log_scale_min)]
    pointers = [queues, bias, frame_index, uniforms,
                next_input if categorical else None, None if categorical else next_input,
                forced if categorical else None, None if categorical else forced,
                tokens if categorical else None, None if categorical else tokens, logits,
                kw.embed, kw.conv, kw.proj, kw.res_b, kw.skip_b, kw.out1, kw.out1_b, kw.out2, kw.out2_b]
    plan = (ctypes.c_int64 * 6)()
    error = library.wavegen_emulated_wavenet_generate(
        (ctypes.c_int64 * len(ints))(*ints), (ctypes.c_double * 2)(*floats),
        (ctypes.c_void_p * len(pointers))(*[_pointer(t) for t in pointers]),
        (ctypes.c_int * 5)(cluster, streams, threads, int(plan_only), int(cached)), plan)
    if error:
        message = error.decode()
        if message.startswith("cannot plan the launch:"):
            raise WavegenError(message)
        raise RuntimeError(f"emulated CUDA kernel: {message}")
    if forced is not None and forced.dtype != tokens.dtype:
        tokens = tokens.to(forced.dtype)
    names = ("cluster", "streams", "threads", "resident_layers", "head_resident", "smem_bytes")
    return tokens, logits, dict(zip(names, list(plan)))


def device_queries() -> int:
    """Device queries (properties, occupancy) the emulated runtime has answered in this process."""
    return int(build().wavegen_emulated_device_queries())
