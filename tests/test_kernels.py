"""Compiled CPU kernels against the PyTorch reference (wavegen/kernels/reference.py).

The WaveNet step must follow the reference on its own token stream: the reference is
teacher-forced on the kernel's tokens, the logits must agree within 1e-4 (float32 weights)
and every draw must be the reference's from the same uniforms, except a draw within rounding
of a class boundary (tests/kernel_inputs.py says why exact equality of free-running streams
is not a property any two backends have). Random queue contents and a large start time
exercise the ring-buffer arithmetic of every layer, dilation 512 included, without running
thousands of reference steps; one test does run 2,000 steps through the chunked sampling
driver and checks the stream's statistics too.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from wavegen import kernels
from wavegen.generate.sampling import generate_tokens
from wavegen.kernels import build, dispatch, layout, reference
from wavegen.models.wavenet import WaveNet, WaveNetConfig

from kernel_inputs import assert_faithful, assert_statistics_match, logit_limit, reference_on_stream, step_inputs

@pytest.fixture(scope="module", autouse=True)
def cpu_kernels():
    result = build.load("cpu")
    assert result.ok, f"the CPU kernels must build here: {result.error}"
    # One intra-op thread: on a shared, busy machine every tiny parallel region of the
    # reference (a softmax over 16 classes) can otherwise wait a whole scheduler slice.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    yield
    torch.set_grad_enabled(True)
    torch.set_num_threads(threads)


def make_model(head="categorical", kernel_size=2, conditioned=False, layers=10, cycle=10, seed=0,
               residual=8, gate=12, skip=10, classes=16) -> WaveNet:
    """Dilations 1..512 with small channels (uneven sizes on purpose), non-trivial weights."""
    cfg = WaveNetConfig(layers=layers, dilation_cycle=cycle, kernel_size=kernel_size, residual_channels=residual,
                        gate_channels=gate, skip_channels=skip, head=head, classes=classes, mixtures=3,
                        local_channels=5 if conditioned else 0, local_hop=7, local_hidden=6,
                        global_classes=4 if conditioned else 0)
    model = WaveNet(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def run_on_stream(model, queues, t0, next_input, bias, frame_index, uniforms, forced=None, temperature=1.0,
                  weights_dtype=None):
    """The CPU kernel (free-running unless ``forced``), then the reference teacher-forced on its tokens.

    Returns (packed weights, kernel tokens, kernel logits, reference logits, kernel queues, reference queues).
    """
    w = model.pack()
    q_cpu = queues.clone()
    tokens, logits = kernels.wavenet_generate(w, q_cpu, t0, next_input, bias, frame_index, uniforms, forced,
                                              temperature, True, backend="cpu", weights_dtype=weights_dtype)
    ref_logits, q_ref = reference_on_stream(w, queues, t0, next_input, bias, frame_index, uniforms, tokens,
                                            temperature)
    return w, tokens, logits, ref_logits, q_cpu, q_ref


# ----------------------------------------------------------------------------- WaveNet step


@pytest.mark.parametrize("conditioned", [False, True], ids=["plain", "conditioned"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("head", ["categorical", "mol"])
def test_cpu_step_matches_reference(head, kernel_size, batch, conditioned):
    model = make_model(head, kernel_size, conditioned)
    inputs = step_inputs(model, batch, 48, conditioned)
    w, tokens, logits, ref_logits, q_cpu, q_ref = run_on_stream(model, *inputs)
    assert logits.shape == ref_logits.shape == (48, batch, model.head.out_channels)
    assert tokens.dtype == (torch.long if head == "categorical" else torch.float32)
    assert_faithful(w, tokens, logits, ref_logits, inputs[5])
    assert (q_ref - q_cpu).abs().max().item() <= 1e-5


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_cpu_step_greedy_and_tempered(temperature):
    model = make_model("categorical", 3, True)
    inputs = step_inputs(model, 3, 40, True)
    w, tokens, logits, ref_logits, _, _ = run_on_stream(model, *inputs, temperature=temperature)
    assert_faithful(w, tokens, logits, ref_logits, inputs[5], temperature)


# The gate (tanh * sigmoid over gate_channels / 2 units) and the softmax's exp take the AVX2
# path 8 lanes at a time and finish with a scalar tail loop (csrc/cpu_simd.h:
# gated_activation, exp_shifted); the small model above has 6 gate units, so only the tail
# ran. These widths run whole vectors: 8 units (vectors only), 13 (one vector + a 5-unit
# tail), 20 (two + 4), with residual + skip widths past one 64-column panel and a class
# count that is not a multiple of 8 either.
AVX2_WIDTHS = [  # (head, residual, gate, skip, classes, batch)
    ("categorical", 8, 16, 10, 16, 1),
    ("categorical", 12, 26, 20, 21, 5),
    ("mol", 24, 40, 50, 16, 3),
]


@pytest.mark.skipif(not build.x86_vector_flags(),
                    reason="this CPU lacks AVX2/FMA/F16C, so the kernels are built without the vector path")
@pytest.mark.parametrize("head,residual,gate,skip,classes,batch", AVX2_WIDTHS,
                         ids=[f"{w[0]}-gate{w[2]}-res{w[1]}-b{w[5]}" for w in AVX2_WIDTHS])
def test_avx2_gate_widths_match_reference(head, residual, gate, skip, classes, batch):
    """Gate widths of 8 or more units (multiples of 8 and not) follow the reference within
    the float32 logit tolerance (1e-4), with the reference's draws and queues."""
    model = make_model(head, 2, True, residual=residual, gate=gate, skip=skip, classes=classes)
    assert gate // 2 >= 8  # the vector path runs only from 8 gate units up
    inputs = step_inputs(model, batch, 40, True)
    w, tokens, logits, ref_logits, q_cpu, q_ref = run_on_stream(model, *inputs)
    assert logits.shape == ref_logits.shape == (40, batch, model.head.out_channels)
    assert_faithful(w, tokens, logits, ref_logits, inputs[5])
    assert (q_ref - q_cpu).abs().max().item() <= 1e-5


