"""Autoregressive sampling through the shared step API, chunk by chunk.

Works for any model that exposes ``init_state``, ``frame_bias`` and ``step``
(:class:`~wavegen.models.wavenet.WaveNet` and everything built on it). Memory
is bounded by the chunk size: conditioning is turned into per-layer biases one
chunk of frames at a time, never for the whole clip.

Sampling controls (:class:`SamplingControls`), per head:

- μ-law (categorical): ``temperature`` divides the logits (0: argmax); ``top_p`` keeps
  the smallest set of most likely classes holding that much probability (nucleus
  sampling) and renormalises it.
- mixture of logistics (``mol``, and ``lpc_mol`` whose draw is then quantised to its μ-law
  class): ``mixture_temperature`` divides the mixture-weight logits (0: the most likely
  component); ``temperature`` scales the logistic noise (0: the component's mean). Both 0
  is fully greedy. ``lpc_mol`` also takes ``top_p``: its mixture is spread over the μ-law
  classes and the draw is a nucleus draw over them, so the rare wide-tail classes (clicks
  in a free-running stream) are never picked.

The fused kernels sample with one temperature only. Other settings (``top_p < 1``,
``mixture_temperature != 1``) are sampled here in Python: the kernel (whichever
backend ``auto`` picks) computes each sample's logits and the next token is drawn by
:func:`sample_categorical` / :func:`sample_mixture`, one kernel call per sample, so it
is slower (about 100x for the tiny model on a CPU). Every path draws from the same
pre-drawn uniforms by inverse CDF, so with default settings the Python sampler picks
the same tokens as the kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Optional

import torch
from torch import Tensor

from wavegen.errors import WavegenError
from wavegen.nn.heads import UNIFORM_EPS

MIXTURE_HEADS = ("mol", "lpc_mol")

# The smallest uniform the inverse CDF sees: u = 0 must not pick a class of zero probability.
_U_MIN = 1e-12


@dataclass(frozen=True)
class SamplingControls:
    """How to draw each sample from a head's output (see the module docstring)."""

    temperature: float = 1.0  # μ-law: logits temperature; mixture: logistic-scale temperature
    top_p: float = 1.0  # μ-law only: nucleus mass in (0, 1]
    mixture_temperature: float = 1.0  # mixture of logistics only

    def check(self, head_kind: str) -> None:
        """Refuse settings the head cannot use (ValueError with one line)."""
        if not self.temperature >= 0 or not self.mixture_temperature >= 0:
            raise ValueError("temperatures must not be negative")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")
        if head_kind not in ("categorical", "lpc_mol") and self.top_p < 1:
            raise ValueError("top-p applies to μ-law classes (heads categorical and lpc_mol); this model has a "
                             "mixture of logistics over 16-bit levels")
        if head_kind not in MIXTURE_HEADS and self.mixture_temperature != 1:
            raise ValueError("the mixture temperature applies to a mixture-of-logistics head; this model is categorical")

    @property
    def kernel_can_sample(self) -> bool:
        """Whether the fused kernels' own sampling (one temperature) implements these settings."""
        return self.top_p >= 1 and self.mixture_temperature == 1


# The keys of a WaveNet's default sampling settings: a training config's ``sampling`` block
# (stored with the config in every checkpoint) and a shipped model's registry entry.
DEFAULT_KEYS = ("temperature", "top_p", "mixture_temperature")


