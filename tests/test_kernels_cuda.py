"""The CUDA kernels: compiled by nvcc here, run through the CPU emulation here, run on a GPU
where there is one (``pytest -m cuda``; benchmarks/gpu_check.sh runs these on a lent GPU).

Only torch, numpy and wavegen.{nn,kernels,models.wavenet} are imported, so the file runs on
a bare GPU machine too.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from wavegen import kernels
from wavegen.errors import WavegenError
from wavegen.kernels import build, cuda_emulation, layout, reference
from wavegen.models.wavenet import WaveNet, WaveNetConfig

from kernel_inputs import assert_faithful, assert_statistics_match, logit_limit, reference_on_stream, step_inputs

CSRC = build.CSRC


def nvcc_path():
    home = build.find_cuda_home()
    if home and (Path(home) / "bin" / "nvcc").exists():
        return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield


def make_model(head="categorical", kernel_size=2, conditioned=False, layers=10, cycle=10, R=8, G=12, S=10,
               classes=16, seed=0, scale=0.3):
    cfg = WaveNetConfig(layers=layers, dilation_cycle=cycle, kernel_size=kernel_size, residual_channels=R,
                        gate_channels=G, skip_channels=S, head=head, classes=classes, mixtures=3,
                        local_channels=5 if conditioned else 0, local_hop=7, local_hidden=6,
                        global_classes=4 if conditioned else 0)
    model = WaveNet(cfg)
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def check_on_stream(w, inputs, tokens, logits, queues_after, temperature=1.0, weights_dtype=None, forced=False):
    """The reference teacher-forced on the kernel's tokens: logits, draws (unless the kernel was
    forced, and so drew nothing) and final queues agree."""
    queues, t0, next_input, bias, frame_index, uniforms = inputs[:6]
    ref_logits, q_ref = reference_on_stream(w, queues, t0, next_input, bias, frame_index, uniforms, tokens.cpu(),
                                            temperature)
    if forced:
        assert (logits.cpu() - ref_logits).abs().max().item() <= logit_limit(ref_logits, weights_dtype)
    else:
        assert_faithful(w, tokens, logits, ref_logits, uniforms, temperature, weights_dtype)
    # Queues hold activations: float32 rounding, or the weight storage's relative error.
    queue_limit = 1e-5 if weights_dtype in (None, torch.float32) else logit_limit(q_ref, weights_dtype)
    assert (q_ref - queues_after.cpu()).abs().max().item() <= queue_limit
    return ref_logits


# ----------------------------------------------------------------------------- nvcc, here


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc not found")
def test_cuda_sources_compile_with_nvcc():
    """Both .cu files compile for Hopper (sm_90 machine code) and as generic compute_80 PTX.

    The .cu files include no torch headers, so this takes tens of seconds, not minutes; ptxas
    runs at -O1 here (the JIT build uses full optimisation). The torch glue
    (cuda_bindings.cpp) is compiled by the slow test below.
    """
    nvcc = nvcc_path()
    sm90 = ["-gencode=arch=compute_90,code=sm_90", "-Xptxas", "-O1"]
    ptx80 = ["-gencode=arch=compute_80,code=compute_80"]
    with tempfile.TemporaryDirectory() as out:
        jobs = [("wavenet_cuda.cu", sm90), ("wavenet_cuda.cu", ptx80), ("vocoder_cuda.cu", sm90 + ptx80)]
        running = []
        for index, (source, target) in enumerate(jobs):
            command = [nvcc, "-c", "-std=c++17", "-O3", f"-I{CSRC}", *target, str(CSRC / source),
                       "-o", os.path.join(out, f"{index}.o")]
            running.append((command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True)))
        for command, job in running:
            output, _ = job.communicate(timeout=900)
            assert job.returncode == 0, f"{' '.join(command)}\n{output}"
            assert "warning" not in output.lower(), output


@pytest.mark.slow
@pytest.mark.skipif(nvcc_path() is None, reason="nvcc not found")
def test_cuda_extension_builds_and_registers(tmp_path, monkeypatch):
    """The whole CUDA extension (torch glue included) compiles, links and registers its ops."""
    monkeypatch.setenv("WAVEGEN_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "_results", {})
    result = build.load("cuda", warn=False)
    assert result.ok, result.error
    assert torch._C._dispatch_has_kernel_for_dispatch_key("wavegen::wavenet_generate", "CUDA")


# ----------------------------------------------------------------------------- the kernel's code on the CPU


needs_gxx = pytest.mark.skipif(not cuda_emulation.available(), reason="g++ not found")


@needs_gxx
@pytest.mark.parametrize("head,kernel_size,batch,conditioned,cluster,streams,R,temperature", [
    ("categorical", 2, 1, True, 1, 0, 8, 1.0),     # one CTA, dilations to 512
    ("mol", 3, 3, True, 2, 2, 8, 1.0),            # a cluster of 2, two streams per cluster
    ("categorical", 3, 2, False, 4, 1, 6, 0.0),   # R not a multiple of 4 (scalar queue copies), greedy
])
def test_emulated_cuda_kernel_matches_reference(head, kernel_size, batch, conditioned, cluster, streams, R,
                                                temperature):
    model = make_model(head, kernel_size, conditioned, R=R)
    inputs = step_inputs(model, batch, 12, conditioned)  # the emulation runs ~1 ms per emulated barrier
    w = model.pack()
    q_emu = inputs[0].clone()
    tokens, logits, plan = cuda_emulation.wavenet_generate(w, q_emu, *inputs[1:], None, temperature, True,
                                                           cluster=cluster, streams=streams, threads=64)
    assert plan["cluster"] == cluster
    check_on_stream(w, inputs, tokens, logits, q_emu, temperature)


@needs_gxx
def test_emulated_kernel_with_weights_in_l2_and_forced_tokens(monkeypatch):
    """Shared memory too small for the head and some layers: those are read from global memory."""
    model = make_model("categorical", 2, True, layers=6, cycle=6)
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 3, 16, True)
    forced = torch.randint(0, 16, (3, 16), generator=torch.Generator().manual_seed(4))
    w = model.pack()
    args = (w, queues, t0, next_input, bias, frame_index, uniforms, forced, 1.0, True)
    for smem in range(2000, 40000, 250):  # the smallest pretend GPU that can run it
        monkeypatch.setenv("WAVEGEN_EMU_SMEM", str(smem))
        try:
            plan = cuda_emulation.wavenet_generate(*args, cluster=2, streams=2, threads=64, plan_only=True)[2]
        except WavegenError:
            continue
        if plan["head_resident"] == 0 and plan["resident_layers"] > 0:
            break
    assert 0 < plan["resident_layers"] < 6 and plan["head_resident"] == 0
    q_emu = queues.clone()
    tokens, logits, ran = cuda_emulation.wavenet_generate(w, q_emu, *args[2:], cluster=2, streams=2, threads=64)
    assert ran == plan
    assert torch.equal(tokens, forced)
    check_on_stream(w, (queues, t0, next_input, bias, frame_index, uniforms), tokens, logits, q_emu, forced=True)


@needs_gxx
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_emulated_reduced_precision_equals_the_cpu_kernel(dtype):
    """Same stored weights, float32 arithmetic: teacher-forced on the CPU kernel's stream, the
    CUDA kernel's logits agree with the CPU kernel's to float32 rounding (1e-4)."""
    if not build.load("cpu").ok:
        pytest.skip("CPU kernels unavailable")
    model = make_model("categorical", 2, False, layers=5, cycle=5)
    queues, t0, next_input, bias, frame_index, uniforms = step_inputs(model, 2, 12, False)
    w = model.pack()
    q_cpu, q_emu = queues.clone(), queues.clone()
    cpu_tokens, cpu_logits = kernels.wavenet_generate(w, q_cpu, t0, next_input, bias, frame_index, uniforms, None,
                                                      1.0, True, backend="cpu", weights_dtype=dtype)
    tokens, logits, _ = cuda_emulation.wavenet_generate(w, q_emu, t0, next_input, bias, frame_index, uniforms,
                                                        cpu_tokens, 1.0, True, weights_dtype=dtype, cluster=2,
                                                        threads=64)
    assert (logits - cpu_logits).abs().max().item() <= 1e-4
    assert (q_emu - q_cpu).abs().max().item() <= 1e-5


@needs_gxx
def test_planner_choices_for_the_base_model(monkeypatch):
    """On an H100/H200-sized part: batch 1 spreads over a 16-CTA cluster (fp16 weights fully on
    chip; fp32 nearly), batch 256 uses 32 clusters of 4 with 8 streams each."""
    model = WaveNet(WaveNetConfig()).eval()
    w = model.pack()

    def plan(batch, dtype):
        inputs = step_inputs(model, batch, 1, False)
        return cuda_emulation.wavenet_generate(w, *inputs, weights_dtype=dtype, threads=256, plan_only=True)[2]

    one = plan(1, torch.float16)
    assert (one["cluster"], one["streams"], one["resident_layers"], one["head_resident"]) == (16, 1, 20, 1)
    one32 = plan(1, torch.float32)
    assert one32["cluster"] == 16 and one32["resident_layers"] >= 16
    assert one32["smem_bytes"] <= 232448
    many = plan(256, torch.float32)
    assert (many["cluster"], many["streams"]) == (4, 8)


@needs_gxx
@pytest.mark.parametrize("force,env,expected", [
    (dict(streams=65, threads=64), {}, "65 streams per cluster with 64 threads per block"),
    (dict(threads=0), {"WAVEGEN_CUDA_THREADS": "48"}, "48 threads per block; use a multiple of 32"),
    (dict(threads=1024), {}, "1024 threads per block; use a multiple of 32 from 32 to 512"),
    (dict(cluster=3), {}, "a cluster of 3 blocks; use 1, 2, 4, 8 or 16"),
    (dict(threads=0), {"WAVEGEN_CUDA_STREAMS": "4x"}, "WAVEGEN_CUDA_STREAMS=4x is not a positive integer"),
    (dict(streams=200, threads=256), {"WAVEGEN_EMU_SMEM": "60000"}, "do not fit into this GPU's 60000 bytes"),
])
def test_planner_refuses_a_forced_plan_it_cannot_run(monkeypatch, force, env, expected):
    """A forced launch shape the kernel cannot run is refused in one line, never adjusted: with
    more streams per cluster than threads, streams past the last thread would get no tokens."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = make_model("categorical", 2, False, layers=4, cycle=4)
    inputs = step_inputs(model, 300, 2, False)
    with pytest.raises(WavegenError) as caught:
        cuda_emulation.wavenet_generate(model.pack(), *inputs, plan_only=True, **force)
    message = str(caught.value)
    assert expected in message and message.startswith("cannot plan the launch:") and "\n" not in message


