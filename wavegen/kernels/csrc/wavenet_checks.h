// Argument checking and output allocation shared by the CPU and CUDA bindings of
// wavegen::wavenet_generate (torch headers; host code only).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <optional>

#include "wavenet_problem.h"

namespace wavegen {

struct Outputs {
  at::Tensor tokens, logits;
};

inline void check_matrix(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape,
                         at::ScalarType dtype) {
  TORCH_CHECK(t.dim() == static_cast<int64_t>(shape.size()), "wavegen::wavenet_generate: ", name,
              " must have ", shape.size(), " dimensions, got ", t.sizes());
  int i = 0;
  for (int64_t size : shape) {
    TORCH_CHECK(t.size(i) == size, "wavegen::wavenet_generate: ", name, " has shape ", t.sizes(),
                ", dimension ", i, " should be ", size);
    ++i;
  }
  TORCH_CHECK(t.scalar_type() == dtype, "wavegen::wavenet_generate: ", name, " must be ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "wavegen::wavenet_generate: ", name, " must be contiguous");
}

inline Shape check_inputs(const at::Tensor& queues, const at::Tensor& next_input, const at::Tensor& bias,
                          const at::Tensor& frame_index, const at::Tensor& uniforms,
                          const std::optional<at::Tensor>& forced, c10::IntArrayRef dilations, int64_t head_kind,
                          int64_t classes, const at::Tensor& embed, const at::Tensor& conv, const at::Tensor& proj,
                          const at::Tensor& res_b, const at::Tensor& skip_b, const at::Tensor& out1,
                          const at::Tensor& out1_b, const at::Tensor& out2, const at::Tensor& out2_b) {
  TORCH_CHECK(head_kind == kHeadCategorical || head_kind == kHeadMixtureOfLogistics,
              "wavegen::wavenet_generate: unknown head kind ", head_kind);
  TORCH_CHECK(queues.dim() == 3 && bias.dim() == 4 && skip_b.dim() == 1 && out2_b.dim() == 1 && conv.dim() == 4,
              "wavegen::wavenet_generate: queues, bias, skip_b, out2_b or conv has the wrong number of dimensions");
  Shape s;
  s.head_kind = static_cast<int>(head_kind);
  s.classes = static_cast<int>(classes);
  s.L = static_cast<int>(dilations.size());
  s.R = static_cast<int>(queues.size(2));
  s.G = static_cast<int>(bias.size(3));
  s.S = static_cast<int>(skip_b.size(0));
  s.A = static_cast<int>(out2_b.size(0));
  TORCH_CHECK(s.L > 0 && s.R > 0 && s.G > 0 && s.S > 0 && s.A > 0, "wavegen::wavenet_generate: empty model");
  TORCH_CHECK(conv.size(2) % s.R == 0, "wavegen::wavenet_generate: conv inputs ", conv.size(2),
              " are not a multiple of the residual channels ", s.R);
  s.k = static_cast<int>(conv.size(2) / s.R);
  TORCH_CHECK(s.k >= 2, "wavegen::wavenet_generate: kernel size must be at least 2, got ", s.k);
  TORCH_CHECK(s.G % 2 == 0, "wavegen::wavenet_generate: gate channels must be even, got ", s.G);
  TORCH_CHECK(head_kind == kHeadCategorical ? s.A == classes : s.A == 3 * classes,
              "wavegen::wavenet_generate: head outputs ", s.A, " do not match ", classes, " classes/mixtures");
  s.Gp = padded(s.G);
  s.RSp = padded(s.R + s.S);
  s.Sp = padded(s.S);
  s.Ap = padded(s.A);
  s.dilations.assign(dilations.begin(), dilations.end());
  s.queue_rows = 0;
  for (int64_t d : s.dilations) {
    TORCH_CHECK(d >= 1, "wavegen::wavenet_generate: dilations must be positive, got ", d);
    s.queue_rows += (s.k - 1) * d;
  }
  const auto wdtype = conv.scalar_type();
  TORCH_CHECK(wdtype == at::kFloat || wdtype == at::kHalf || wdtype == at::kBFloat16,
              "wavegen::wavenet_generate: weights must be float32, float16 or bfloat16, got ", wdtype);
  check_matrix(embed, "embed", {head_kind == kHeadCategorical ? classes : 2, s.R}, at::kFloat);
  check_matrix(conv, "conv", {s.L, s.Gp / kPanel, s.k * s.R, kPanel}, wdtype);
  check_matrix(proj, "proj", {s.L, s.RSp / kPanel, s.G / 2, kPanel}, wdtype);
  check_matrix(res_b, "res_b", {s.L, s.R}, at::kFloat);
  check_matrix(skip_b, "skip_b", {s.S}, at::kFloat);
  check_matrix(out1, "out1", {s.Sp / kPanel, s.S, kPanel}, wdtype);
  check_matrix(out1_b, "out1_b", {s.S}, at::kFloat);
  check_matrix(out2, "out2", {s.Ap / kPanel, s.S, kPanel}, wdtype);
  check_matrix(out2_b, "out2_b", {s.A}, at::kFloat);

  const int64_t B = queues.size(0);
  TORCH_CHECK(queues.size(1) == s.queue_rows && queues.scalar_type() == at::kFloat && queues.is_contiguous(),
              "wavegen::wavenet_generate: queues must be a contiguous float32 Tensor[B, ", s.queue_rows, ", ",
              s.R, "], got ", queues.sizes(), " ", queues.scalar_type());
  TORCH_CHECK(frame_index.dim() == 1 && frame_index.scalar_type() == at::kLong,
              "wavegen::wavenet_generate: frame_index must be a 1-D int64 tensor");
  const int64_t n = frame_index.size(0);
  TORCH_CHECK(bias.size(0) == B && bias.size(2) == s.L && bias.scalar_type() == at::kFloat &&
                  bias.stride(3) == 1 && bias.stride(2) == s.G,
              "wavegen::wavenet_generate: bias must be float32 Tensor[B, F, L, G] with contiguous [L, G] rows, got ",
              bias.sizes());
  TORCH_CHECK(bias.size(1) > 0, "wavegen::wavenet_generate: bias has no frames");
  TORCH_CHECK(uniforms.dim() == 3 && uniforms.size(0) == n && uniforms.size(1) == B && uniforms.size(2) == 2 &&
                  uniforms.scalar_type() == at::kFloat && uniforms.is_contiguous(),
              "wavegen::wavenet_generate: uniforms must be a contiguous float32 Tensor[n, B, 2]");
  const auto token_dtype = head_kind == kHeadCategorical ? at::kLong : at::kFloat;
  TORCH_CHECK(next_input.dim() == 1 && next_input.size(0) == B && next_input.scalar_type() == token_dtype,
              "wavegen::wavenet_generate: next_input must be Tensor[B] of ", token_dtype);
  if (forced.has_value()) {
    TORCH_CHECK(forced->dim() == 2 && forced->size(0) == B && forced->size(1) == n &&
                    forced->scalar_type() == token_dtype,
                "wavegen::wavenet_generate: forced must be Tensor[B, n] of ", token_dtype);
  }
  const auto device = queues.device();
  for (const at::Tensor* t : {&next_input, &bias, &frame_index, &uniforms, &embed, &conv, &proj, &res_b, &skip_b,
                              &out1, &out1_b, &out2, &out2_b})
    TORCH_CHECK(t->device() == device, "wavegen::wavenet_generate: all tensors must be on ", device);
  if (forced.has_value())
    TORCH_CHECK(forced->device() == device, "wavegen::wavenet_generate: all tensors must be on ", device);
  return s;
}

inline Outputs make_outputs(const Shape& s, const at::Tensor& queues, int64_t n, bool return_logits) {
  const int64_t B = queues.size(0);
  const auto options = queues.options();
  Outputs out;
  out.tokens = at::empty({B, n}, options.dtype(s.head_kind == kHeadCategorical ? at::kLong : at::kFloat));
  out.logits = return_logits ? at::empty({n, B, s.A}, options.dtype(at::kFloat)) : at::empty({0}, options);
  return out;
}

// Raw pointers for a call. The CPU binding checks token and frame ranges (check_host_ranges),
// where the data is on the host; on CUDA the kernel clamps them instead, since reading a device
// tensor's range would synchronise the device with the host on every call.
inline Steps make_steps(const Shape& s, at::Tensor& queues, int64_t t0, const at::Tensor& next_input,
                        const at::Tensor& bias, const at::Tensor& frame_index, const at::Tensor& uniforms,
                        const at::Tensor& forced, double temperature, double log_scale_min, Outputs& out) {
  Steps st;
  st.batch = queues.size(0);
  st.n = frame_index.size(0);
  st.t0 = t0;
  st.queues = queues.data_ptr<float>();
  st.queue_stride = s.queue_rows * s.R;
  st.bias = bias.data_ptr<float>();
  st.bias_stride_b = bias.stride(0);
  st.bias_stride_f = bias.stride(1);
  st.frames = bias.size(1);
  st.frame_index = frame_index.data_ptr<int64_t>();
  st.uniforms = uniforms.data_ptr<float>();
  st.temperature = static_cast<float>(temperature);
  st.log_scale_min = static_cast<float>(log_scale_min);
  if (s.head_kind == kHeadCategorical) {
    st.next_long = next_input.data_ptr<int64_t>();
    st.forced_long = forced.defined() ? forced.data_ptr<int64_t>() : nullptr;
    st.tokens_long = out.tokens.data_ptr<int64_t>();
  } else {
    st.next_float = next_input.data_ptr<float>();
    st.forced_float = forced.defined() ? forced.data_ptr<float>() : nullptr;
    st.tokens_float = out.tokens.data_ptr<float>();
  }
  st.logits_out = out.logits.numel() ? out.logits.data_ptr<float>() : nullptr;
  return st;
}

inline void check_host_ranges(const Shape& s, const Steps& st) {
  for (int64_t i = 0; i < st.n; ++i)
    TORCH_CHECK(st.frame_index[i] >= 0 && st.frame_index[i] < st.frames, "wavegen::wavenet_generate: frame_index ",
                st.frame_index[i], " is outside the bias's ", st.frames, " frames");
  if (s.head_kind != kHeadCategorical) return;
  const auto in_range = [&](int64_t token) { return token >= 0 && token < s.classes; };
  for (int64_t b = 0; b < st.batch; ++b)
    TORCH_CHECK(in_range(st.next_long[b]), "wavegen::wavenet_generate: next_input token ", st.next_long[b],
                " is outside [0, ", s.classes, ")");
  if (st.forced_long)
    for (int64_t i = 0; i < st.batch * st.n; ++i)
      TORCH_CHECK(in_range(st.forced_long[i]), "wavegen::wavenet_generate: forced token ", st.forced_long[i],
                  " is outside [0, ", s.classes, ")");
}

}  // namespace wavegen
