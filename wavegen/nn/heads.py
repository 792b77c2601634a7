"""Output heads: what a WaveNet predicts, how it is scored, sampled and fed back.

A head owns four things that must agree with each other:

- ``encode(audio)``: Tensor[B, T] in [-1, 1] -> the tokens the model reads and predicts;
- ``nll(logits, target)``: Tensor[B, A, T] x tokens -> negative log-likelihood in nats, Tensor[B, T];
- ``sample(logits, uniforms, temperature)``: Tensor[B, A] -> next tokens, from pre-drawn uniforms
  (drawing the randomness outside makes every backend produce identical samples);
- ``make_input_embedding(R)``: the module that turns tokens into residual-channel vectors.

Three heads exist: a categorical softmax (μ-law audio, or any discrete code), a
discretised mixture of logistics (16-bit audio, PixelCNN++ style), and a mixture of
logistics discretised to μ-law classes (:class:`MulawMixtureHead`: the head of a WaveNet
that models a linear predictor's residual, ``head=lpc_mol``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.nn.lpc import UNIFORM_SHARE, log_logistic_mass, mulaw_class_edges

# Logistic noise from a uniform u: clamp u away from 0 and 1 so the log-odds stay finite.
UNIFORM_EPS = 1e-5


class OutputHead(nn.Module):
    kind: str
    out_channels: int
    uniforms_per_step: int = 2  # every head consumes Tensor[B, 2] uniforms per step

    def encode(self, audio: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def silence(self, batch: int, device=None) -> Tensor:
        """Tokens for digital silence, Tensor[B]: the input before the first sample."""
        return self.encode(torch.zeros(batch, device=device))


class CategoricalHead(OutputHead):
    """An ``A``-way softmax over μ-law classes (``companding='mulaw'``) or raw code indices (``'none'``)."""

    kind = "categorical"

    def __init__(self, classes: int = 256, companding: str = "mulaw"):
        super().__init__()
        if companding not in ("mulaw", "none"):
            raise ValueError(f"companding must be 'mulaw' or 'none', not {companding!r}")
        self.classes = classes
        self.out_channels = classes
        self.companding = companding

    def encode(self, audio: Tensor) -> Tensor:
        if self.companding == "none":
            return audio.long()
        from wavegen.audio.dsp import mu_law_encode

        return mu_law_encode(audio, self.classes)

    def decode(self, tokens: Tensor) -> Tensor:
        if self.companding == "none":
            return tokens
        from wavegen.audio.dsp import mu_law_decode

        return mu_law_decode(tokens, self.classes)

    def silence(self, batch: int, device=None) -> Tensor:
        value = self.classes // 2 if self.companding == "mulaw" else 0
        return torch.full((batch,), value, dtype=torch.long, device=device)

    def make_input_embedding(self, channels: int) -> nn.Module:
        return nn.Embedding(self.classes, channels)

    def nll(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, reduction="none")

    def sample(self, logits: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Tensor[B, A] logits, Tensor[B, 2] uniforms -> LongTensor[B] by inverse-CDF sampling (``uniforms[:, 0]``).

        ``temperature == 0`` takes the argmax.
        """
        return inverse_cdf_sample(logits, uniforms[:, 0], temperature)


def inverse_cdf_sample(logits: Tensor, u: Tensor, temperature: float = 1.0) -> Tensor:
    """Tensor[B, A] logits, Tensor[B] uniforms in [0, 1) -> LongTensor[B]: the first class whose cumulative
    softmax (at ``temperature``; 0 takes the argmax) exceeds u. The fused kernels use the same rule, so
    every backend draws the same class from the same uniform."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    cdf = torch.softmax(logits.float() / temperature, dim=-1).cumsum(dim=-1)
    return (cdf < u.float()[:, None]).sum(dim=-1).clamp_max(logits.shape[-1] - 1)


class ScalarEmbedding(nn.Module):
    """Tensor[B, T] real-valued audio -> Tensor[B, T, R] (an affine map, like a 1x1 conv)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels) * 0.5)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


