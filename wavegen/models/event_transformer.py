"""A run-length event Transformer prior (after the run-length Transformer of arXiv 2103.06089).

Slow codes change rarely, so instead of one step per frame the model takes one step
per *event*: a code tuple and how many frames it lasts (wavegen.codes.events). Each
event is a token whose embedding is the sum of its value's (the joint index of the
tuple) and its run length's embeddings. A causal Transformer reads the events so far
and predicts the next one in two parts, value first, then duration given the value::

    h_i = Transformer(e_0 .. e_i)                       e_0 is a start token
    p(v_{i+1}) = softmax(W_v h_i)
    p(r_{i+1} | v_{i+1}) = softmax(W_r (h_i + U[v_{i+1}]))

Attention uses ALiBi distance penalties instead of position embeddings, so the
incremental decoder can keep a *sliding window* KV cache of the last ``context``
events: generation memory stays constant however long the piece.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.codes.joint import MAX_JOINT_CLASSES, joint_classes
from wavegen.nn.heads import inverse_cdf_sample
from wavegen.options import dataclass_from, plain


@dataclass
class EventTransformerConfig:
    levels: list[int] = field(default_factory=lambda: [5, 5])  # the modelled codes (joint classes = product)
    hop: int = 256  # audio samples per code frame
    sample_rate: int = 16000
    max_run: int = 64  # longer runs are split into several events of the same value
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff_mult: int = 4
    context: int = 256  # events attended to (training windows and the sliding KV cache)
    dropout: float = 0.0

    @classmethod
    def from_mapping(cls, cfg) -> "EventTransformerConfig":
        from wavegen.errors import WavegenError
        result = dataclass_from(cls, plain(cfg), "event_prior", ignore=("family", "name"))
        result.levels = [int(v) for v in result.levels]
        if joint_classes(result.levels) > MAX_JOINT_CLASSES or result.d_model % result.heads:
            raise WavegenError(f"event_prior needs at most {MAX_JOINT_CLASSES} joint classes and d_model divisible "
                               f"by heads; got levels {result.levels}, d_model {result.d_model}, heads {result.heads}")
        return result

    @property
    def classes(self) -> int:
        return joint_classes(self.levels)

    def to_dict(self) -> dict:
        return asdict(self)


def alibi_slopes(heads: int) -> Tensor:
    """Per-head distance penalties, a geometric series from 2^(-8/heads) down (ALiBi)."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])


class Block(nn.Module):
    def __init__(self, cfg: EventTransformerConfig):
        super().__init__()
        d = cfg.d_model
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.GELU(), nn.Linear(cfg.ff_mult * d, d))
        self.dropout = nn.Dropout(cfg.dropout)

    def attend(self, x: Tensor, past_k: Optional[Tensor], past_v: Optional[Tensor], bias: Tensor):
        """x: Tensor[B, T, d] (new tokens); past: Tensor[B, H, P, d_h] or None; bias: Tensor[H, T, P+T].

        Returns (Tensor[B, T, d], keys Tensor[B, H, P+T, d_h], values Tensor[B, H, P+T, d_h]).
        """
        B, T, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        x = x + self.dropout(self.proj(a.transpose(1, 2).reshape(B, T, d)))
        x = x + self.dropout(self.ff(self.norm2(x)))
        return x, k, v


@dataclass
class EventState:
    """Incremental-decoding state of a batch of streams: per-layer keys and values Tensor[B, H, P, d_h]
    (a sliding window of at most ``context - 1`` past events), their positions, the next position
    ``t``, and the event each stream feeds next (LongTensor[B] value and run)."""

    k: list
    v: list
    pos: Optional[Tensor]
    t: int
    value: Tensor
    run: Tensor


