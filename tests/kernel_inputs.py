"""Inputs for one call of the fused WaveNet step, and the checks a kernel's results must pass:
shared by the CPU and the CUDA kernel tests (torch only, so they run on a bare GPU machine)."""

from __future__ import annotations

import math

import torch

from wavegen.models.wavenet import WaveNet

# A start time past every ring buffer's length and a multiple of none of them.
T0 = 3001


def step_inputs(model: WaveNet, batch: int, n: int, conditioned: bool, seed: int = 1):
    """Random queues (a state in mid-stream), per-frame bias and frame indices, uniforms.

    Returns ``(queues, t0, next_input, bias, frame_index, uniforms)`` for ``n`` steps.
    """
    g = torch.Generator().manual_seed(seed)
    state = model.init_state(batch)
    state.queues.copy_(torch.randn(state.queues.shape, generator=g) * 0.5)
    if conditioned:
        frames = 9
        local = torch.randn(batch, 5, frames, generator=g)
        ids = torch.randint(0, 4, (batch,), generator=g)
        bias = model.frame_bias(batch, local, ids)
        frame_index = torch.randint(0, frames, (n,), generator=g).sort().values
    else:
        bias = model.frame_bias(batch)
        frame_index = torch.zeros(n, dtype=torch.long)
    uniforms = torch.rand(n, batch, 2, generator=g)
    if model.cfg.head == "categorical":
        next_input = torch.randint(0, model.cfg.classes, (batch,), generator=g)
    else:
        next_input = torch.rand(batch, generator=g) * 2 - 1
    return state.queues, T0, next_input, bias, frame_index, uniforms


# ----------------------------------------------------------------------------- comparing a kernel with the reference
#
# Floating-point order differs between backends, so a draw that lands within ~1e-6 of a class
# boundary of the CDF can pick the neighbouring class, and from there two free-running streams
# legitimately diverge. A kernel is therefore judged on ITS OWN stream: the reference is
# teacher-forced on the kernel's tokens, which puts both in the same state at every step, and
#   - the kernel's logits must be within the tolerance of its weight storage at every step;
#   - every token must be the one the reference's sampler draws from the reference's logits
#     with the same uniforms, unless the uniform lies within the error those logits allow of
#     the CDF boundary between the two classes (a "boundary flip"; rare, and counted);
#   - over a long run, the stream's statistics must be those of the reference's distributions.

# Logit tolerance per weight storage dtype: absolute for float32 (measured error ~5e-7); for
# 16-bit storage relative to the logits' standard deviation (measured 0.14-0.19% float16,
# 1.1-1.3% bfloat16).
LOGIT_TOLERANCE = {torch.float32: 1e-4, torch.float16: 0.01, torch.bfloat16: 0.05}
# Largest share of teacher-forced draws that may be boundary flips.
FLIP_SHARE = {torch.float32: 0.002, torch.float16: 0.01, torch.bfloat16: 0.03}


def logit_limit(ref_logits: torch.Tensor, weights_dtype=None) -> float:
    """The largest |kernel logit - reference logit| allowed for weights stored as ``weights_dtype``."""
    dtype = weights_dtype or torch.float32
    if dtype == torch.float32:
        return LOGIT_TOLERANCE[dtype]
    return LOGIT_TOLERANCE[dtype] * ref_logits.float().std().item()


def reference_on_stream(w, queues, t0, next_input, bias, frame_index, uniforms, tokens, temperature=1.0):
    """The reference teacher-forced on a kernel's tokens Tensor[B, n]: (logits Tensor[n, B, A], final queues)."""
    from wavegen.kernels import reference

    q = queues.clone()
    _, logits = reference.wavenet_generate(w, q, t0, next_input, bias, frame_index, uniforms, tokens.cpu(),
                                           temperature, True)
    return logits, q


def _flip_explained(logits_row, u, token, expected, temperature, margin, mixtures=None) -> bool:
    """Whether drawing ``token`` instead of ``expected`` is within rounding of a class boundary."""
    logits_row = logits_row.double()
    if mixtures is not None:  # mixture of logistics: the component pick reads the weights, untempered
        logits_row, temperature = logits_row[:mixtures], 1.0
    if temperature <= 0:  # greedy: only a near-tie can flip
        return abs(logits_row[token] - logits_row[expected]).item() <= 2 * margin
    cdf = torch.softmax(logits_row / temperature, dim=-1).cumsum(dim=-1)
    low, high = sorted((int(token), int(expected)))
    # The draw counts the boundaries below u: between the two classes every boundary must be
    # within reach of u; a logit error e moves a CDF value by at most 2e / temperature.
    return bool(((cdf[low:high] - float(u)).abs() <= 2 * margin / temperature).all())