class _MixtureHead(OutputHead):
    """What the two mixture heads share: a real-valued input, and logits laid out as Tensor[B, 3M, ...] =
    mixture weights, means, log scales (floored at ``log_scale_min``)."""

    mixtures: int
    log_scale_min = -16.0

    def make_input_embedding(self, channels: int) -> nn.Module:
        return ScalarEmbedding(channels)

    def split(self, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.mixtures
        weights, means, log_scales = logits[:, :m], logits[:, m : 2 * m], logits[:, 2 * m : 3 * m]
        return weights, means, log_scales.clamp_min(self.log_scale_min)


class MixtureOfLogisticsHead(_MixtureHead):
    """A mixture of ``M`` discretised logistics over ``2**bits`` levels in [-1, 1].

    Logits are laid out as Tensor[B, 3M, T]: mixture logits, means, log scales.
    """

    kind = "mol"

    def __init__(self, mixtures: int = 10, bits: int = 16):
        super().__init__()
        self.mixtures = mixtures
        self.bits = bits
        self.out_channels = 3 * mixtures

    @property
    def half_bin(self) -> float:
        return 1.0 / (2**self.bits - 1)

    def encode(self, audio: Tensor) -> Tensor:
        levels = 2**self.bits - 1
        return torch.round((audio.float().clamp(-1, 1) + 1) * levels / 2) * 2 / levels - 1

    def decode(self, tokens: Tensor) -> Tensor:
        return tokens

    def nll(self, logits: Tensor, target: Tensor) -> Tensor:
        """Tensor[B, 3M, T], Tensor[B, T] in [-1, 1] -> Tensor[B, T] nats per sample."""
        weights, means, log_scales = self.split(logits.float())
        x = target.float().unsqueeze(1)  # [B, 1, T]
        centred = x - means
        inv_scale = torch.exp(-log_scales)
        plus = inv_scale * (centred + self.half_bin)
        minus = inv_scale * (centred - self.half_bin)
        cdf_plus, cdf_minus = torch.sigmoid(plus), torch.sigmoid(minus)
        # log CDF at the lower edge and log(1 - CDF) at the upper edge, stably.
        log_cdf_plus = plus - F.softplus(plus)
        log_one_minus_cdf_minus = -F.softplus(minus)
        mass = cdf_plus - cdf_minus
        mid = centred * inv_scale
        # Where the bin mass underflows, use the density at the bin centre times the bin width.
        log_density = mid - log_scales - 2.0 * F.softplus(mid) + math.log(2 * self.half_bin)
        log_mass = torch.where(mass > 1e-5, torch.log(mass.clamp_min(1e-12)), log_density)
        log_prob = torch.where(
            x < -1 + self.half_bin,
            log_cdf_plus,
            torch.where(x > 1 - self.half_bin, log_one_minus_cdf_minus, log_mass),
        )
        log_prob = log_prob + torch.log_softmax(weights, dim=1)
        return -torch.logsumexp(log_prob, dim=1)

    def sample(self, logits: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Tensor[B, 3M] logits, Tensor[B, 2] uniforms -> Tensor[B] audio in [-1, 1].

        ``uniforms[:, 0]`` picks the component by inverse CDF, ``uniforms[:, 1]`` draws
        logistic noise, scaled by ``temperature`` (0 returns the component mean).
        """
        weights, means, log_scales = self.split(logits.float())
        return draw_mixture(weights, means, log_scales, uniforms, temperature)


class MulawMixtureHead(_MixtureHead):
    """A mixture of ``M`` logistics in the waveform domain, scored and sampled as μ-law classes.

    Tokens are μ-law classes (as :class:`CategoricalHead`), so likelihoods are in the same
    units as a μ-law softmax; the distribution of a class is the mixture's mass between the
    class's waveform edges, plus a :data:`GUARD_SHARE` spread evenly over all classes (so an
    onset no narrow mixture foresaw costs bounded bits; sampling leaves it out, as top-p
    leaves out a tail). The network reads a real value per step (:class:`ScalarEmbedding`):
    the WaveNet that owns this head feeds it the linear predictor's standardised residual
    and turns the mixture's standardised parameters into waveform ones
    (:meth:`wavegen.models.wavenet.WaveNet.forward`). Logits: Tensor[B, 3M, T] = weights,
    means, log scales (waveform domain).
    """

    kind = "lpc_mol"
    GUARD_SHARE = UNIFORM_SHARE  # the LPC baseline's, so an untrained model scores exactly the baseline

    def __init__(self, mixtures: int = 4, classes: int = 256):
        super().__init__()
        self.mixtures = mixtures
        self.classes = classes
        self.out_channels = 3 * mixtures
        self._categorical = CategoricalHead(classes, "mulaw")

    def encode(self, audio: Tensor) -> Tensor:
        return self._categorical.encode(audio)

    def decode(self, tokens: Tensor) -> Tensor:
        return self._categorical.decode(tokens)

    def silence(self, batch: int, device=None) -> Tensor:
        return self._categorical.silence(batch, device)

    def nll(self, logits: Tensor, target: Tensor) -> Tensor:
        """Tensor[B, 3M, T] (waveform-domain parameters), LongTensor[B, T] μ-law classes -> nats, Tensor[B, T].

        Float64 inside: a narrow logistic's mass over a wide loud-sample class is a difference of
        two CDFs near 1, which float32 would round to nothing.
        """
        weights, means, log_scales = self.split(logits.double())
        edges = mulaw_class_edges(self.classes).to(logits.device)
        lo, hi = edges[target][:, None], edges[target + 1][:, None]  # [B, 1, T]
        log_mass = log_logistic_mass(lo, hi, means, log_scales.exp())  # [B, M, T]
        log_mix = torch.logsumexp(log_mass + torch.log_softmax(weights, dim=1), dim=1)
        log_prob = torch.logaddexp(log_mix + math.log1p(-self.GUARD_SHARE),
                                   torch.full_like(log_mix, math.log(self.GUARD_SHARE / self.classes)))
        return (-log_prob).float()

    def sample(self, logits: Tensor, uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Tensor[B, 3M] logits, Tensor[B, 2] uniforms -> LongTensor[B]: a mixture draw, quantised to its class."""
        value = draw_mixture(*self.split(logits.float()), uniforms, temperature)
        return self.encode(value)

    def class_log_probs(self, logits: Tensor, temperature: float = 1.0, mixture_temperature: float = 1.0) -> Tensor:
        """Tensor[B, 3M] -> Tensor[B, classes]: the mixture's log mass in every μ-law class (no guard share).

        ``temperature`` scales every logistic, ``mixture_temperature`` divides the weights (both > 0):
        the distribution the continuous draw of :meth:`sample` lands in, class by class, so top-p
        can be applied to it.
        """
        weights, means, log_scales = self.split(logits.double())
        edges = mulaw_class_edges(self.classes).to(logits.device)
        lo, hi = edges[:-1], edges[1:]  # [A]
        scale = (log_scales.exp() * temperature)[:, :, None]  # [B, M, 1]
        log_mass = log_logistic_mass(lo, hi, means[:, :, None], scale)  # [B, M, A]
        log_weights = torch.log_softmax(weights / mixture_temperature, dim=1)[:, :, None]
        return torch.logsumexp(log_mass + log_weights, dim=1).float()


def draw_mixture(weights: Tensor, means: Tensor, log_scales: Tensor, uniforms: Tensor,
                 temperature: float = 1.0) -> Tensor:
    """Tensor[B, M] ×3, Tensor[B, 2] uniforms -> Tensor[B] in [-1, 1]: the component by inverse CDF of
    ``uniforms[:, 0]``, then its logistic noise from ``uniforms[:, 1]`` scaled by ``temperature``."""
    cdf = torch.softmax(weights, dim=-1).cumsum(dim=-1)
    component = (cdf < uniforms[:, :1].float()).sum(dim=-1).clamp_max(weights.shape[-1] - 1)
    mean = means.gather(1, component[:, None])[:, 0]
    log_scale = log_scales.gather(1, component[:, None])[:, 0]
    u = uniforms[:, 1].float().clamp(UNIFORM_EPS, 1 - UNIFORM_EPS)
    noise = torch.log(u) - torch.log1p(-u)
    return (mean + temperature * torch.exp(log_scale) * noise).clamp(-1.0, 1.0)


def build_head(kind: str, classes: int = 256, companding: str = "mulaw", mixtures: int = 10, bits: int = 16) -> OutputHead:
    if kind == "categorical":
        return CategoricalHead(classes, companding)
    if kind == "mol":
        return MixtureOfLogisticsHead(mixtures, bits)
    if kind == "lpc_mol":
        return MulawMixtureHead(mixtures, classes)
    raise ValueError(f"unknown output head {kind!r}; choose 'categorical', 'mol' or 'lpc_mol'")