def test_comparison_rejects_a_perturbed_logit_or_draw():
    """The checks above can fail: one logit moved past the tolerance, one token moved to a
    neighbouring class away from any boundary, or a stream drawn at the wrong temperature."""
    model = make_model("categorical", 2, True)
    inputs = step_inputs(model, 3, 40, True)
    w, tokens, logits, ref_logits, _, _ = run_on_stream(model, *inputs)
    uniforms = inputs[5]
    assert assert_faithful(w, tokens, logits, ref_logits, uniforms) == 0

    nudged = logits.clone()
    nudged[17, 1, 5] += 1.5 * logit_limit(ref_logits)
    with pytest.raises(AssertionError, match="logit error .* at step 17, stream 1, output 5"):
        assert_faithful(w, tokens, nudged, ref_logits, uniforms)
    within = logits.clone()
    within[17, 1, 5] += 0.5 * logit_limit(ref_logits)
    assert_faithful(w, tokens, within, ref_logits, uniforms)
    # 16-bit storage is judged by its own, wider tolerance: the same nudge passes there.
    assert_faithful(w, tokens, nudged, ref_logits, uniforms, weights_dtype=torch.float16)

    moved = tokens.clone()
    moved[2, 9] = (moved[2, 9] + 1) % model.cfg.classes
    with pytest.raises(AssertionError, match="step 9, stream 2"):
        assert_faithful(w, moved, logits, ref_logits, uniforms)

    # A draw that sits on a class boundary may legitimately go either way: put u a hair above
    # the CDF at this token, where the reference picks a later class, and keep the kernel's.
    b, i = [int(x) for x in torch.nonzero(tokens < model.cfg.classes - 2)[0]]
    cdf = torch.softmax(ref_logits[i, b].double(), dim=-1).cumsum(dim=-1)
    on_edge = uniforms.clone()
    on_edge[i, b, 0] = float(cdf[int(tokens[b, i])]) + 3e-6
    assert reference.sample_from_logits(w, ref_logits[i], on_edge[i], 1.0)[b] > tokens[b, i]
    assert assert_faithful(w, tokens, logits, ref_logits, on_edge) == 1
    on_edge[i, b, 0] += 0.01  # far from the boundary the same draw is an error
    with pytest.raises(AssertionError, match=f"step {i}, stream {b}"):
        assert_faithful(w, tokens, logits, ref_logits, on_edge)

    # Free-running statistics: a faithful stream passes, a greedy one (wrong temperature) fails.
    stats = assert_statistics_match(tokens, ref_logits)
    assert stats["nll_se"] > 0
    greedy = ref_logits.argmax(-1).t()
    with pytest.raises(AssertionError):
        assert_statistics_match(greedy, ref_logits)