class EventTransformer(nn.Module):
    def __init__(self, cfg: EventTransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.value_embed = nn.Embedding(cfg.classes + 1, d)  # the last row is the start token
        self.run_embed = nn.Embedding(cfg.max_run + 1, d)  # run lengths 1..max_run; 0 for the start token
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.value_head = nn.Linear(d, cfg.classes)
        self.value_condition = nn.Embedding(cfg.classes, d)
        self.run_head = nn.Linear(d, cfg.max_run)
        self.register_buffer("slopes", alibi_slopes(cfg.heads), persistent=False)

    @property
    def levels(self) -> list[int]:
        return list(self.cfg.levels)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    @property
    def start_value(self) -> int:
        return self.cfg.classes

    def _bias(self, q_pos: Tensor, k_pos: Tensor) -> Tensor:
        """Tensor[H, Tq, Tk]: -slope·distance for keys at or before the query, -inf after it."""
        dist = (q_pos[:, None] - k_pos[None, :]).float()
        bias = -self.slopes[:, None, None] * dist
        return bias.masked_fill(dist < 0, float("-inf"))

    def hidden(self, values: Tensor, runs: Tensor) -> Tensor:
        """values: LongTensor[B, T] (start token allowed), runs: LongTensor[B, T] -> Tensor[B, T, d]."""
        x = self.value_embed(values) + self.run_embed(runs)
        pos = torch.arange(values.shape[1], device=values.device)
        bias = self._bias(pos, pos)
        for block in self.blocks:
            x, _, _ = block.attend(x, None, None, bias)
        return self.norm(x)

    def forward(self, values: Tensor, runs: Tensor, next_values: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing: (value logits Tensor[B, T, K], run logits Tensor[B, T, max_run]) for the next events."""
        h = self.hidden(values, runs)
        return self.value_head(h), self.run_head(h + self.value_condition(next_values))

    # ------------------------------------------------------------------ incremental decoding (the shared step protocol)

    def init_state(self, batch: int = 1, device=None) -> "EventState":
        """An empty cache for ``batch`` streams whose next input is the start token."""
        device = device if device is not None else next(self.parameters()).device
        value = torch.full((batch,), self.start_value, dtype=torch.long, device=device)
        return EventState([None] * self.cfg.layers, [None] * self.cfg.layers, None, 0, value,
                          torch.zeros(batch, dtype=torch.long, device=device))

    @torch.no_grad()
    def feed(self, state: "EventState", value: Tensor, run: Tensor) -> Tensor:
        """Feed one event per stream (LongTensor[B] value, LongTensor[B] run) -> Tensor[B, d] hidden state.

        The cache keeps at most ``context - 1`` past events: older ones are dropped (sliding window).
        """
        x = (self.value_embed(value) + self.run_embed(run))[:, None]
        pos = torch.tensor([state.t], device=x.device)
        k_pos = pos if state.pos is None else torch.cat([state.pos, pos])
        bias = self._bias(pos, k_pos)
        keep = self.cfg.context - 1
        for i, block in enumerate(self.blocks):
            x, k, v = block.attend(x, state.k[i], state.v[i], bias)
            state.k[i], state.v[i] = k[:, :, -keep:], v[:, :, -keep:]
        state.pos = k_pos[-keep:]
        state.t += 1
        return self.norm(x[:, 0])

    @torch.no_grad()
    def step(self, state: "EventState", uniforms: Tensor, temperature: float = 1.0) -> Tensor:
        """Advance every stream by ``n`` events drawn from pre-drawn uniforms Tensor[n, B, 2] -> LongTensor[B, n, 2].

        Each event is (joint value, run length in 1..max_run): the value from ``uniforms[i, :, 0]``,
        then its run length, conditioned on it, from ``uniforms[i, :, 1]``, both by inverse CDF of
        the softmax at ``temperature`` (0: argmax), the WaveNets' rule. Streams are independent:
        a stream's events depend only on its own uniforms.
        """
        events = []
        for u in uniforms:
            h = self.feed(state, state.value, state.run)
            value = inverse_cdf_sample(self.value_head(h), u[:, 0], temperature)
            run = inverse_cdf_sample(self.run_head(h + self.value_condition(value)), u[:, 1], temperature) + 1
            state.value, state.run = value, run
            events.append(torch.stack([value, run], dim=-1))
        return torch.stack(events, dim=1)

    def fingerprint(self) -> bytes:
        from wavegen.models.prior import _fingerprint

        return _fingerprint(self)
