"""Pure-PyTorch reference of the fused WaveNet step: the op's definition.

The C++ and CUDA kernels must reproduce :func:`wavenet_generate` (see the tests).

One call advances every layer of a WaveNet by ``n`` samples for a batch of ``B``
independent streams. Per step ``i`` (absolute time ``t = t0 + i``) and layer ``l``
with dilation ``d`` and kernel size ``k``::

    x     = embed(input token)                                   # [B, R]
    z     = Σ_j conv_w[l, k-1-j] · x(t - j·d)   (j = 0..k-1)      # [B, G]; x(t) is x itself,
          + bias[b, frame_index[i], l]                           #   x(t - j·d) from the queue
    queue_l(t) <- x
    a     = tanh(z[:G/2]) * sigmoid(z[G/2:])                     # [B, G/2]
    skip += skip_w[l] · a                                        # [B, S]
    x     = x + res_w[l] · a + res_b[l]                          # next layer's input
    logits = out2_w · relu(out1_w · relu(skip + skip_b) + out1_b) + out2_b
    token  = head sample(logits, uniforms[i], temperature)  (or forced[:, i] when given)

Queues are ring buffers, one flat Tensor[B, Q, R] for all layers: layer ``l`` owns
rows ``offsets[l] : offsets[l] + (k-1)·d``, and the input at time ``τ`` lives in row
``offsets[l] + τ mod ((k-1)·d)``. All-zero queues equal the causal zero padding of
the full forward pass, and each step costs the same whatever the receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

HEAD_CATEGORICAL = 0
HEAD_MOL = 1
UNIFORM_EPS = 1e-5


@dataclass
class PackedWaveNet:
    """A WaveNet's weights laid out for the step kernels (all contiguous, one dtype).

    L layers, R residual, G gate (G/2 after gating), S skip, A head outputs, k kernel size.
    """

    dilations: list[int]
    kernel_size: int
    head_kind: int  # HEAD_CATEGORICAL or HEAD_MOL
    classes: int  # categorical: classes; mol: mixtures
    embed: Tensor  # categorical: [A, R] table; mol: [2, R] (weight row, bias row)
    conv_w: Tensor  # [L, k, G, R]; tap k-1 is the current input, tap 0 the oldest
    res_w: Tensor  # [L, R, G/2]
    res_b: Tensor  # [L, R]
    skip_w: Tensor  # [L, S, G/2]
    skip_b: Tensor  # [S], all layers' skip biases summed
    out1_w: Tensor  # [S, S]
    out1_b: Tensor  # [S]
    out2_w: Tensor  # [A_out, S]
    out2_b: Tensor  # [A_out]
    mol_log_scale_min: float = -16.0

    @property
    def layers(self) -> int:
        return len(self.dilations)

    @property
    def residual_channels(self) -> int:
        return self.conv_w.shape[3]

    @property
    def gate_channels(self) -> int:
        return self.conv_w.shape[2]

    def queue_sizes(self) -> list[int]:
        return [(self.kernel_size - 1) * d for d in self.dilations]

    def queue_offsets(self) -> list[int]:
        offsets, total = [], 0
        for size in self.queue_sizes():
            offsets.append(total)
            total += size
        return offsets

    def queue_rows(self) -> int:
        return sum(self.queue_sizes())

    def to(self, device=None, dtype=None) -> "PackedWaveNet":
        fields = {}
        for name, value in self.__dict__.items():
            fields[name] = value.to(device=device, dtype=dtype) if isinstance(value, Tensor) else value
        return PackedWaveNet(**fields)


def embed_tokens(w: PackedWaveNet, tokens: Tensor) -> Tensor:
    """Tensor[B] tokens -> Tensor[B, R] first-layer input."""
    if w.head_kind == HEAD_CATEGORICAL:
        return w.embed[tokens.long()]
    return tokens.to(w.embed.dtype)[:, None] * w.embed[0] + w.embed[1]


def sample_from_logits(w: PackedWaveNet, logits: Tensor, uniforms: Tensor, temperature: float) -> Tensor:
    """Tensor[B, A_out], Tensor[B, 2] -> Tensor[B] tokens (long for categorical, float for mol)."""
    logits = logits.float()
    u0 = uniforms[:, :1].float()
    if w.head_kind == HEAD_CATEGORICAL:
        if temperature <= 0:
            return logits.argmax(dim=-1)
        cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
        return (cdf < u0).sum(dim=-1).clamp_max(w.classes - 1)
    m = w.classes
    weights, means, log_scales = logits[:, :m], logits[:, m : 2 * m], logits[:, 2 * m : 3 * m]
    log_scales = log_scales.clamp_min(w.mol_log_scale_min)
    cdf = torch.softmax(weights, dim=-1).cumsum(dim=-1)
    component = (cdf < u0).sum(dim=-1).clamp_max(m - 1)[:, None]
    mean = means.gather(1, component)[:, 0]
    scale = torch.exp(log_scales.gather(1, component)[:, 0])
    u = uniforms[:, 1].float().clamp(UNIFORM_EPS, 1 - UNIFORM_EPS)
    return (mean + temperature * scale * (torch.log(u) - torch.log1p(-u))).clamp(-1.0, 1.0)


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
) -> tuple[Tensor, Optional[Tensor]]:
    """Advance ``n = len(frame_index)`` steps; updates ``queues`` in place.

    Args:
        queues: Tensor[B, Q, R] ring buffers (see the module docstring).
        t0: absolute time of the first step (selects ring rows).
        next_input: Tensor[B] token fed at the first step.
        bias: Tensor[B, F, L, G] per-frame, per-layer pre-activation bias
            (conv bias + global + local conditioning).
        frame_index: LongTensor[n], the frame of ``bias`` each step reads.
        uniforms: Tensor[n, B, 2] pre-drawn uniforms in [0, 1).
        forced: Tensor[B, n] tokens to emit instead of sampling (teacher forcing, priming).
        temperature: softmax / logistic temperature; 0 means greedy.
        return_logits: also return the logits, Tensor[n, B, A_out].

    Returns:
        (tokens Tensor[B, n], logits or None). The token after the last step is
        ``tokens[:, -1]``: the caller feeds it as ``next_input`` of the next call.
    """
    n = frame_index.shape[0]
    k = w.kernel_size
    half = w.gate_channels // 2
    sizes, offsets = w.queue_sizes(), w.queue_offsets()
    frames = frame_index.tolist()
    token = next_input
    tokens, all_logits = [], []
    for i in range(n):
        t = t0 + i
        x = embed_tokens(w, token).to(queues.dtype)
        skip = None
        for l, d in enumerate(w.dilations):
            z = x @ w.conv_w[l, k - 1].T + bias[:, frames[i], l]
            for j in range(1, k):
                row = offsets[l] + (t - j * d) % sizes[l]
                z = z + queues[:, row] @ w.conv_w[l, k - 1 - j].T
            queues[:, offsets[l] + t % sizes[l]] = x
            a = torch.tanh(z[:, :half]) * torch.sigmoid(z[:, half:])
            s = a @ w.skip_w[l].T
            skip = s if skip is None else skip + s
            x = x + a @ w.res_w[l].T + w.res_b[l]
        h = torch.relu(torch.relu(skip + w.skip_b) @ w.out1_w.T + w.out1_b)
        logits = h @ w.out2_w.T + w.out2_b
        if forced is not None:
            token = forced[:, i]
        else:
            token = sample_from_logits(w, logits, uniforms[i], temperature)
        tokens.append(token)
        if return_logits:
            all_logits.append(logits)
    out = torch.stack(tokens, dim=1)
    return out, (torch.stack(all_logits) if return_logits else None)


# ----------------------------------------------------------------------------- vocoder ops


def film_leaky_relu(x: Tensor, scale: Tensor, shift: Tensor, negative_slope: float = 0.2) -> Tensor:
    """FiLM modulation fused with its activation: ``leaky_relu(scale * x + shift)``.

    x, scale, shift: Tensor[B, C, T] (scale and shift may broadcast over T).
    """
    return torch.nn.functional.leaky_relu(scale * x + shift, negative_slope)


def diffusion_update(
    y: Tensor, eps: Tensor, noise: Optional[Tensor], c1: float, c2: float, sigma: float, clamp: bool = True
) -> Tensor:
    """One reverse-diffusion step: ``y' = c1 · (y - c2 · eps) + sigma · noise``, clipped to [-1, 1].

    For a discrete schedule step n: ``c1 = 1/sqrt(alpha_n)``, ``c2 = beta_n / sqrt(1 - alpha_bar_n)``,
    ``sigma`` the posterior standard deviation (0 on the last step). y, eps, noise: Tensor[B, T].
    """
    out = c1 * (y - c2 * eps)
    if noise is not None and sigma > 0:
        out = out + sigma * noise
    return out.clamp(-1.0, 1.0) if clamp else out