@pytest.mark.parametrize("head", ["categorical", "mol"])
def test_forced_tokens_reproduce_the_full_forward(head):
    """Teacher forcing through the kernel gives the full forward pass's logits."""
    model = make_model(head, 3, True, layers=6, cycle=3)
    B, T = 2, 150
    g = torch.Generator().manual_seed(5)
    if head == "categorical":
        tokens = torch.randint(0, 16, (B, T), generator=g)
    else:
        tokens = model.head.encode(torch.rand(B, T, generator=g) * 1.8 - 0.9)
    local = torch.randn(B, 5, math.ceil(T / 7), generator=g)
    ids = torch.tensor([1, 3])
    inputs = torch.cat([model.head.silence(B)[:, None].to(tokens.dtype), tokens[:, :-1]], dim=1)
    state = model.init_state(B)
    state.next_input = inputs[:, 0]
    bias = model.frame_bias(B, local, ids)
    frame_index = torch.arange(T) // 7
    forced = torch.cat([inputs[:, 1:], tokens[:, -1:]], dim=1)  # the input of step i+1
    emitted, logits = model.step(state, bias, frame_index, torch.zeros(T, B, 2), forced=forced,
                                 return_logits=True, backend="cpu")
    full = model(inputs, local, ids)
    assert (full - logits.permute(1, 2, 0)).abs().max().item() <= logit_limit(full)
    assert torch.equal(emitted, forced) and emitted.dtype == forced.dtype


