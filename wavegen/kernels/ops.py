"""``torch.library`` schemas of the compiled ops (namespace ``wavegen``).

The schemas live here, in Python, so the CPU and the CUDA libraries can each be
built and loaded on their own: each only registers its implementation
(``TORCH_LIBRARY_IMPL(wavegen, CPU|CUDA, m)``). Shape-only ("fake") versions
let ``torch.compile`` and meta tensors trace through the ops.

Weights are passed in the kernel layout of :mod:`wavegen.kernels.layout`.
"""

from __future__ import annotations

import threading

import torch

NAMESPACE = "wavegen"

SCHEMAS = {
    "wavenet_generate": (
        "wavenet_generate(Tensor(a!) queues, int t0, Tensor next_input, Tensor bias, Tensor frame_index, "
        "Tensor uniforms, Tensor? forced, float temperature, bool return_logits, int[] dilations, int head_kind, "
        "int classes, float log_scale_min, Tensor embed, Tensor conv, Tensor proj, Tensor res_b, Tensor skip_b, "
        "Tensor out1, Tensor out1_b, Tensor out2, Tensor out2_b) -> (Tensor, Tensor)"
    ),
    "film_leaky_relu": "film_leaky_relu(Tensor x, Tensor scale, Tensor shift, float negative_slope) -> Tensor",
    "diffusion_update": (
        "diffusion_update(Tensor y, Tensor eps, Tensor? noise, float c1, float c2, float sigma, bool clamp) -> Tensor"
    ),
}

_library = None
_lock = threading.Lock()


def define_ops() -> None:
    """Define the op schemas once per process (cheap; compiles nothing)."""
    global _library
    with _lock:
        if _library is not None:
            return
        library = torch.library.Library(NAMESPACE, "FRAGMENT")
        for schema in SCHEMAS.values():
            library.define(schema)
        _register_fakes()
        _library = library


def _register_fakes() -> None:
    def wavenet_generate_fake(queues, t0, next_input, bias, frame_index, uniforms, forced, temperature,
                              return_logits, dilations, head_kind, classes, log_scale_min, embed, conv, proj,
                              res_b, skip_b, out1, out1_b, out2, out2_b):
        # out2 is Tensor[Ap/64, S, 64] (panels of the S -> A matrix, A padded to whole panels),
        # so the number of logits A comes from its bias, out2_b Tensor[A], not from out2's shape.
        batch, n, logit_count = queues.shape[0], frame_index.shape[0], out2_b.shape[0]
        dtype = torch.long if head_kind == 0 else torch.float32
        tokens = queues.new_empty((batch, n), dtype=dtype)
        logits = queues.new_empty((n, batch, logit_count) if return_logits else (0,), dtype=torch.float32)
        return tokens, logits

    def film_fake(x, scale, shift, negative_slope):
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    def diffusion_fake(y, eps, noise, c1, c2, sigma, clamp):
        return torch.empty_like(y, memory_format=torch.contiguous_format)

    torch.library.register_fake(f"{NAMESPACE}::wavenet_generate")(wavenet_generate_fake)
    torch.library.register_fake(f"{NAMESPACE}::film_leaky_relu")(film_fake)
    torch.library.register_fake(f"{NAMESPACE}::diffusion_update")(diffusion_fake)


def has_kernel(op: str, device_type: str) -> bool:
    """Whether ``wavegen::<op>`` has a compiled implementation for ``device_type`` loaded."""
    if _library is None:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}[device_type]
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"{NAMESPACE}::{op}", key)
