"""WaveNet: dilated causal convolutions, gated units, residual and skip paths.

Conditioning enters every layer as a pre-activation bias:

- global: an id embedding (one Tensor[L·G] row per id);
- local: a feature sequence Tensor[B, C, F] at ``local_hop`` samples per frame,
  passed through a small frame-rate network, projected to Tensor[B, F, L, G],
  and held constant across each frame's ``local_hop`` samples (nearest upsampling).

Projecting at the frame rate is what makes conditioning nearly free during
incremental sampling: the per-sample kernels only add a bias row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.kernels.reference import HEAD_CATEGORICAL, HEAD_MOL, PackedWaveNet
from wavegen.nn.conv import CausalConv1d, receptive_field
from wavegen.nn.heads import build_head


@dataclass
class WaveNetConfig:
    layers: int = 20
    dilation_cycle: int = 10  # dilations 1, 2, ..., 2**(cycle-1), repeated
    kernel_size: int = 2
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 256
    head: str = "categorical"  # categorical | mol
    classes: int = 256  # categorical head
    companding: str = "mulaw"  # categorical head: mulaw | none
    mixtures: int = 10  # mol head
    bits: int = 16  # mol head
    local_channels: int = 0  # conditioning features per frame (0: none)
    local_hop: int = 1  # samples per conditioning frame
    local_hidden: int = 64  # width of the frame-rate conditioning network
    local_kernel: int = 3  # its (non-causal, centred) kernel size, odd
    global_classes: int = 0  # number of global ids (0: none)

    @classmethod
    def from_mapping(cls, cfg) -> "WaveNetConfig":
        names = set(cls.__dataclass_fields__)
        unknown = set(dict(cfg)) - names - {"family", "name"}
        if unknown:
            from wavegen.errors import WavegenError

            raise WavegenError(
                f"unknown WaveNet option(s) {sorted(unknown)}; valid options: {sorted(names)}"
            )
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.dilation_cycle) for i in range(self.layers)]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WaveNetState:
    """Incremental-sampling state of a batch of streams.

    queues: Tensor[B, Q, R] ring buffers of every layer's past inputs.
    t: absolute time of the next step.
    next_input: Tensor[B] token fed at the next step (the last sample).
    """

    queues: Tensor
    t: int
    next_input: Tensor


class GatedResidualLayer(nn.Module):
    """One layer: dilated causal conv -> tanh·sigmoid gate -> residual and skip 1x1 paths."""

    def __init__(self, residual: int, gate: int, skip: int, kernel_size: int, dilation: int):
        super().__init__()
        if gate % 2:
            raise ValueError(f"gate_channels must be even, got {gate}")
        self.conv = CausalConv1d(residual, gate, kernel_size, dilation)
        self.res = nn.Conv1d(gate // 2, residual, 1)
        self.skip = nn.Conv1d(gate // 2, skip, 1)

    def forward(self, x: Tensor, bias: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """x: Tensor[B, R, T]; bias: Tensor[B, G, T] or broadcastable -> (Tensor[B, R, T], skip Tensor[B, S, T])."""
        z = self.conv(x)
        if bias is not None:
            z = z + bias
        filt, gate = z.chunk(2, dim=1)
        a = torch.tanh(filt) * torch.sigmoid(gate)
        return x + self.res(a), self.skip(a)


def _weights_version(module: nn.Module) -> tuple:
    return tuple((p.data_ptr(), p._version) for p in module.parameters())


class _PackCache:
    """Re-packs weights for the kernels only when a parameter changed (or moved)."""

    def __init__(self):
        self.key = None
        self.packed = None

    def get(self, model: nn.Module, dtype: torch.dtype) -> PackedWaveNet:
        key = (_weights_version(model), dtype)
        if key != self.key:
            self.packed = model.pack(dtype)
            self.key = key
        return self.packed


class WaveNet(nn.Module):
    """Tensor[B, T] tokens (+ conditioning) -> Tensor[B, A, T] logits for the *next* token.

    Output ``t`` depends on inputs ``0..t`` only; train with inputs shifted right by one.
    """

    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        self._pack_cache = _PackCache()
        self.head = build_head(cfg.head, cfg.classes, cfg.companding, cfg.mixtures, cfg.bits)
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        L = cfg.layers
        self.embed = self.head.make_input_embedding(R)
        self.layers = nn.ModuleList(
            GatedResidualLayer(R, G, S, cfg.kernel_size, d) for d in cfg.dilations
        )
        self.out1 = nn.Conv1d(S, S, 1)
        self.out2 = nn.Conv1d(S, self.head.out_channels, 1)
        self.global_embed = nn.Embedding(cfg.global_classes, L * G) if cfg.global_classes else None
        if cfg.local_channels:
            if cfg.local_kernel % 2 == 0:
                raise ValueError("local_kernel must be odd (a centred window)")
            self.local_net = nn.Conv1d(cfg.local_channels, cfg.local_hidden, cfg.local_kernel, padding=cfg.local_kernel // 2)
            self.local_proj = nn.Conv1d(cfg.local_hidden, L * G, 1)
        else:
            self.local_net = None
            self.local_proj = None
        if self.global_embed is not None:
            nn.init.normal_(self.global_embed.weight, std=0.02)

    # ------------------------------------------------------------------ sizes

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.cfg.kernel_size, self.cfg.dilations)

    # ------------------------------------------------------------------ conditioning

    def _check_conditioning(self, local: Optional[Tensor], global_ids: Optional[Tensor]) -> None:
        if (local is None) != (self.local_net is None):
            raise ValueError("local conditioning given to a model without it, or missing" if local is not None
                             else "this model needs local conditioning features")
        if (global_ids is None) != (self.global_embed is None):
            raise ValueError("global ids given to a model without them, or missing" if global_ids is not None
                             else "this model needs global ids")

    def local_frame_features(self, local: Tensor, start: int = 0, stop: Optional[int] = None) -> Tensor:
        """Frames ``start:stop`` of the frame-rate network's output, Tensor[B, H, stop-start].

        Reads only the window it needs (plus the kernel's context), so conditioning can be
        computed chunk by chunk and equal the whole-clip computation exactly.
        """
        frames = local.shape[-1]
        stop = frames if stop is None else stop
        ctx = self.cfg.local_kernel // 2
        lo, hi = max(0, start - ctx), min(frames, stop + ctx)
        window = local[..., lo:hi]
        # Pad with zeros only where the window meets the clip's real edges.
        window = F.pad(window, (ctx - (start - lo), ctx - (hi - stop)))
        return torch.tanh(F.conv1d(window, self.local_net.weight, self.local_net.bias))

    def frame_bias(
        self,
        batch: int,
        local: Optional[Tensor] = None,
        global_ids: Optional[Tensor] = None,
        start: int = 0,
        stop: Optional[int] = None,
    ) -> Tensor:
        """Per-frame, per-layer pre-activation bias, Tensor[B, F, L, G] (F = 1 without local features).

        Sums every layer's conv bias, the global embedding and the local projection.
        """
        self._check_conditioning(local, global_ids)
        L, G = self.cfg.layers, self.cfg.gate_channels
        conv_b = torch.stack([layer.conv.bias for layer in self.layers])  # [L, G]
        bias = conv_b.reshape(1, 1, L * G).expand(batch, 1, L * G)
        if self.global_embed is not None:
            bias = bias + self.global_embed(global_ids).reshape(batch, 1, L * G)
        if self.local_net is not None:
            feats = self.local_frame_features(local, start, stop)
            proj = self.local_proj(feats).transpose(1, 2)  # [B, F, L*G]
            bias = bias + proj
        return bias.reshape(batch, -1, L, G)

    # ------------------------------------------------------------------ full forward

    def forward(self, tokens: Tensor, local: Optional[Tensor] = None, global_ids: Optional[Tensor] = None) -> Tensor:
        """tokens: Tensor[B, T]; local: Tensor[B, C, F] with F·local_hop >= T; global_ids: LongTensor[B].

        Returns Tensor[B, A, T]: logits for token ``t+1`` given tokens ``0..t``.
        """
        B, T = tokens.shape
        L, G = self.cfg.layers, self.cfg.gate_channels
        x = self.embed(tokens).transpose(1, 2)  # [B, R, T]
        layer_bias = None
        if self.global_embed is not None or self.local_net is not None:
            self._check_conditioning(local, global_ids)
            layer_bias = torch.zeros(B, L * G, 1, device=x.device, dtype=x.dtype)
            if self.global_embed is not None:
                layer_bias = layer_bias + self.global_embed(global_ids)[:, :, None]
            if self.local_net is not None:
                hop = self.cfg.local_hop
                if local.shape[-1] * hop < T:
                    raise ValueError(f"local features cover {local.shape[-1] * hop} samples, need {T}")
                feats = self.local_frame_features(local)
                per_frame = self.local_proj(feats)  # [B, L*G, F]
                per_sample = per_frame.repeat_interleave(hop, dim=-1)[..., :T]
                layer_bias = layer_bias + per_sample
        else:
            self._check_conditioning(local, global_ids)
        skip = 0
        # split() rather than slicing: its backward writes each layer's gradient once into one
        # buffer, where L slices would each zero-fill a gradient of the whole [B, L*G, T] tensor.
        biases = [None] * L if layer_bias is None else layer_bias.split(G, dim=1)
        for layer, bias in zip(self.layers, biases):
            x, s = layer(x, bias)
            skip = skip + s
        return self.out2(F.relu(self.out1(F.relu(skip))))

    # ------------------------------------------------------------------ incremental API

    def pack(self, dtype: Optional[torch.dtype] = None) -> PackedWaveNet:
        """Weights laid out for :mod:`wavegen.kernels` (see :class:`PackedWaveNet`)."""
        cfg = self.cfg
        if cfg.head == "categorical":
            embed, head_kind, classes = self.embed.weight, HEAD_CATEGORICAL, cfg.classes
        else:
            embed, head_kind, classes = torch.stack([self.embed.weight, self.embed.bias]), HEAD_MOL, cfg.mixtures
        conv_w = torch.stack([layer.conv.weight.permute(2, 0, 1) for layer in self.layers])  # [L, k, G, R]
        packed = PackedWaveNet(
            dilations=list(cfg.dilations),
            kernel_size=cfg.kernel_size,
            head_kind=head_kind,
            classes=classes,
            embed=embed,
            conv_w=conv_w,
            res_w=torch.stack([layer.res.weight[:, :, 0] for layer in self.layers]),
            res_b=torch.stack([layer.res.bias for layer in self.layers]),
            skip_w=torch.stack([layer.skip.weight[:, :, 0] for layer in self.layers]),
            skip_b=torch.stack([layer.skip.bias for layer in self.layers]).sum(0),
            out1_w=self.out1.weight[:, :, 0],
            out1_b=self.out1.bias,
            out2_w=self.out2.weight[:, :, 0],
            out2_b=self.out2.bias,
        )
        fields = {k: (v.detach().contiguous() if isinstance(v, Tensor) else v) for k, v in packed.__dict__.items()}
        packed = PackedWaveNet(**fields)
        return packed.to(dtype=dtype) if dtype is not None else packed

    def init_state(self, batch: int, device=None, dtype: torch.dtype = torch.float32) -> WaveNetState:
        """Empty queues (digital silence before time 0), next input = the head's silence token."""
        rows = sum((self.cfg.kernel_size - 1) * d for d in self.cfg.dilations)
        device = device if device is not None else next(self.parameters()).device
        queues = torch.zeros(batch, rows, self.cfg.residual_channels, device=device, dtype=dtype)
        return WaveNetState(queues=queues, t=0, next_input=self.head.silence(batch, device))

    def step(
        self,
        state: WaveNetState,
        bias: Tensor,
        frame_index: Tensor,
        uniforms: Tensor,
        forced: Optional[Tensor] = None,
        temperature: float = 1.0,
        return_logits: bool = False,
        backend: str = "auto",
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Advance ``state`` by ``n = len(frame_index)`` samples (the shared step API).

        bias: Tensor[B, F, L, G] from :meth:`frame_bias`; frame_index: LongTensor[n] into its F axis;
        uniforms: Tensor[n, B, 2]; forced: optional Tensor[B, n] tokens to feed instead of sampling.
        Returns (tokens Tensor[B, n], logits Tensor[n, B, A] if ``return_logits``).
        """
        from wavegen import kernels

        packed = self._pack_cache.get(self, state.queues.dtype)
        with torch.no_grad():
            tokens, logits = kernels.wavenet_generate(
                packed, state.queues, state.t, state.next_input, bias.to(state.queues.dtype), frame_index,
                uniforms, forced, temperature, return_logits, backend,
            )
        state.t += frame_index.shape[0]
        state.next_input = tokens[:, -1]
        return tokens, logits