def assert_faithful(w, tokens, logits, ref_logits, uniforms, temperature=1.0, weights_dtype=None):
    """Check a kernel's stream against the reference teacher-forced on it (see above).

    tokens Tensor[B, n] and logits Tensor[n, B, A] from the kernel (logits may be None, e.g.
    for a run through the sampling driver: then only the draws are checked); ref_logits
    Tensor[n, B, A] from :func:`reference_on_stream`; uniforms Tensor[n, B, 2]. Raises
    AssertionError naming the first offending step; returns the number of boundary flips.
    """
    from wavegen.kernels import reference

    tokens, uniforms, ref_logits = tokens.cpu(), uniforms.cpu(), ref_logits.cpu().float()
    limit = logit_limit(ref_logits, weights_dtype)
    if logits is not None:
        logits = logits.cpu().float()
        assert logits.shape == ref_logits.shape, (logits.shape, ref_logits.shape)
        error = (logits - ref_logits).abs()
        if error.numel() and error.max().item() > limit:
            step, stream, index = [int(i) for i in torch.nonzero(error > limit)[0]]
            raise AssertionError(f"logit error {error[step, stream, index].item():.3g} > {limit:.3g} at step {step}, "
                                 f"stream {stream}, output {index}")
    categorical = w.head_kind == reference.HEAD_CATEGORICAL
    mixtures = None if categorical else w.classes
    flips = 0
    expected = torch.stack([reference.sample_from_logits(w, ref_logits[i], uniforms[i], temperature)
                            for i in range(tokens.shape[1])], dim=1).reshape(tokens.shape)  # [B, n]
    # Draws that plainly agree are done; the rest are looked at one by one.
    if categorical:
        suspects = torch.nonzero(tokens != expected).tolist()
    else:
        suspects = torch.nonzero((tokens - expected).abs() > limit + 1e-6).tolist()
    for b, i in suspects:
        got, want = tokens[b, i], expected[b, i]
        if categorical:
            kernel_class, reference_class = int(got), int(want)
        else:
            kernel_class, reference_class, same = _mixture_draw(w, ref_logits[i, b], uniforms[i, b], temperature,
                                                                float(got), limit)
            if same:
                continue
        if kernel_class == reference_class or not _flip_explained(
                ref_logits[i, b], uniforms[i, b, 0], kernel_class, reference_class, temperature, limit, mixtures):
            raise AssertionError(f"step {i}, stream {b}: the kernel drew {float(got):.6g}, the reference "
                                 f"{float(want):.6g} from the same uniforms, and not at a class boundary")
        flips += 1
    share = FLIP_SHARE[weights_dtype or torch.float32]
    assert flips <= max(1, share * tokens.numel()), f"{flips} boundary flips in {tokens.numel()} draws"
    return flips


def _mixture_draw(w, ref_row, u, temperature, got, limit):
    """For one mixture-of-logistics draw: (the component whose sample ``got`` is, the component
    the reference picks, whether ``got`` is the reference's sample within what ``limit`` allows).

    Each component's sample follows from the reference's logits and u[1]; a logit error e
    moves it by at most e * (1 + temperature * scale * |logistic noise|).
    """
    from wavegen.kernels import reference

    m = w.classes
    ref_row = ref_row.double()
    u1 = min(max(float(u[1]), reference.UNIFORM_EPS), 1 - reference.UNIFORM_EPS)
    noise = math.log(u1) - math.log1p(-u1)
    scales = torch.exp(ref_row[2 * m:].clamp_min(w.mol_log_scale_min))
    samples = (ref_row[m : 2 * m] + temperature * scales * noise).clamp(-1.0, 1.0)
    allowed = limit * (1 + abs(temperature * noise) * scales) + 1e-6
    distance = (samples - got).abs()
    cdf = torch.softmax(ref_row[:m].float(), dim=-1).double().cumsum(dim=-1)
    reference_class = min(int((cdf.float() < float(u[0])).sum()), m - 1)
    if distance[reference_class] <= allowed[reference_class]:
        return reference_class, reference_class, True
    kernel_class = int(distance.argmin())
    if distance[kernel_class] > allowed[kernel_class]:
        kernel_class = reference_class  # no component explains the value: reported as a mismatch
    return kernel_class, reference_class, False


def stream_statistics(tokens, ref_logits, temperature=1.0) -> dict:
    """Free-running statistics of a categorical stream Tensor[B, n] under the reference's
    distributions ref_logits Tensor[n, B, A] (teacher-forced on that stream).

    ``nll``: mean negative log-likelihood of the tokens; ``entropy``: the mean entropy of the
    distributions they were drawn from (what ``nll`` averages to for a faithful sampler);
    ``nll_se``: the standard error of their difference. ``tv``: total-variation distance
    between the token histogram and the histogram the distributions predict; ``tv_scale``:
    what ``tv`` amounts to by chance (half the summed standard deviations of the class
    frequencies).
    """
    log_p = torch.log_softmax(ref_logits.double() / temperature, dim=-1)  # [n, B, A]
    p = log_p.exp()
    chosen = tokens.cpu().t()[..., None]  # [n, B, 1]
    nll = -log_p.gather(-1, chosen)[..., 0]
    entropy = -(p * log_p).sum(-1)
    variance = (p * log_p**2).sum(-1) - entropy**2  # per draw: Var of -log p(token)
    count = nll.numel()
    frequency = torch.bincount(chosen.flatten(), minlength=p.shape[-1]).double() / count
    expected = p.reshape(-1, p.shape[-1]).mean(0)
    chance = (p * (1 - p)).reshape(-1, p.shape[-1]).sum(0).sqrt() / count
    return {"nll": nll.mean().item(), "entropy": entropy.mean().item(),
            "nll_se": variance.clamp_min(0).sum().sqrt().item() / count,
            "tv": 0.5 * (frequency - expected).abs().sum().item(), "tv_scale": 0.5 * chance.sum().item()}


def assert_statistics_match(tokens, ref_logits, temperature=1.0) -> dict:
    """A stream's NLL and histogram are what the reference's distributions predict (5 standard
    errors for the NLL, 3x the chance scale for the histogram)."""
    s = stream_statistics(tokens, ref_logits, temperature)
    assert abs(s["nll"] - s["entropy"]) <= 5 * s["nll_se"] + 1e-3, s
    assert s["tv"] <= 3 * s["tv_scale"], s
    return s
