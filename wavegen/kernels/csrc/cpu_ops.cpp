// torch glue of the CPU ops: argument checks, output allocation, threading, and the
// TORCH_LIBRARY_IMPL registration (schemas: wavegen/kernels/ops.py). The maths is in
// wavenet_cpu.cpp and vocoder_cpu.cpp.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "cpu_kernels.h"
#include "wavenet_checks.h"

namespace wavegen::cpu {
namespace {

Storage storage_of(at::ScalarType dtype, const char* op) {
  switch (dtype) {
    case at::kFloat: return Storage::kFloat32;
    case at::kHalf: return Storage::kFloat16;
    case at::kBFloat16: return Storage::kBFloat16;
    default: TORCH_CHECK(false, op, ": expected float32, float16 or bfloat16, got ", dtype);
  }
}

std::tuple<at::Tensor, at::Tensor> wavenet_generate_cpu(
    at::Tensor& queues, int64_t t0, const at::Tensor& next_input, const at::Tensor& bias,
    const at::Tensor& frame_index, const at::Tensor& uniforms, const std::optional<at::Tensor>& forced,
    double temperature, bool return_logits, c10::IntArrayRef dilations, int64_t head_kind, int64_t classes,
    double log_scale_min, const at::Tensor& embed, const at::Tensor& conv, const at::Tensor& proj,
    const at::Tensor& res_b, const at::Tensor& skip_b, const at::Tensor& out1, const at::Tensor& out1_b,
    const at::Tensor& out2, const at::Tensor& out2_b) {
  const Shape s = check_inputs(queues, next_input, bias, frame_index, uniforms, forced, dilations, head_kind,
                               classes, embed, conv, proj, res_b, skip_b, out1, out1_b, out2, out2_b);
  TORCH_CHECK(queues.device().is_cpu(), "wavegen::wavenet_generate (CPU): tensors must be on the CPU");
  Outputs out = make_outputs(s, queues, frame_index.size(0), return_logits);
  const at::Tensor frames = frame_index.contiguous();
  const at::Tensor forced_c = forced.has_value() ? forced->contiguous() : at::Tensor();
  const Steps st = make_steps(s, queues, t0, next_input.contiguous(), bias, frames, uniforms, forced_c,
                              temperature, log_scale_min, out);
  check_host_ranges(s, st);
  if (st.n == 0 || st.batch == 0) return {out.tokens, out.logits};

  const WaveNetWeights w{storage_of(conv.scalar_type(), "wavegen::wavenet_generate"),
                         embed.data_ptr<float>(), conv.data_ptr(), proj.data_ptr(), res_b.data_ptr<float>(),
                         skip_b.data_ptr<float>(), out1.data_ptr(), out1_b.data_ptr<float>(), out2.data_ptr(),
                         out2_b.data_ptr<float>()};
  // Every group re-reads all weights each step, so use as few groups as there are threads:
  // parallel_for hands each thread one contiguous chunk of streams.
  at::parallel_for(0, st.batch, 1, [&](int64_t b0, int64_t b1) { wavenet_generate_streams(s, w, st, b0, b1); });
  return {out.tokens, out.logits};
}

at::Tensor film_leaky_relu_cpu(const at::Tensor& x_in, const at::Tensor& scale, const at::Tensor& shift,
                               double negative_slope) {
  TORCH_CHECK(x_in.dim() == 3, "wavegen::film_leaky_relu: x must be Tensor[B, C, T], got ", x_in.sizes());
  TORCH_CHECK(scale.sizes() == x_in.sizes() && shift.sizes() == x_in.sizes(),
              "wavegen::film_leaky_relu: scale and shift must be expanded to x's shape ", x_in.sizes());
  TORCH_CHECK(scale.scalar_type() == x_in.scalar_type() && shift.scalar_type() == x_in.scalar_type(),
              "wavegen::film_leaky_relu: x, scale and shift must share a dtype");
  TORCH_CHECK(x_in.device().is_cpu() && scale.device().is_cpu() && shift.device().is_cpu(),
              "wavegen::film_leaky_relu (CPU): every tensor must be on the CPU");
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  FilmArgs a{storage_of(x.scalar_type(), "wavegen::film_leaky_relu"), x.data_ptr(), scale.data_ptr(),
             shift.data_ptr(), out.data_ptr(), x.size(1), x.size(2),
             {scale.stride(0), scale.stride(1), scale.stride(2)},
             {shift.stride(0), shift.stride(1), shift.stride(2)}, static_cast<float>(negative_slope)};
  const int64_t rows = x.size(0) * x.size(1);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(x.size(2), 1));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) { film_leaky_relu_rows(a, r0, r1); });
  return out;
}

at::Tensor diffusion_update_cpu(const at::Tensor& y_in, const at::Tensor& eps_in,
                                const std::optional<at::Tensor>& noise_in, double c1, double c2, double sigma,
                                bool clamp) {
  TORCH_CHECK(eps_in.sizes() == y_in.sizes() && eps_in.scalar_type() == y_in.scalar_type(),
              "wavegen::diffusion_update: y and eps must share shape and dtype");
  const bool use_noise = noise_in.has_value() && noise_in->defined() && sigma > 0.0;
  if (use_noise)
    TORCH_CHECK(noise_in->sizes() == y_in.sizes() && noise_in->scalar_type() == y_in.scalar_type(),
                "wavegen::diffusion_update: noise must match y's shape and dtype");
  TORCH_CHECK(y_in.device().is_cpu() && eps_in.device().is_cpu() && (!use_noise || noise_in->device().is_cpu()),
              "wavegen::diffusion_update (CPU): every tensor must be on the CPU");
  const at::Tensor y = y_in.contiguous(), eps = eps_in.contiguous();
  const at::Tensor noise = use_noise ? noise_in->contiguous() : at::Tensor();
  at::Tensor out = at::empty(y.sizes(), y.options());
  DiffusionArgs a{storage_of(y.scalar_type(), "wavegen::diffusion_update"), y.data_ptr(), eps.data_ptr(),
                  use_noise ? noise.data_ptr() : nullptr, out.data_ptr(), static_cast<float>(c1),
                  static_cast<float>(c2), static_cast<float>(sigma), clamp};
  at::parallel_for(0, y.numel(), 32768, [&](int64_t i0, int64_t i1) { diffusion_update_range(a, i0, i1); });
  return out;
}

}  // namespace
}  // namespace wavegen::cpu

TORCH_LIBRARY_IMPL(wavegen, CPU, m) {
  m.impl("wavenet_generate", &wavegen::cpu::wavenet_generate_cpu);
  m.impl("film_leaky_relu", &wavegen::cpu::film_leaky_relu_cpu);
  m.impl("diffusion_update", &wavegen::cpu::diffusion_update_cpu);
}
