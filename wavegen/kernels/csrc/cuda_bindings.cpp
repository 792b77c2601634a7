// torch glue of the CUDA ops: argument checks, output allocation, the current stream, and
// the TORCH_LIBRARY_IMPL registration (schemas: wavegen/kernels/ops.py). The kernels are in
// wavenet_cuda.cu and vocoder_cuda.cu, behind the plain interface of cuda_launch.h.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>

#include "cuda_launch.h"
#include "wavenet_checks.h"

namespace wavegen::cuda {
namespace {

int storage_of(at::ScalarType dtype, const char* op) {
  switch (dtype) {
    case at::kFloat: return kFloat32;
    case at::kHalf: return kFloat16;
    case at::kBFloat16: return kBFloat16;
    default: TORCH_CHECK(false, op, ": expected float32, float16 or bfloat16, got ", dtype);
  }
}

void check(const char* error, const char* op) { TORCH_CHECK(error == nullptr, op, ": ", error ? error : ""); }

std::tuple<at::Tensor, at::Tensor> wavenet_generate_cuda(
    at::Tensor& queues, int64_t t0, const at::Tensor& next_input, const at::Tensor& bias,
    const at::Tensor& frame_index, const at::Tensor& uniforms, const std::optional<at::Tensor>& forced,
    double temperature, bool return_logits, c10::IntArrayRef dilations, int64_t head_kind, int64_t classes,
    double log_scale_min, const at::Tensor& embed, const at::Tensor& conv, const at::Tensor& proj,
    const at::Tensor& res_b, const at::Tensor& skip_b, const at::Tensor& out1, const at::Tensor& out1_b,
    const at::Tensor& out2, const at::Tensor& out2_b) {
  const char* op = "wavegen::wavenet_generate (CUDA)";
  const Shape s = check_inputs(queues, next_input, bias, frame_index, uniforms, forced, dilations, head_kind,
                               classes, embed, conv, proj, res_b, skip_b, out1, out1_b, out2, out2_b);
  TORCH_CHECK(queues.is_cuda(), op, ": tensors must be on a CUDA device");
  TORCH_CHECK(s.L <= kMaxLayers, op, ": at most ", kMaxLayers, " layers");
  TORCH_CHECK(s.queue_rows < (int64_t{1} << 31), op, ": queues too long");
  const c10::DeviceGuard guard(queues.device());
  Outputs out = make_outputs(s, queues, frame_index.size(0), return_logits);
  const at::Tensor frames = frame_index.contiguous();
  const at::Tensor next = next_input.contiguous();
  const at::Tensor forced_c = forced.has_value() ? forced->contiguous() : at::Tensor();
  Steps st = make_steps(s, queues, t0, next, bias, frames, uniforms, forced_c, temperature, log_scale_min, out);
  if (st.n == 0 || st.batch == 0) return {out.tokens, out.logits};

  WaveNetParams p{};
  p.B = static_cast<int>(st.batch);
  p.L = s.L;
  p.k = s.k;
  p.R = s.R;
  p.G = s.G;
  p.S = s.S;
  p.A = s.A;
  p.Gp = s.Gp;
  p.RSp = s.RSp;
  p.Sp = s.Sp;
  p.Ap = s.Ap;
  p.head_kind = s.head_kind;
  p.classes = s.classes;
  p.storage = storage_of(conv.scalar_type(), op);
  p.n = st.n;
  p.t0 = t0;
  p.queue_rows = s.queue_rows;
  p.frames = st.frames;
  p.bias_sb = st.bias_stride_b;
  p.bias_sf = st.bias_stride_f;
  p.temperature = st.temperature;
  p.log_scale_min = st.log_scale_min;
  const std::vector<int64_t> offsets = queue_offsets(s);
  for (int l = 0; l < s.L; ++l) {
    p.dilations[l] = static_cast<int>(s.dilations[l]);
    p.queue_offsets[l] = static_cast<int>(offsets[l]);
  }
  p.queues = st.queues;
  p.bias = st.bias;
  p.frame_index = st.frame_index;
  p.uniforms = st.uniforms;
  p.next_long = st.next_long;
  p.next_float = st.next_float;
  p.forced_long = st.forced_long;
  p.forced_float = st.forced_float;
  p.tokens_long = st.tokens_long;
  p.tokens_float = st.tokens_float;
  p.logits = st.logits_out;
  p.embed = embed.data_ptr<float>();
  p.conv = conv.data_ptr();
  p.proj = proj.data_ptr();
  p.res_b = res_b.data_ptr<float>();
  p.skip_b = skip_b.data_ptr<float>();
  p.out1 = out1.data_ptr();
  p.out1_b = out1_b.data_ptr<float>();
  p.out2 = out2.data_ptr();
  p.out2_b = out2_b.data_ptr<float>();

  LaunchPlan plan;
  check(plan_wavenet_cached(p, &plan), op);
  check(launch_wavenet(p, plan, c10::cuda::getCurrentCUDAStream().stream()), op);
  return {out.tokens, out.logits};
}

at::Tensor film_leaky_relu_cuda(const at::Tensor& x_in, const at::Tensor& scale, const at::Tensor& shift,
                                double negative_slope) {
  const char* op = "wavegen::film_leaky_relu (CUDA)";
  TORCH_CHECK(x_in.dim() == 3, op, ": x must be Tensor[B, C, T], got ", x_in.sizes());
  TORCH_CHECK(scale.sizes() == x_in.sizes() && shift.sizes() == x_in.sizes(), op,
              ": scale and shift must be expanded to x's shape ", x_in.sizes());
  TORCH_CHECK(scale.scalar_type() == x_in.scalar_type() && shift.scalar_type() == x_in.scalar_type(), op,
              ": x, scale and shift must share a dtype");
  TORCH_CHECK(x_in.is_cuda() && scale.device() == x_in.device() && shift.device() == x_in.device(), op,
              ": tensors must be on one CUDA device");
  const c10::DeviceGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  FilmParams p{storage_of(x.scalar_type(), op), x.data_ptr(), scale.data_ptr(), shift.data_ptr(), out.data_ptr(),
               x.size(0), x.size(1), x.size(2), {scale.stride(0), scale.stride(1), scale.stride(2)},
               {shift.stride(0), shift.stride(1), shift.stride(2)}, static_cast<float>(negative_slope)};
  check(launch_film_leaky_relu(p, c10::cuda::getCurrentCUDAStream().stream()), op);
  return out;
}

at::Tensor diffusion_update_cuda(const at::Tensor& y_in, const at::Tensor& eps_in,
                                 const std::optional<at::Tensor>& noise_in, double c1, double c2, double sigma,
                                 bool clamp) {
  const char* op = "wavegen::diffusion_update (CUDA)";
  TORCH_CHECK(eps_in.sizes() == y_in.sizes() && eps_in.scalar_type() == y_in.scalar_type(), op,
              ": y and eps must share shape and dtype");
  const bool use_noise = noise_in.has_value() && noise_in->defined() && sigma > 0.0;
  if (use_noise)
    TORCH_CHECK(noise_in->sizes() == y_in.sizes() && noise_in->scalar_type() == y_in.scalar_type(), op,
                ": noise must match y's shape and dtype");
  TORCH_CHECK(y_in.is_cuda() && eps_in.device() == y_in.device() && (!use_noise || noise_in->device() == y_in.device()),
              op, ": tensors must be on one CUDA device");
  const c10::DeviceGuard guard(y_in.device());
  const at::Tensor y = y_in.contiguous(), eps = eps_in.contiguous();
  const at::Tensor noise = use_noise ? noise_in->contiguous() : at::Tensor();
  at::Tensor out = at::empty(y.sizes(), y.options());
  DiffusionParams p{storage_of(y.scalar_type(), op), y.data_ptr(), eps.data_ptr(),
                    use_noise ? noise.data_ptr() : nullptr, out.data_ptr(), y.numel(), static_cast<float>(c1),
                    static_cast<float>(c2), static_cast<float>(sigma), clamp ? 1 : 0};
  check(launch_diffusion_update(p, c10::cuda::getCurrentCUDAStream().stream()), op);
  return out;
}

}  // namespace
}  // namespace wavegen::cuda

TORCH_LIBRARY_IMPL(wavegen, CUDA, m) {
  m.impl("wavenet_generate", &wavegen::cuda::wavenet_generate_cuda);
  m.impl("film_leaky_relu", &wavegen::cuda::film_leaky_relu_cuda);
  m.impl("diffusion_update", &wavegen::cuda::diffusion_update_cuda);
}