@pytest.mark.parametrize("head,kernel_size,layers,batch", [
    ("categorical", 2, 4, 7),
    pytest.param("categorical", 3, 10, 1, marks=pytest.mark.slow),
    pytest.param("mol", 2, 10, 7, marks=pytest.mark.slow),
])
def test_2000_samples_through_the_driver_follow_the_reference(head, kernel_size, layers, batch):
    """The chunked sampler, conditioning varying per frame: 2,000 samples per stream, every draw
    the reference's on that stream (up to boundary flips), and for the categorical head the
    stream's NLL and token histogram what the reference's distributions predict.

    The default case keeps four layers (the reference is slow); ring arithmetic up to
    dilation 512 is covered above, and by the slow cases here.
    """
    model = make_model(head, kernel_size, True, layers=layers, cycle=layers)
    B, n, chunk = batch, 2000, 700
    g = torch.Generator().manual_seed(3)
    local = torch.randn(B, 5, math.ceil(n / 7), generator=g)
    ids = torch.randint(0, 4, (B,), generator=g)
    chunks = generate_tokens(model, n, batch_size=B, local=local, global_ids=ids, chunk_size=chunk,
                             generator=torch.Generator().manual_seed(11), backend="cpu")
    tokens = torch.cat(list(chunks), dim=1)
    assert tokens.shape == (B, n)

    # The uniforms the driver drew (one draw per chunk), and the whole clip's conditioning.
    g = torch.Generator().manual_seed(11)
    uniforms = torch.cat([torch.rand(min(chunk, n - t), B, 2, generator=g) for t in range(0, n, chunk)])
    state = model.init_state(B)
    bias = model.frame_bias(B, local, ids)
    ref_logits, _ = reference_on_stream(model.pack(), state.queues, 0, state.next_input, bias,
                                        torch.arange(n) // 7, uniforms, tokens)
    assert_faithful(model.pack(), tokens, None, ref_logits, uniforms)
    if head == "categorical":
        assert_statistics_match(tokens, ref_logits)
    assert len(torch.unique(tokens)) > 4, "samples should not collapse to a constant"


def test_backends_can_hand_the_state_over():
    """Queues are canonical: 30 reference steps then 30 kernel steps follow the reference over 60."""
    model = make_model("categorical", 2, False)
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 2, 60, False)
    w = model.pack()
    q_mix = queues.clone()
    first, _ = reference.wavenet_generate(w, q_mix, t0, next_input, bias, frame_index[:30], uniforms[:30])
    second, logits = kernels.wavenet_generate(w, q_mix, t0 + 30, first[:, -1], bias, frame_index[30:],
                                              uniforms[30:], return_logits=True, backend="cpu")
    tokens = torch.cat([first, second], dim=1)
    ref_logits, q_ref = reference_on_stream(w, queues, t0, next_input, bias, frame_index, uniforms, tokens)
    assert_faithful(w, second, logits, ref_logits[30:], uniforms[30:])
    assert (q_mix - q_ref).abs().max().item() <= 1e-5


def test_zero_steps_change_nothing():
    model = make_model()
    queues, t0, next_input, bias, _, _ = step_inputs(model, 2, 1, False)
    before = queues.clone()
    tokens, logits = kernels.wavenet_generate(model.pack(), queues, t0, next_input, bias,
                                              torch.zeros(0, dtype=torch.long), torch.zeros(0, 2, 2),
                                              return_logits=True, backend="cpu")
    assert tokens.shape == (2, 0) and logits.shape == (0, 2, 16)
    assert torch.equal(queues, before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_weights_stay_faithful(dtype):
    """fp16/bf16 weight storage (fp32 arithmetic): the stated tolerance of the option.

    Max |logit error| within 1% (float16) / 5% (bfloat16) of the logits' standard deviation
    (measured: 0.14% and 1.1%), teacher forced so errors cannot compound, and at most 1% / 3%
    of the draws from the same uniforms differ from float32's (each at a class boundary).
    """
    model = make_model("categorical", 2, True)
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 4, 200, True)
    w, tokens, logits, ref_logits, _, _ = run_on_stream(model, queues, t0, next_input, bias, frame_index, uniforms,
                                                        weights_dtype=dtype)
    assert_faithful(w, tokens, logits, ref_logits, uniforms, weights_dtype=dtype)
    assert (logits - ref_logits).abs().max().item() > 0, "reduced precision should differ from float32 at all"


def test_invalid_inputs_are_rejected():
    model = make_model()
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 2, 5, False)
    w = model.pack()
    with pytest.raises(ValueError, match="forced token"):
        kernels.wavenet_generate(w, queues, t0, next_input, bias, frame_index, uniforms,
                                 forced=torch.full((2, 5), 99), backend="cpu")
    with pytest.raises(ValueError, match="frame_index"):
        kernels.wavenet_generate(w, queues, t0, next_input, bias, frame_index + 3, uniforms, backend="cpu")
    with pytest.raises(ValueError, match="float32"):
        kernels.wavenet_generate(w, queues.double(), t0, next_input, bias, frame_index, uniforms, backend="cpu")
    with pytest.raises(ValueError, match="unknown kernel backend"):
        kernels.wavenet_generate(w, queues, t0, next_input, bias, frame_index, uniforms, backend="fast")
    with pytest.raises(ValueError, match="cannot run on"):
        kernels.wavenet_generate(w, queues, t0, next_input, bias, frame_index, uniforms, backend="cuda")


