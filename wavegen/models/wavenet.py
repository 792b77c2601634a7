"""WaveNet: dilated causal convolutions, gated units, residual and skip paths.

Conditioning enters every layer as a pre-activation bias:

- global: an id embedding (one Tensor[L·G] row per id);
- local: a feature sequence Tensor[B, C, F] at ``local_hop`` samples per frame,
  passed through a small frame-rate network, projected to Tensor[B, F, L, G],
  and held constant across each frame's ``local_hop`` samples (nearest upsampling).

Projecting at the frame rate is what makes conditioning nearly free during
incremental sampling: the per-sample kernels only add a bias row.

Backward-adaptive linear prediction (``lpc_order > 0``, as in LPCNet): a predictor
fitted on past samples only (:mod:`wavegen.nn.lpc`, refitted every ``lpc_refit``
samples on the previous ``lpc_window``, by ``lpc_method``: the windowed autocorrelation fit or
Burg's) guesses each next sample ``p_t``. The network
sees ``p_t`` as one more conditioning input (a per-layer 1x1 projection added to the
pre-activation bias, like local features, so the compiled kernels run unchanged) and,
with the mixture-of-logistics head, models the sample as ``p_t`` + residual: ``p_t`` is
added to every component's mean. The μ-law head still outputs its 256 classes and
only gets ``p_t`` as input. Sampling then advances one sample per kernel call,
because ``p_t`` depends on the sample drawn just before it.

``head="lpc_mol"`` goes further: the network models only what the predictor misses. The
predictor's logistic (mean ``p_t``, scale ``s_t`` fitted on the past residuals, exactly the
LPC baseline of :mod:`wavegen.nn.lpc`) is the starting point; the network reads the past
*standardised residuals* ``asinh((x - p)/s)`` instead of the samples, is conditioned on
``p_t``, ``log s_t`` and the μ-law class width at ``p_t`` relative to ``s_t``, and outputs a
mixture in standardised units, scored over μ-law classes
(:class:`~wavegen.nn.heads.MulawMixtureHead`): every component is centred on the prediction
with scale ``s_t·e^l`` (a scale mixture: when a note decays or an onset may come), and with
``lpc_mean_shift`` its mean may move to ``p_t + s_t·m``. Shifted means won likelihood but
their free-running draws turned to broadband noise (the shifts act as a second, unstable
predictor; measured on training prompts: peak-energy share 0.40 against 0.68 for the same
weights centred), so the shipped model keeps them centred and its mean rows stay zero. Its last layer starts at
zero, so an untrained model *is* the baseline and training can only sharpen or reshape it:
at a CPU budget the network never has to learn the signal's linear structure (the pitch),
and a free-running draw keeps the predictor's partials.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavegen.kernels.reference import HEAD_CATEGORICAL, HEAD_MOL, PackedWaveNet
from wavegen.nn.conv import CausalConv1d, receptive_field
from wavegen.nn.heads import build_head
from wavegen.nn.lpc import LPCBaseline, LPCState, lpc_predict
from wavegen.nn.lpc import check_method as check_lpc_method
from wavegen.nn.onsets import onset_strength, sounding_chroma
from wavegen.options import dataclass_from, plain


LPC_OPTIONS = ("lpc_order", "lpc_window", "lpc_refit", "lpc_mean_shift", "lpc_method")
LPC_MOL_FEATURES = 3  # p_t, log s_t, log(μ-law class width at p_t / s_t)
# Options a config carries only when set (so configs, checkpoints and resumes of models without them
# stay what they were): option -> its off value.
OMITTED_WHEN_OFF = {"lpc_mixture_spread": 0.0, "lpc_method": "autocorrelation", "local_source": "given"}
# local_source -> the channels it reads (None: any, given by the caller).
LOCAL_SOURCES = {"given": None, "onsets": 1, "onsets_chroma": 13}
# onsets_chroma assigns bins to pitch classes as at this rate. A model at another rate reads a consistent
# relabelling of the classes, which a model that learns them does not mind (the bins are the same).
CHROMA_REFERENCE_RATE = 16000


def without_off_options(options: dict) -> dict:
    """A WaveNet config dict without the :data:`OMITTED_WHEN_OFF` options at their off values (also for
    the configs that nest a WaveNet's: a prior's, an autoencoder's decoder)."""
    return {k: v for k, v in options.items() if not (k in OMITTED_WHEN_OFF and v == OMITTED_WHEN_OFF[k])}


@dataclass
class WaveNetConfig:
    layers: int = 20
    dilation_cycle: int = 10  # dilations 1, 2, ..., 2**(cycle-1), repeated
    kernel_size: int = 2
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 256
    head: str = "categorical"  # categorical | mol | lpc_mol (needs lpc_order > 0)
    classes: int = 256  # categorical head
    companding: str = "mulaw"  # categorical head: mulaw | none
    mixtures: int = 10  # mol and lpc_mol heads
    bits: int = 16  # mol head
    local_channels: int = 0  # conditioning features per frame (0: none)
    local_hop: int = 1  # samples per conditioning frame
    local_hidden: int = 64  # width of the frame-rate conditioning network
    local_kernel: int = 3  # its (non-causal, centred) kernel size, odd
    # Where local features come from: "given" (by the caller: an autoencoder's codes, say) or "onsets"
    # (the audio's own onset strength, wavegen.nn.onsets, one channel: the model learns what a struck note
    # does to the next samples; at sampling time the caller says where notes are struck), or
    # "onsets_chroma" (that channel and 12 more: which pitch classes sound in each block).
    local_source: str = "given"
    global_classes: int = 0  # number of global ids (0: none)
    lpc_order: int = 0  # backward-adaptive linear prediction order (0: off)
    lpc_window: int = 1024  # past samples each LPC fit reads
    lpc_refit: int = 256  # samples between LPC refits
    lpc_mean_shift: bool = False  # lpc_mol: may the network move the components off the prediction?
    # lpc_mol: the components' initial log scales spread over [-x, x] around the predictor's. At 0 they
    # all start equal, get equal gradients and stay equal: the "mixture" trains as one logistic.
    lpc_mixture_spread: float = 0.0
    # How the predictor is fitted (wavegen.nn.lpc): autocorrelation | burg (no window: narrower partials).
    lpc_method: str = "autocorrelation"

    @classmethod
    def from_mapping(cls, cfg) -> "WaveNetConfig":
        return dataclass_from(cls, plain(cfg), "WaveNet", ignore=("family", "name"))

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.dilation_cycle) for i in range(self.layers)]

    def to_dict(self) -> dict:
        """The options as a dict; the LPC ones only when LPC is on, so a model without it has the
        same config (and checkpoints, resumes and config hashes) as before the option existed."""
        options = asdict(self)
        if not self.lpc_order:
            for key in LPC_OPTIONS:
                options.pop(key)
        return without_off_options(options)


