// The plain-C++ description of one wavegen::wavenet_generate call (no torch headers, so the
// compute code compiles fast and the CUDA sources can share it).
//
// The op's weights are plain tensors in the layout of wavegen/kernels/layout.py. Each matrix
// W (K inputs -> N outputs) is stored in panels of 64 output columns, Tensor[Np/64, K, 64]
// with N zero-padded to Np = a multiple of 64: W[k][n] at (n / 64) * K * 64 + k * 64 + n % 64.
//   embed [classes, R] (categorical) or [2, R] (mol), float32
//   conv  [L, Gp/64, k*R, 64]     inputs (tap, r): tap 0 the oldest, tap k-1 the current x
//   proj  [L, RSp/64, G/2, 64]    outputs: residual [0, R), skip [R, R+S)
//   out1  [Sp/64, S, 64], out2 [Ap/64, S, 64]
//   res_b [L, R], skip_b [S], out1_b [S], out2_b [A]: float32
// Matrices share one dtype (float32, float16 or bfloat16).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace wavegen {

constexpr int64_t kHeadCategorical = 0;
constexpr int64_t kHeadMixtureOfLogistics = 1;
constexpr float kUniformEps = 1e-5f;  // as reference.UNIFORM_EPS
constexpr int kPanel = 64;            // output columns per weight panel

inline int padded(int n) { return (n + kPanel - 1) / kPanel * kPanel; }

struct Shape {
  int L, k, R, G, S, A, head_kind, classes;
  int Gp, RSp, Sp, Ap;  // G, R+S, S, A rounded up to whole panels
  int64_t queue_rows;
  std::vector<int64_t> dilations;
};

inline int64_t positive_mod(int64_t a, int64_t m) {
  const int64_t r = a % m;
  return r < 0 ? r + m : r;
}

inline std::vector<int64_t> queue_offsets(const Shape& s) {
  std::vector<int64_t> offsets(s.L);
  int64_t total = 0;
  for (int l = 0; l < s.L; ++l) {
    offsets[l] = total;
    total += (s.k - 1) * s.dilations[l];
  }
  return offsets;
}

// Everything one call needs, as raw pointers (tensors made contiguous beforehand).
struct Steps {
  int64_t batch = 0, n = 0, t0 = 0;
  float* queues = nullptr;
  int64_t queue_stride = 0;  // Q * R
  const float* bias = nullptr;
  int64_t bias_stride_b = 0, bias_stride_f = 0;  // bias[b, f, l, g] = bias[b*sb + f*sf + l*G + g]
  int64_t frames = 0;
  const int64_t* frame_index = nullptr;
  const float* uniforms = nullptr;  // [n, B, 2]
  const int64_t* next_long = nullptr;
  const float* next_float = nullptr;  // [B]
  const int64_t* forced_long = nullptr;
  const float* forced_float = nullptr;  // [B, n] or null
  float temperature = 1.0f, log_scale_min = -16.0f;
  int64_t* tokens_long = nullptr;
  float* tokens_float = nullptr;  // [B, n]
  float* logits_out = nullptr;    // [n, B, A] or null
};

// Mixture-of-logistics sampling, as reference.sample_from_logits: u[0] picks the component
// by inverse CDF of softmax(weights), u[1] draws the logistic noise.
inline float sample_mixture_of_logistics(const float* logits, int mixtures, const float* u, float temperature,
                                         float log_scale_min) {
  float max_w = logits[0];
  for (int c = 1; c < mixtures; ++c) max_w = std::max(max_w, logits[c]);
  float total = 0.0f;
  for (int c = 0; c < mixtures; ++c) total += std::exp(logits[c] - max_w);
  double cdf = 0.0;
  int component = 0;
  for (int c = 0; c < mixtures; ++c) {
    cdf += static_cast<double>(std::exp(logits[c] - max_w) / total);
    if (static_cast<float>(cdf) < u[0]) ++component; else break;
  }
  component = std::min(component, mixtures - 1);
  const float mean = logits[mixtures + component];
  const float log_scale = std::max(logits[2 * mixtures + component], log_scale_min);
  const float v = std::min(std::max(u[1], kUniformEps), 1.0f - kUniformEps);
  const float noise = std::log(v) - std::log1p(-v);
  return std::min(std::max(mean + temperature * std::exp(log_scale) * noise, -1.0f), 1.0f);
}

}  // namespace wavegen