# ----------------------------------------------------------------------------- dispatch and build


def test_auto_uses_the_kernel_and_the_env_switch_forces_the_reference(monkeypatch):
    model = make_model()
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 2, 6, False)
    calls = []
    real = torch.ops.wavegen.wavenet_generate

    class Spy:
        def __call__(self, *args):
            calls.append(1)
            return real(*args)

    monkeypatch.setattr(dispatch.torch.ops.wavegen, "wavenet_generate", Spy(), raising=False)
    w = model.pack()
    kernels.wavenet_generate(w, queues.clone(), t0, next_input, bias, frame_index, uniforms)
    assert calls == [1]
    monkeypatch.setenv("WAVEGEN_KERNELS", "reference")
    kernels.wavenet_generate(w, queues.clone(), t0, next_input, bias, frame_index, uniforms)
    assert calls == [1]


def test_failed_build_warns_once_and_falls_back(monkeypatch, capsys):
    monkeypatch.setattr(build, "_results", {})
    monkeypatch.setattr(build, "_warned", set())
    monkeypatch.setattr(build, "_build", lambda kind, verbose: build.BuildResult(False, error="error: no compiler"))
    x, scale, shift = torch.randn(2, 3, 5), torch.randn(2, 3, 1), torch.randn(2, 3, 1)
    for _ in range(3):
        out = kernels.film_leaky_relu(x, scale, shift)
        assert torch.equal(out, reference.film_leaky_relu(x, scale, shift))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wavegen: warning: could not build the cpu kernels")
    with pytest.raises(RuntimeError, match="could not be built"):
        kernels.film_leaky_relu(x, scale, shift, backend="cpu")


def test_library_lives_in_the_cache_folder():
    result = build.status()["cpu"]
    library = os.path.realpath(result.library)
    assert library.startswith(os.path.realpath(build.cache_root()))
    assert f"cpu-{build.build_key('cpu', result.flags)}" in library
    assert build.build_key("cpu", result.flags) != build.build_key("cpu", result.flags + ["-DX"])