def checked_defaults(block: Optional[Mapping], head_kind: str, where: str = "sampling") -> dict:
    """A WaveNet's default sampling settings -> ``{key: float}`` (the keys ``block`` sets; unset
    keys mean the plain defaults of :class:`SamplingControls`).

    Refuses, with one WavegenError line naming ``where`` (the config's ``sampling`` block, or the export's
    sampling defaults), a key that is not a sampling control, a value that is not a number, and settings this
    head cannot use (:meth:`SamplingControls.check`).
    """
    given = {k: v for k, v in dict(block or {}).items() if v is not None}
    for key, value in given.items():
        if key not in DEFAULT_KEYS:
            raise WavegenError(f"{where}: unknown sampling setting {key!r}; a WaveNet's are {', '.join(DEFAULT_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WavegenError(f"{where}: {key} must be a number, got {value!r}")
    given = {k: float(v) for k, v in given.items()}
    try:
        SamplingControls(**given).check(head_kind)
    except ValueError as exc:
        raise WavegenError(f"{where}: {exc}") from None
    return given


def _inverse_cdf(probs: Tensor, u: Tensor) -> Tensor:
    """Tensor[B, A] (unnormalised) probabilities, Tensor[B] uniforms -> LongTensor[B]: the first class whose
    cumulative mass reaches u·total (classes of zero mass are never picked)."""
    cdf = probs.cumsum(dim=-1)
    target = u.clamp_min(_U_MIN)[:, None] * cdf[:, -1:]
    return (cdf < target).sum(dim=-1).clamp_max(probs.shape[-1] - 1)


def sample_categorical(logits: Tensor, uniforms: Tensor, temperature: float = 1.0, top_p: float = 1.0) -> Tensor:
    """Tensor[B, A] logits, Tensor[B, 2] uniforms -> LongTensor[B] (uses ``uniforms[:, 0]``).

    ``temperature == 0`` is the argmax. With ``top_p < 1`` the classes are ranked by
    probability and the smallest prefix whose mass reaches ``top_p`` is kept (at least
    one class); the draw is then an inverse CDF over the kept classes, in class order.
    """
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    u = uniforms[:, 0].float()
    if top_p >= 1:  # exactly the kernels' rule
        return (probs.cumsum(dim=-1) < u[:, None]).sum(dim=-1).clamp_max(probs.shape[-1] - 1)
    ranked, order = probs.sort(dim=-1, descending=True, stable=True)  # ties: lower class first, as argmax
    before = ranked.cumsum(dim=-1) - ranked  # mass of the classes ranked above each one
    keep_ranked = before < top_p  # the first class always (0 < top_p)
    keep = torch.zeros_like(keep_ranked).scatter(-1, order, keep_ranked)
    return _inverse_cdf(torch.where(keep, probs, torch.zeros_like(probs)), u)


def sample_mixture(logits: Tensor, uniforms: Tensor, mixtures: int, log_scale_min: float,
                   scale_temperature: float = 1.0, mixture_temperature: float = 1.0) -> Tensor:
    """Tensor[B, 3M] mixture-of-logistics parameters, Tensor[B, 2] uniforms -> Tensor[B] audio in [-1, 1].

    ``uniforms[:, 0]`` picks the component (softmax of the weights / ``mixture_temperature``;
    0 takes the heaviest), ``uniforms[:, 1]`` draws logistic noise scaled by ``scale_temperature``.
    """
    logits = logits.float()
    m = mixtures
    weights, means, log_scales = logits[:, :m], logits[:, m : 2 * m], logits[:, 2 * m : 3 * m].clamp_min(log_scale_min)
    if mixture_temperature <= 0:
        component = weights.argmax(dim=-1)
    elif mixture_temperature == 1:  # exactly the kernels' rule
        cdf = torch.softmax(weights, dim=-1).cumsum(dim=-1)
        component = (cdf < uniforms[:, :1].float()).sum(dim=-1).clamp_max(m - 1)
    else:
        component = _inverse_cdf(torch.softmax(weights / mixture_temperature, dim=-1), uniforms[:, 0].float())
    mean = means.gather(1, component[:, None])[:, 0]
    scale = torch.exp(log_scales.gather(1, component[:, None])[:, 0])
    u = uniforms[:, 1].float().clamp(UNIFORM_EPS, 1 - UNIFORM_EPS)
    return (mean + scale_temperature * scale * (torch.log(u) - torch.log1p(-u))).clamp(-1.0, 1.0)


def make_sampler(head, controls: SamplingControls) -> Optional[Callable[[Tensor, Tensor], Tensor]]:
    """The Python sampler ``(logits Tensor[B, A], uniforms Tensor[B, 2]) -> tokens Tensor[B]`` for ``controls``,
    or None where the kernels' own sampling implements them."""
    controls.check(head.kind)
    if controls.kernel_can_sample:
        return None
    return python_sampler(head, controls)


def python_sampler(head, controls: SamplingControls) -> Callable[[Tensor, Tensor], Tensor]:
    """Like :func:`make_sampler` but always a Python sampler (the tests compare it with the kernels)."""
    if head.kind == "categorical":
        return lambda logits, u: sample_categorical(logits, u, controls.temperature, controls.top_p)
    if head.kind == "lpc_mol" and controls.top_p < 1 and controls.temperature > 0:
        mixture_temperature = max(controls.mixture_temperature, 1e-6)  # 0: (nearly) the heaviest component
        return lambda logits, u: sample_categorical(
            head.class_log_probs(logits, controls.temperature, mixture_temperature), u, 1.0, controls.top_p)
    if head.kind == "lpc_mol":
        return lambda logits, u: head.encode(sample_mixture(logits, u, head.mixtures, head.log_scale_min,
                                                            controls.temperature, controls.mixture_temperature))
    return lambda logits, u: sample_mixture(logits, u, head.mixtures, head.log_scale_min, controls.temperature,
                                            controls.mixture_temperature)


def _chunk_conditioning(model, batch: int, t: int, n: int, local, global_ids: Optional[Tensor]):
    """Bias rows and per-step frame indices for samples ``t .. t+n-1``.

    local: None, Tensor[B, C, F] (the whole clip's frames) or a
    :class:`~wavegen.generate.frames.StreamedLocal` (frames arriving as a stream).
    """
    if hasattr(local, "chunk_bias"):
        return local.chunk_bias(model, batch, t, n, global_ids)
    device = next(model.parameters()).device
    if local is None:
        bias = model.frame_bias(batch, None, global_ids)
        return bias, torch.zeros(n, dtype=torch.long, device=device)
    hop = model.cfg.local_hop
    first, last = t // hop, (t + n - 1) // hop
    if last >= local.shape[-1]:
        raise ValueError(f"conditioning has {local.shape[-1]} frames; sample {t + n - 1} needs frame {last}")
    bias = model.frame_bias(batch, local, global_ids, start=first, stop=last + 1)
    frame_index = torch.arange(t, t + n, device=device) // hop - first
    return bias, frame_index


@torch.no_grad()
def prime(model, state, prompt_tokens: Tensor, local: Optional[Tensor] = None, global_ids: Optional[Tensor] = None,
          chunk_size: int = 4096, backend: str = "auto") -> None:
    """Feed known tokens Tensor[B, P] into ``state`` (teacher forcing), e.g. an audio prompt."""
    batch, length = prompt_tokens.shape
    done = 0
    while done < length:
        n = min(chunk_size, length - done)
        bias, frame_index = _chunk_conditioning(model, batch, state.t, n, local, global_ids)
        uniforms = torch.zeros(n, batch, 2, device=prompt_tokens.device)
        model.step(state, bias, frame_index, uniforms, forced=prompt_tokens[:, done : done + n], backend=backend)
        done += n


@torch.no_grad()
def generate_tokens(
    model,
    num_samples: int,
    batch_size: int = 1,
    local: Optional[Tensor] = None,
    global_ids: Optional[Tensor] = None,
    prompt_tokens: Optional[Tensor] = None,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
    chunk_size: int = 4096,
    backend: str = "auto",
    state=None,
    top_p: float = 1.0,
    mixture_temperature: float = 1.0,
) -> Iterator[Tensor]:
    """Yield generated tokens in chunks, Tensor[B, <=chunk_size], ``num_samples`` in all.

    local: Tensor[B, C, F] conditioning frames covering the prompt and the generated part, or a
        :class:`~wavegen.generate.frames.StreamedLocal` that pulls them from a stream as needed.
    prompt_tokens: Tensor[B, P] fed first (they are not yielded again).
    generator: seeds the uniforms every sample is drawn from, so runs are reproducible.
    temperature, top_p, mixture_temperature: see :class:`SamplingControls`.
    """
    controls = SamplingControls(temperature, top_p, mixture_temperature)
    sampler = make_sampler(model.head, controls)
    extra = {} if sampler is None else {"sampler": sampler}
    device = next(model.parameters()).device
    if state is None:
        state = model.init_state(batch_size, device)
    if prompt_tokens is not None:
        prime(model, state, prompt_tokens, local, global_ids, chunk_size, backend)
    produced = 0
    while produced < num_samples:
        n = min(chunk_size, num_samples - produced)
        bias, frame_index = _chunk_conditioning(model, batch_size, state.t, n, local, global_ids)
        uniforms = torch.rand(n, batch_size, 2, generator=generator, device="cpu").to(device)
        tokens, _ = model.step(state, bias, frame_index, uniforms, temperature=temperature, backend=backend, **extra)
        produced += n
        yield tokens


def generate_audio(model, num_samples: int, **kwargs) -> Iterator[Tensor]:
    """Like :func:`generate_tokens` but yields audio chunks Tensor[B, n] in [-1, 1]."""
    for tokens in generate_tokens(model, num_samples, **kwargs):
        yield model.head.decode(tokens).float()