@needs_gxx
def test_planner_keeps_streams_within_threads_and_caches_plans(monkeypatch):
    """Unforced, a large batch of a small model gets at most one stream per thread; a repeated
    call with the same (device, shape, dtype) reuses the plan without asking the device again."""
    model = make_model("categorical", 2, False, layers=4, cycle=4)
    w = model.pack()
    inputs = step_inputs(model, 20000, 1, False)  # one wave would need 152 streams per cluster
    plan = cuda_emulation.wavenet_generate(w, *inputs, threads=64, plan_only=True)[2]
    assert plan["streams"] <= plan["threads"] == 64

    monkeypatch.setenv("WAVEGEN_CUDA_THREADS", "64")
    small = step_inputs(model, 3, 1, False)
    before = cuda_emulation.device_queries()
    first = cuda_emulation.wavenet_generate(w, *small, plan_only=True, cached=True)[2]
    asked = cuda_emulation.device_queries()
    assert asked > before, "the first plan of a shape queries the device"
    assert cuda_emulation.wavenet_generate(w, *small, plan_only=True, cached=True)[2] == first
    assert cuda_emulation.device_queries() == asked, "a cached plan asks nothing"
    cuda_emulation.wavenet_generate(w, *small, weights_dtype=torch.float16, plan_only=True, cached=True)
    assert cuda_emulation.device_queries() > asked, "another weight dtype is another plan"
    monkeypatch.setenv("WAVEGEN_CUDA_THREADS", "7")
    with pytest.raises(WavegenError, match="7 threads per block"):  # refusals are not cached
        cuda_emulation.wavenet_generate(w, *small, plan_only=True, cached=True)


