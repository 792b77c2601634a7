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
        from wavegen.models.autoencoder import _dataclass_from, _plain

        top = dict(_plain(cfg))
        for key in ("family", "name"):
            top.pop(key, None)
        result = _dataclass_from(cls, top, "event_prior")
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

    # ------------------------------------------------------------------ incremental decoding

    def init_cache(self) -> dict:
        return {"k": [None] * self.cfg.layers, "v": [None] * self.cfg.layers, "pos": None, "t": 0}

    @torch.no_grad()
    def step(self, cache: dict, value: Tensor, run: Tensor) -> Tensor:
        """Feed one event per stream (LongTensor[B] value, LongTensor[B] run) -> Tensor[B, d] hidden state.

        The cache keeps at most ``context - 1`` past events: older ones are dropped (sliding window).
        """
        x = (self.value_embed(value) + self.run_embed(run))[:, None]
        t = cache["t"]
        pos = torch.tensor([t], device=x.device)
        k_pos = pos if cache["pos"] is None else torch.cat([cache["pos"], pos])
        bias = self._bias(pos, k_pos)
        for i, block in enumerate(self.blocks):
            x, k, v = block.attend(x, cache["k"][i], cache["v"][i], bias)
            keep = self.cfg.context - 1
            cache["k"][i], cache["v"][i] = k[:, :, -keep:], v[:, :, -keep:]
        cache["pos"] = k_pos[-(self.cfg.context - 1):]
        cache["t"] = t + 1
        return self.norm(x[:, 0])

    @torch.no_grad()
    def sample_next(self, h: Tensor, generator: Optional[torch.Generator], temperature: float = 1.0):
        """Tensor[B, d] -> (value LongTensor[B], run LongTensor[B] in 1..max_run): value first, then duration."""
        def draw(logits: Tensor) -> Tensor:
            if temperature <= 0:
                return logits.argmax(-1)
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            return torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(logits.device)

        value = draw(self.value_head(h))
        run = draw(self.run_head(h + self.value_condition(value))) + 1
        return value, run

    def fingerprint(self) -> bytes:
        from wavegen.models.prior import _fingerprint

        return _fingerprint(self)