def test_import_is_light_and_builds_nothing(tmp_path):
    code = (
        "import sys, wavegen.kernels\n"
        "heavy = {'torch.utils.cpp_extension', 'hydra', 'soundfile', 'librosa', 'torchaudio', 'matplotlib'}\n"
        "loaded = heavy & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = dict(os.environ, WAVEGEN_KERNEL_CACHE=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert not (tmp_path / "cache").exists()


def test_weights_precision_context():
    assert kernels.get_weights_dtype() == torch.float32
    with kernels.weights_precision(torch.bfloat16):
        assert kernels.get_weights_dtype() == torch.bfloat16
    assert kernels.get_weights_dtype() == torch.float32
    with pytest.raises(ValueError):
        kernels.set_weights_dtype(torch.int8)


# ----------------------------------------------------------------------------- layout


def test_panel_layout_places_every_weight():
    w = torch.randn(3, 70, 130)  # [..., K, N] with N not a multiple of 64
    panels = layout.to_panels(w)
    assert panels.shape == (3, 3, 70, 64)
    k, n = 41, 129
    assert panels[1, n // 64, k, n % 64] == w[1, k, n]
    assert torch.all(panels[:, 2, :, 130 - 128:] == 0), "padding columns are zero"


def test_layout_cache_follows_weight_changes():
    model = make_model()
    w = model.pack()
    first = layout.layout_cache.get(w, torch.float32, "cpu")
    assert layout.layout_cache.get(w, torch.float32, "cpu") is first
    assert layout.layout_cache.get(w, torch.float16, "cpu").conv.dtype == torch.float16
    w.out2_w.add_(1.0)  # in place: same tensor, new version
    second = layout.layout_cache.get(w, torch.float32, "cpu")
    assert second is not first
    assert torch.allclose(second.out2[0, :, 0], w.out2_w[0, :])


# ----------------------------------------------------------------------------- vocoder ops


@pytest.mark.parametrize("shape", [(2, 3, 1), (2, 3, 50), (1, 3, 1)], ids=["per-channel", "per-sample", "batch-bcast"])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_film_leaky_relu_matches_reference(shape, dtype, tolerance):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 50, generator=g).to(dtype)
    scale, shift = torch.randn(*shape, generator=g).to(dtype), torch.randn(*shape, generator=g).to(dtype)
    out = kernels.film_leaky_relu(x, scale, shift, 0.2, backend="cpu")
    expected = reference.film_leaky_relu(x.float(), scale.float(), shift.float(), 0.2)
    assert out.dtype == dtype and out.shape == x.shape
    assert (out.float() - expected).abs().max().item() <= tolerance * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("with_noise,sigma,clamp", [(True, 0.3, True), (False, 0.0, True), (True, 0.0, False),
                                                    (True, 0.5, False)])
def test_diffusion_update_matches_reference(with_noise, sigma, clamp):
    g = torch.Generator().manual_seed(1)
    y, eps = torch.randn(3, 1000, generator=g), torch.randn(3, 1000, generator=g)
    noise = torch.randn(3, 1000, generator=g) if with_noise else None
    out = kernels.diffusion_update(y, eps, noise, 1.3, 0.2, sigma, clamp, backend="cpu")
    expected = reference.diffusion_update(y, eps, noise, 1.3, 0.2, sigma, clamp)
    assert (out - expected).abs().max().item() <= 1e-6
    assert clamp == bool(out.abs().max() <= 1.0)


def test_vocoder_ops_use_autograd_when_inputs_need_grad():
    with torch.enable_grad():
        x = torch.randn(2, 3, 7, requires_grad=True)
        scale, shift = torch.randn(2, 3, 1), torch.randn(2, 3, 1)
        kernels.film_leaky_relu(x, scale, shift).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        y = torch.randn(2, 9, requires_grad=True)
        kernels.diffusion_update(y, torch.randn(2, 9), None, 2.0, 0.1, 0.0, False).sum().backward()
        assert torch.allclose(y.grad, torch.full((2, 9), 2.0))


# ----------------------------------------------------------------------------- torch.library registration


@pytest.mark.parametrize("head,skip,classes", [
    ("categorical", 16, 16),  # square: S = A
    ("categorical", 10, 16),  # S < A
    ("mol", 40, 3),           # S > A = 9
], ids=["square", "skip-narrower", "skip-wider"])
@pytest.mark.parametrize("return_logits", [True, False])
def test_wavenet_op_passes_opcheck(head, skip, classes, return_logits):
    """Schema, autograd registration, the fake (meta) implementation's shapes against the real
    op's, and tracing with dynamic shapes (``torch.library.opcheck``); the head's width differs
    from the skip width on purpose, which `base` (S = A = 256) would hide."""
    cfg = WaveNetConfig(layers=3, dilation_cycle=3, kernel_size=2, residual_channels=8, gate_channels=12,
                        skip_channels=skip, head=head, classes=classes, mixtures=classes)
    model = WaveNet(cfg).eval()
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 2, 5, False)
    kw = layout.layout_cache.get(model.pack(), torch.float32, "cpu")
    args = (queues, t0, next_input, bias, frame_index, uniforms, None, 1.0, return_logits, *kw.op_args())
    results = torch.library.opcheck(torch.ops.wavegen.wavenet_generate.default, args)
    assert set(results.values()) == {"SUCCESS"}, results


def test_film_op_passes_opcheck():
    x = torch.randn(2, 3, 7)
    args = (x, torch.randn(2, 3, 1).expand_as(x), torch.randn(1, 3, 7).expand_as(x), 0.2)
    results = torch.library.opcheck(torch.ops.wavegen.film_leaky_relu.default, args)
    assert set(results.values()) == {"SUCCESS"}, results