# ----------------------------------------------------------------------------- on a GPU

cuda = pytest.mark.cuda
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def on_gpu(*tensors):
    return [t.cuda() if isinstance(t, torch.Tensor) else t for t in tensors]


def run_cuda(model, inputs, forced=None, temperature=1.0, weights_dtype=None):
    """The CUDA kernel on ``inputs`` (CPU tensors): (packed weights, tokens, logits, queues after), on the CPU."""
    queues, t0, next_input, bias, frame_index, uniforms = inputs
    gpu_model = model.cuda()
    q_gpu, next_gpu, bias_gpu, frames_gpu, uniforms_gpu = on_gpu(queues.clone(), next_input, bias, frame_index,
                                                                 uniforms)
    forced_gpu = None if forced is None else forced.cuda()
    tokens, logits = kernels.wavenet_generate(gpu_model.pack(), q_gpu, t0, next_gpu, bias_gpu, frames_gpu,
                                              uniforms_gpu, forced_gpu, temperature, True, backend="cuda",
                                              weights_dtype=weights_dtype)
    model.cpu()
    return model.pack(), tokens.cpu(), logits.cpu(), q_gpu.cpu()


@cuda
@needs_gpu
@pytest.mark.parametrize("conditioned", [False, True], ids=["plain", "conditioned"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("head", ["categorical", "mol"])
def test_gpu_step_matches_reference(head, kernel_size, batch, conditioned):
    model = make_model(head, kernel_size, conditioned)
    inputs = step_inputs(model, batch, 64, conditioned)
    w, tokens, logits, q_gpu = run_cuda(model, inputs)
    check_on_stream(w, inputs, tokens, logits, q_gpu)


def base_shaped_model(kernel_size=2):
    """The `base` shape (R=64, G=128, S=256, 256 classes, 20 layers), scaled-down random weights."""
    return make_model("categorical", kernel_size, True, layers=20, cycle=10, R=64, G=128, S=256, classes=256,
                      scale=0.08)


@cuda
@needs_gpu
@pytest.mark.parametrize("cluster", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("batch", [1, 7])
def test_gpu_base_model_every_cluster_size(cluster, batch, monkeypatch):
    """Each cluster size forced, 200 free-running steps: the reference teacher-forced on the
    GPU's stream agrees step by step, and the stream's NLL and histogram are the reference's."""
    monkeypatch.setenv("WAVEGEN_CUDA_CLUSTER", str(cluster))
    model = base_shaped_model()
    inputs = step_inputs(model, batch, 200, True)
    w, tokens, logits, q_gpu = run_cuda(model, inputs)
    ref_logits = check_on_stream(w, inputs, tokens, logits, q_gpu)
    assert_statistics_match(tokens, ref_logits)


@cuda
@needs_gpu
def test_gpu_large_batch_plan():
    model = base_shaped_model(kernel_size=3)
    inputs = step_inputs(model, 256, 20, True)
    w, tokens, logits, q_gpu = run_cuda(model, inputs)
    ref_logits = check_on_stream(w, inputs, tokens, logits, q_gpu)
    assert_statistics_match(tokens, ref_logits)


@cuda
@needs_gpu
@pytest.mark.parametrize("head", ["categorical", "mol"])
def test_gpu_2000_samples_through_the_driver(head):
    """The chunked sampler on the GPU: every draw the reference's on the GPU's own stream."""
    from wavegen.generate.sampling import generate_tokens

    model = make_model(head, 2, True, layers=10, cycle=10)
    B, n, chunk = 7, 2000, 700
    g = torch.Generator().manual_seed(3)
    local = torch.randn(B, 5, math.ceil(n / 7), generator=g)
    ids = torch.randint(0, 4, (B,), generator=g)
    gpu_model = model.cuda()
    tokens = torch.cat(list(generate_tokens(gpu_model, n, batch_size=B, local=local.cuda(), global_ids=ids.cuda(),
                                            chunk_size=chunk, generator=torch.Generator().manual_seed(11),
                                            backend="cuda")), 1).cpu()
    model.cpu()
    g = torch.Generator().manual_seed(11)
    uniforms = torch.cat([torch.rand(min(chunk, n - t), B, 2, generator=g) for t in range(0, n, chunk)])
    state = model.init_state(B)
    ref_logits, _ = reference_on_stream(model.pack(), state.queues, 0, state.next_input,
                                        model.frame_bias(B, local, ids), torch.arange(n) // 7, uniforms, tokens)
    assert_faithful(model.pack(), tokens, None, ref_logits, uniforms)
    if head == "categorical":
        assert_statistics_match(tokens, ref_logits)


@cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gpu_reduced_precision(dtype):
    """16-bit weight storage: logits within 1% / 5% of the logits' spread, draws the reference's
    on the GPU's stream except at most 1% / 3% boundary flips (the CPU kernel's stated tolerance)."""
    model = make_model("categorical", 2, True)
    inputs = step_inputs(model, 4, 100, True)
    w, tokens, logits, q_gpu = run_cuda(model, inputs, weights_dtype=dtype)
    ref_logits = check_on_stream(w, inputs, tokens, logits, q_gpu, weights_dtype=dtype)
    assert (logits - ref_logits).abs().max().item() > 0


@cuda
@needs_gpu
@pytest.mark.parametrize("head,skip,classes", [("categorical", 16, 16), ("categorical", 10, 16), ("mol", 40, 3)],
                         ids=["square", "skip-narrower", "skip-wider"])
def test_gpu_wavenet_op_passes_opcheck(head, skip, classes):
    """The fake (meta) implementation against the CUDA op, square and non-square heads."""
    cfg = WaveNetConfig(layers=3, dilation_cycle=3, kernel_size=2, residual_channels=8, gate_channels=12,
                        skip_channels=skip, head=head, classes=classes, mixtures=classes)
    model = WaveNet(cfg).eval()
    inputs = on_gpu(*step_inputs(model, 2, 5, False))
    kw = layout.layout_cache.get(model.cuda().pack(), torch.float32, torch.device("cuda"))
    results = torch.library.opcheck(torch.ops.wavegen.wavenet_generate.default,
                                    (*inputs, None, 1.0, True, *kw.op_args()))
    assert set(results.values()) == {"SUCCESS"}, results


@cuda
@needs_gpu
def test_gpu_forced_impossible_plan_is_one_line(monkeypatch):
    """Through the real binding: more streams per cluster than threads is refused, not run."""
    monkeypatch.setenv("WAVEGEN_CUDA_THREADS", "64")
    monkeypatch.setenv("WAVEGEN_CUDA_STREAMS", "65")
    model = make_model()
    inputs = on_gpu(*step_inputs(model, 70, 2, False))
    with pytest.raises(WavegenError, match="65 streams per cluster with 64 threads per block"):
        kernels.wavenet_generate(model.cuda().pack(), *inputs, backend="cuda")
    model.cpu()


# ----------------------------------------------------------------------------- training precision per family


def wavenet_task(head):
    """A WaveNet training task (the `debug`-sized channels) built without Hydra."""
    from types import SimpleNamespace

    from wavegen.tasks.wavenet import WaveNetTask

    model = dict(layers=6, dilation_cycle=6, residual_channels=32, gate_channels=64, skip_channels=64, head=head,
                 classes=256, mixtures=10)
    return WaveNetTask(SimpleNamespace(model=model, audio=SimpleNamespace(sample_rate=16000), train={}))


def vocoder_task():
    from wavegen.audio.dsp import AudioConfig
    from wavegen.models.vocoder import VocoderConfig
    from wavegen.tasks.vocoder import VocoderTask

    return VocoderTask(VocoderConfig(), AudioConfig())  # the base vocoder


@pytest.mark.parametrize("family,allowed", [("categorical", torch.bfloat16), ("mol", None), ("vocoder", None)])
def test_training_autocast_per_family(family, allowed):
    """bf16 autocast only where it does not decide quality, only on CUDA, never with amp=off."""
    from wavegen.train.loop import autocast_dtype

    task = vocoder_task() if family == "vocoder" else wavenet_task(family)
    assert task.autocast_dtype == allowed
    assert autocast_dtype(task, "auto", "cuda") == allowed
    assert autocast_dtype(task, "off", "cuda") is None
    assert autocast_dtype(task, "auto", "cpu") is None


# What "float32" means for the families trained without autocast: a step under the training
# loop's precision on CUDA equals a plain float32 step (TF32 off in both) to this relative error.
FP32_TOLERANCE = 1e-5


def _precision_outputs(family):
    """(function computing per-element outputs Tensor on the GPU, task): the vocoder's predicted
    noise for a noisy clip, or the per-sample NLL of a mixture-of-logistics WaveNet."""
    from wavegen.diffusion.training import aligned_pair

    torch.manual_seed(0)
    task = vocoder_task() if family == "vocoder" else wavenet_task("mol")
    model = task.model.cuda().train()
    g = torch.Generator().manual_seed(1)
    audio = (0.3 * torch.randn(2, 4096, generator=g)).clamp(-1, 1).cuda()
    if family == "vocoder":
        clean, log_mel = aligned_pair(audio, task.audio)
        level = torch.rand(2, generator=g).cuda()
        noisy = level[:, None] * clean + (1 - level[:, None] ** 2).sqrt() * torch.randn(clean.shape, generator=g).cuda()
        return (lambda: model(noisy, log_mel, level).float()), task
    core = model
    tokens = core.head.encode(audio)
    from wavegen.tasks.wavenet import shift_right

    inputs = shift_right(tokens, core.head.silence(2, audio.device))
    return (lambda: core.head.nll(model(inputs, None, None).float(), tokens).float()), task


@cuda
@needs_gpu
@pytest.mark.parametrize("family", ["vocoder", "mol"])
def test_gpu_training_precision_per_family(family):
    """A vocoder step and a mixture-of-logistics likelihood under the training loop's precision
    on CUDA match float32 within FP32_TOLERANCE (relative to the outputs' spread), where bf16
    autocast - what the loop used for every family before - misses it by far."""
    from wavegen.train.loop import autocast_dtype

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 means float32 here
    try:
        run, task = _precision_outputs(family)
        dtype = autocast_dtype(task, "auto", "cuda")
        with torch.autocast("cuda", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loop = run()
        exact = run()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = run()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    spread = exact.std().item()
    loop_error = (loop - exact).abs().max().item() / spread
    bf16_error = (bf16 - exact).abs().max().item() / spread
    print(f"{family}: loop precision {loop_error:.2e}, bf16 autocast {bf16_error:.2e} of the spread")
    assert loop_error <= FP32_TOLERANCE
    assert bf16_error > 10 * FP32_TOLERANCE


@cuda
@needs_gpu
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_gpu_vocoder_ops(dtype, tolerance):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 500, generator=g)
    scale, shift = torch.randn(2, 3, 1, generator=g), torch.randn(2, 3, 500, generator=g)
    out = kernels.film_leaky_relu(*(t.to(dtype).cuda() for t in (x, scale, shift)), 0.2, backend="cuda")
    expected = reference.film_leaky_relu(*(t.to(dtype).float() for t in (x, scale, shift)), 0.2)
    assert (out.float().cpu() - expected).abs().max().item() <= tolerance * expected.abs().max().item()
    y, eps, noise = (torch.randn(3, 4000, generator=g) for _ in range(3))
    out = kernels.diffusion_update(*(t.to(dtype).cuda() for t in (y, eps, noise)), 1.2, 0.3, 0.4, True,
                                   backend="cuda")
    expected = reference.diffusion_update(*(t.to(dtype).float() for t in (y, eps, noise)), 1.2, 0.3, 0.4, True)
    assert (out.float().cpu() - expected).abs().max().item() <= tolerance * 2