@dataclass
class WaveNetState:
    """Incremental-sampling state of a batch of streams.

    queues: Tensor[B, Q, R] ring buffers of every layer's past inputs.
    t: absolute time of the next step.
    next_input: Tensor[B] token fed at the next step (the last sample).
    lpc: the linear predictor's past samples and current coefficients, or None.
    residual: head ``lpc_mol`` only: Tensor[B], what the network reads for ``next_input``
    (its standardised residual against the prediction made before it).
    """

    queues: Tensor
    t: int
    next_input: Tensor
    lpc: Optional[LPCState] = None  # the predictor's history (models with lpc_order > 0)
    residual: Optional[Tensor] = None


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
        if cfg.local_source not in LOCAL_SOURCES or LOCAL_SOURCES[cfg.local_source] not in (None, cfg.local_channels):
            raise ValueError(f"local_source must be given, onsets (local_channels 1) or onsets_chroma (13); got "
                             f"{cfg.local_source!r} with local_channels {cfg.local_channels}")
        if cfg.local_channels:
            if cfg.local_kernel % 2 == 0:
                raise ValueError("local_kernel must be odd (a centred window)")
            self.local_net = nn.Conv1d(cfg.local_channels, cfg.local_hidden, cfg.local_kernel, padding=cfg.local_kernel // 2)
            self.local_proj = nn.Conv1d(cfg.local_hidden, L * G, 1)
            if cfg.local_source != "given":
                # Starts without effect, so a model warm-started from one without onsets begins exactly as it.
                nn.init.zeros_(self.local_proj.weight)
                nn.init.zeros_(self.local_proj.bias)
        else:
            self.local_net = None
            self.local_proj = None
        if self.global_embed is not None:
            nn.init.normal_(self.global_embed.weight, std=0.02)
        self.lpc_proj = None
        if cfg.lpc_order:
            if cfg.lpc_order < 0 or cfg.lpc_window < cfg.lpc_order or cfg.lpc_refit < 1:
                raise ValueError(f"LPC needs lpc_order >= 0, lpc_window >= lpc_order and lpc_refit >= 1; got "
                                 f"{cfg.lpc_order}, {cfg.lpc_window}, {cfg.lpc_refit}")
            check_lpc_method(cfg.lpc_method)  # at construction, not at the first fit
            if cfg.head == "categorical" and cfg.companding != "mulaw":
                raise ValueError("linear prediction needs audio: a categorical head with companding='mulaw' or 'mol'")
            # p_t (lpc_mol: its three features) -> every layer's gate pre-activations (no bias: the
            # layers' conv biases exist already).
            features = LPC_MOL_FEATURES if cfg.head == "lpc_mol" else 1
            self.lpc_proj = nn.Conv1d(features, L * G, 1, bias=False)
        elif cfg.head == "lpc_mol":
            raise ValueError("head 'lpc_mol' models a linear predictor's residual: it needs lpc_order > 0")
        if cfg.lpc_mixture_spread and (cfg.head != "lpc_mol" or cfg.lpc_mixture_spread < 0):
            raise ValueError(f"lpc_mixture_spread is a positive log-scale range of head 'lpc_mol'; got "
                             f"{cfg.lpc_mixture_spread} with head '{cfg.head}'")
        if cfg.head == "lpc_mol":
            # Zero standardised outputs = the predictor's own logistic: the untrained model is the baseline.
            nn.init.zeros_(self.out2.weight)
            nn.init.zeros_(self.out2.bias)
            if cfg.lpc_mixture_spread:
                # Identical components would get identical gradients forever: start them at different
                # widths (a scale mixture from the first step), centred on the predictor's scale.
                with torch.no_grad():
                    M = cfg.mixtures
                    self.out2.bias[2 * M:] = torch.linspace(-cfg.lpc_mixture_spread, cfg.lpc_mixture_spread, M)

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

    def onsets(self, audio: Tensor) -> Tensor:
        """``local_source: onsets`` / ``onsets_chroma``: Tensor[B, T] audio -> its conditioning,
        Tensor[B, C, ceil(T / local_hop)]: the onset strength, then (``onsets_chroma``) the sounding chroma."""
        strength = onset_strength(audio, self.cfg.local_hop)[:, None]
        if self.cfg.local_source != "onsets_chroma":
            return strength
        return torch.cat([strength, sounding_chroma(audio, self.cfg.local_hop, CHROMA_REFERENCE_RATE)], dim=1)

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
        prediction = scale = None
        if self.cfg.head == "lpc_mol":
            reads, prediction, scale = self.lpc_residuals(tokens)
            x = self.embed(reads).transpose(1, 2)  # [B, R, T]
            features = self.lpc_features(prediction, scale)  # [B, T, 3]
        else:
            x = self.embed(tokens).transpose(1, 2)  # [B, R, T]
            if self.lpc_proj is not None:
                prediction = self.lpc_prediction(tokens)
                features = prediction[:, :, None]
        layer_bias = None
        if self.global_embed is not None or self.local_net is not None or prediction is not None:
            self._check_conditioning(local, global_ids)
            layer_bias = torch.zeros(B, L * G, 1, device=x.device, dtype=x.dtype)
            if prediction is not None:
                layer_bias = layer_bias + self.lpc_proj(features.transpose(1, 2).to(x.dtype))
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
        logits = self.out2(F.relu(self.out1(F.relu(skip))))
        if scale is not None:
            return self._to_waveform_units(logits, prediction, scale, time_axis=2)
        return self._shift_by_prediction(logits, prediction, time_axis=2)

    # ------------------------------------------------------------------ linear prediction

    def lpc_prediction(self, tokens: Tensor) -> Tensor:
        """Tensor[B, T] input tokens -> Tensor[B, T]: ``p_t``, the LPC guess of the sample after input ``t``.

        Reads inputs ``0..t`` only (causal), in the waveform domain (tokens decoded).
        """
        cfg = self.cfg
        signal = self.head.decode(tokens).float()
        return lpc_predict(signal, cfg.lpc_order, cfg.lpc_window, cfg.lpc_refit, cfg.lpc_method)[:, 1:]

    def lpc_residuals(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Head ``lpc_mol``: Tensor[B, T] input tokens -> (reads, p, s), each Tensor[B, T].

        ``p[:, t]``, ``s[:, t]``: the predictor's logistic for the sample after input ``t`` (inputs
        ``0..t`` only, float64); ``reads[:, t]``: input ``t``'s standardised residual against the
        prediction made before it (float32), what the network reads.
        """
        cfg = self.cfg
        signal = self.head.decode(tokens).float()
        predictor = LPCBaseline(cfg.lpc_order, cfg.lpc_window, cfg.lpc_refit, cfg.lpc_method)
        mean, scale = predictor.predictive(F.pad(signal, (0, 1)))
        return standardised_residual(signal, mean[:, :-1], scale[:, :-1]), mean[:, 1:], scale[:, 1:]

    def lpc_features(self, prediction: Tensor, scale: Tensor) -> Tensor:
        """Head ``lpc_mol``: p, s Tensor[B, n] -> the network's conditioning Tensor[B, n, 3] (float32).

        ``p``; ``log s`` (centred for silence-to-loud scales); how many μ-law classes the
        logistic spans, as ``log(class width at p / s)``: the same residual is a fine
        distribution near zero and a single class at full scale.
        """
        mu = self.cfg.classes - 1
        log_width = math.log(2.0 * math.log1p(mu) / mu**2) + torch.log1p(mu * prediction.abs())
        log_s = torch.log(scale)
        return torch.stack([prediction, (log_s + 7.0) / 3.0, (log_width - log_s) / 3.0], dim=-1).float()

    def _to_waveform_units(self, logits: Tensor, prediction: Tensor, scale: Tensor, time_axis: int) -> Tensor:
        """Head ``lpc_mol``: standardised mixture parameters -> waveform ones (means ``p + s·m``, log scales
        ``log s + l``). logits: Tensor[B, 3M, T] (time_axis=2) or Tensor[n, B, 3M] (time_axis=0); p, s: Tensor[B, T]."""
        m = self.cfg.mixtures
        p, log_s = prediction.float(), torch.log(scale).float()
        axis = 1 if time_axis == 2 else 2
        weights, means, log_scales = logits.split(m, dim=axis)
        p, log_s = (p[:, None], log_s[:, None]) if time_axis == 2 else (p.T[:, :, None], log_s.T[:, :, None])
        # Centred (no lpc_mean_shift): the mean rows are not read, so they get no gradient and stay zero.
        means = p + log_s.exp() * means if self.cfg.lpc_mean_shift else p.expand_as(means)
        return torch.cat([weights, means, log_s + log_scales], dim=axis)

    def _shift_by_prediction(self, logits: Tensor, prediction: Optional[Tensor], time_axis: int) -> Tensor:
        """Mixture of logistics: add ``p_t`` to every component's mean (the head models the residual).

        logits: Tensor[B, 3M, T] (time_axis=2) or Tensor[n, B, 3M] (time_axis=0); prediction: Tensor[B, T].
        The categorical head is left as it is: it gets ``p_t`` as an input only.
        """
        if prediction is None or self.cfg.head != "mol":
            return logits
        m = self.cfg.mixtures
        if time_axis == 2:
            weights, means, scales = logits.split(m, dim=1)
            return torch.cat([weights, means + prediction[:, None].to(means.dtype), scales], dim=1)
        weights, means, scales = logits.split(m, dim=2)
        return torch.cat([weights, means + prediction.T[:, :, None].to(means.dtype), scales], dim=2)

    def _decode_one(self, tokens: Tensor) -> Tensor:
        """head.decode for a few tokens, through a table for μ-law (torchaudio's decode costs ~0.1 ms a call)."""
        if self.cfg.head not in ("categorical", "lpc_mol"):
            return tokens.float()
        table = getattr(self, "_decode_table", None)
        if table is None or table.device != tokens.device:
            table = self.head.decode(torch.arange(self.cfg.classes, device=tokens.device)).float()
            self._decode_table = table
        return table[tokens]

    def _step_bias(self, bias: Tensor, frame_index: Tensor, features: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Per-step bias rows Tensor[B, n, L, G] (frame index 0..n-1) with the LPC projection of the
        predictor's features Tensor[B, n, C] added (``p`` alone: Tensor[B, n])."""
        B, n = bias.shape[0], frame_index.shape[0]
        rows = bias[:, frame_index]
        if features is not None:
            L, G = self.cfg.layers, self.cfg.gate_channels
            features = features if features.dim() == 3 else features[:, :, None]
            weight = self.lpc_proj.weight[:, :, 0]  # [L*G, C]
            rows = rows + (features.to(weight.dtype) @ weight.T).reshape(B, n, L, G)
        return rows, torch.arange(n, device=frame_index.device)

    # ------------------------------------------------------------------ incremental API

    def pack(self, dtype: Optional[torch.dtype] = None) -> PackedWaveNet:
        """Weights laid out for :mod:`wavegen.kernels` (see :class:`PackedWaveNet`)."""
        cfg = self.cfg
        if cfg.head == "categorical":
            embed, head_kind, classes = self.embed.weight, HEAD_CATEGORICAL, cfg.classes
        else:  # mol, and lpc_mol (which reads a real value too; its sampling is done by the caller)
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
        lpc = residual = None
        silence = self.head.silence(batch, device)
        if self.cfg.lpc_order:
            c = self.cfg
            lpc = LPCState.empty(batch, c.lpc_order, c.lpc_window, c.lpc_refit, device, c.lpc_method)
        if self.cfg.head == "lpc_mol":  # the first input against the cold start's prediction (0, its scale)
            residual = standardised_residual(self._decode_one(silence), torch.zeros_like(lpc.scale), lpc.scale)
        return WaveNetState(queues=queues, t=0, next_input=silence, lpc=lpc, residual=residual)

    @torch.no_grad()
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
        sampler: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Advance ``state`` by ``n = len(frame_index)`` samples (the shared step API).

        bias: Tensor[B, F, L, G] from :meth:`frame_bias`; frame_index: LongTensor[n] into its F axis;
        uniforms: Tensor[n, B, 2]; forced: optional Tensor[B, n] tokens to feed instead of sampling.
        sampler: optional ``(logits Tensor[B, A], uniforms Tensor[B, 2]) -> tokens Tensor[B]`` used
        instead of the kernels' sampling (e.g. top-p); then, as for a model with ``lpc_order > 0``,
        free-running steps go one kernel call per sample.
        Returns (tokens Tensor[B, n], logits Tensor[n, B, A] if ``return_logits``).
        """
        if self.cfg.head == "lpc_mol":
            return self._residual_step(state, bias, frame_index, uniforms, forced, temperature, return_logits,
                                       backend, sampler)
        if state.lpc is None and (sampler is None or forced is not None):
            return self._kernel_step(state, bias, frame_index, uniforms, forced, temperature, return_logits, backend)
        if forced is not None:
            # Every input of the chunk is known: one kernel call, a bias row per step.
            inputs = torch.cat([state.next_input[:, None].to(forced.dtype), forced[:, :-1]], dim=1)
            prediction = state.lpc.predict(self.head.decode(inputs).float())
            rows, index = self._step_bias(bias, frame_index, prediction)
            tokens, logits = self._kernel_step(state, rows, index, uniforms, forced, temperature, return_logits,
                                               backend)
            return tokens, self._shift_by_prediction(logits, prediction, 0) if return_logits else None
        if sampler is None:
            sampler = lambda logits, u: self.head.sample(logits, u, temperature)  # the kernels' own rule
        # Free running: p_t needs the sample drawn just before, so one sample per kernel call.
        # The kernel is told to emit a placeholder (forced) and the token is drawn here; the
        # queues only ever hold inputs, so replacing next_input afterwards is exact.
        placeholder = self.head.silence(state.next_input.shape[0], state.next_input.device)[:, None]
        packed = self._pack_cache.get(self, state.queues.dtype)  # once: checking the weights costs ~1 µs each
        tokens, all_logits = [], []
        for i in range(frame_index.shape[0]):
            prediction = None
            if state.lpc is not None:
                prediction = state.lpc.predict(self._decode_one(state.next_input[:, None]))
            rows, index = self._step_bias(bias, frame_index[i : i + 1], prediction)
            _, logits = self._kernel_step(state, rows, index, uniforms[i : i + 1], placeholder, temperature, True,
                                          backend, packed)
            logits = self._shift_by_prediction(logits, prediction, 0)
            token = sampler(logits[0], uniforms[i])
            state.next_input = token
            tokens.append(token)
            if return_logits:
                all_logits.append(logits)
        return torch.stack(tokens, dim=1), (torch.cat(all_logits) if return_logits else None)

    def _residual_step(self, state: WaveNetState, bias: Tensor, frame_index: Tensor, uniforms: Tensor,
                       forced: Optional[Tensor], temperature: float, return_logits: bool, backend: str,
                       sampler: Optional[Callable[[Tensor, Tensor], Tensor]]) -> tuple[Tensor, Optional[Tensor]]:
        """:meth:`step` for head ``lpc_mol``: the kernels run the network on standardised residuals
        (a real input, as for the mixture head) and always emit the given reads; tokens are drawn here."""
        from wavegen import kernels

        packed = self._pack_cache.get(self, state.queues.dtype)
        n = frame_index.shape[0]

        def run(rows, index, u, reads):
            _, logits = kernels.wavenet_generate(packed, state.queues, state.t, state.residual,
                                                 rows.to(state.queues.dtype), index, u, reads, temperature, True,
                                                 backend)
            state.t += index.shape[0]
            return logits

        if forced is not None:
            # Every input is known: the predictor runs over the chunk, then one kernel call.
            values = self._decode_one(torch.cat([state.next_input[:, None], forced[:, :-1]], dim=1))
            mean, scale = state.lpc.predictive(values)  # the logistic of each step's sample
            reads = standardised_residual(self._decode_one(forced), mean, scale)
            rows, index = self._step_bias(bias, frame_index, self.lpc_features(mean, scale))
            logits = run(rows, index, uniforms, reads)
            state.next_input, state.residual = forced[:, -1], reads[:, -1]
            return forced, (self._to_waveform_units(logits, mean, scale, 0) if return_logits else None)
        if sampler is None:
            sampler = lambda logits, u: self.head.sample(logits, u, temperature)
        placeholder = torch.zeros_like(state.residual)[:, None]
        tokens, all_logits = [], []
        for i in range(n):
            mean, scale = state.lpc.predictive(self._decode_one(state.next_input[:, None]))
            rows, index = self._step_bias(bias, frame_index[i : i + 1], self.lpc_features(mean, scale))
            logits = self._to_waveform_units(run(rows, index, uniforms[i : i + 1], placeholder), mean, scale, 0)
            token = sampler(logits[0], uniforms[i])
            state.next_input = token
            state.residual = standardised_residual(self._decode_one(token[:, None]), mean, scale)[:, 0]
            tokens.append(token)
            if return_logits:
                all_logits.append(logits)
        return torch.stack(tokens, dim=1), (torch.cat(all_logits) if return_logits else None)

    def _kernel_step(self, state: WaveNetState, bias: Tensor, frame_index: Tensor, uniforms: Tensor,
                     forced: Optional[Tensor], temperature: float, return_logits: bool,
                     backend: str, packed: Optional[PackedWaveNet] = None) -> tuple[Tensor, Optional[Tensor]]:
        """One call of the fused kernels (:func:`wavegen.kernels.wavenet_generate`)."""
        from wavegen import kernels

        packed = packed if packed is not None else self._pack_cache.get(self, state.queues.dtype)
        with torch.no_grad():
            tokens, logits = kernels.wavenet_generate(
                packed, state.queues, state.t, state.next_input, bias.to(state.queues.dtype), frame_index,
                uniforms, forced, temperature, return_logits, backend,
            )
        state.t += frame_index.shape[0]
        state.next_input = tokens[:, -1]
        return tokens, logits


def standardised_residual(value: Tensor, prediction: Tensor, scale: Tensor) -> Tensor:
    """What an ``lpc_mol`` WaveNet reads: ``asinh((value - p) / s)``, Tensor[B, n] float32.

    asinh is linear for ordinary residuals and logarithmic for the huge ones after a
    near-silent fit (an onset), so one input never saturates the first layer.
    """
    return torch.asinh((value.double() - prediction.double()) / scale.double()).float()
