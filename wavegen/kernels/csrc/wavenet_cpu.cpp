// CPU compute of wavegen::wavenet_generate (definition: wavegen/kernels/reference.py; weight
// layout: wavegen/kernels/layout.py). Plain C++ - the torch glue lives in cpu_ops.cpp.
//
// A call runs one contiguous group of streams through all n steps in lockstep, so one pass
// over the weights per step serves every stream of the group (the matrix products block
// up to 4 streams in registers). The bindings give each thread one group.
#include <algorithm>
#include <limits>
#include <vector>

#include "cpu_kernels.h"
#include "cpu_simd.h"

namespace wavegen::cpu {
namespace {

template <typename W>
struct TypedWeights {
  const float* embed;
  const W* conv;
  const W* proj;
  const float* res_b;
  const float* skip_b;
  const W* out1;
  const float* out1_b;
  const W* out2;
  const float* out2_b;
};

// Working memory of one group of nb streams.
// Product outputs are padded to whole panels (Gp, RSp, Sp, Ap per stream).
struct Scratch {
  // Per stream: x (R values) followed by the skip accumulator (S): the fused residual/skip
  // product then updates both with one pass over its weights.
  std::vector<float> xs, z, a, h1, h2, logits, probs;
  Scratch(int nb, const Shape& s)
      : xs(nb * s.RSp), z(nb * s.Gp), a(nb * (s.G / 2)), h1(nb * s.S), h2(nb * s.Sp), logits(nb * s.Ap),
        probs(s.A) {}
};

// Inverse-CDF sampling from softmax(logits / temperature), as reference.sample_from_logits.
int64_t sample_categorical(const float* logits, int A, float u, float temperature, float* probs) {
  if (temperature <= 0.0f) {  // greedy; ties go to the first index, like torch.argmax
    int best = 0;
    for (int i = 1; i < A; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  float max_scaled = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < A; ++i) {
    probs[i] = logits[i] / temperature;
    max_scaled = std::max(max_scaled, probs[i]);
  }
  exp_shifted(probs, A, max_scaled, probs);
  float total = 0.0f;
  for (int i = 0; i < A; ++i) total += probs[i];
  // torch.cumsum accumulates float32 in double; do the same so that the class boundaries
  // the uniform is compared with agree with the reference's.
  double cdf = 0.0;
  int64_t count = 0;
  for (int i = 0; i < A; ++i) {
    cdf += static_cast<double>(probs[i] / total);
    if (static_cast<float>(cdf) < u) ++count; else break;
  }
  return std::min<int64_t>(count, A - 1);
}

template <typename W>
void run_streams(const Shape& s, const TypedWeights<W>& w, const Steps& st, int64_t b0, int64_t b1) {
  const int nb = static_cast<int>(b1 - b0);
  const int R = s.R, G = s.G, half = s.G / 2, S = s.S, A = s.A, k = s.k;
  const int Gp = s.Gp, RSp = s.RSp, Sp = s.Sp, Ap = s.Ap;
  Scratch m(nb, s);
  const std::vector<int64_t> offsets = queue_offsets(s);

  for (int64_t i = 0; i < st.n; ++i) {
    const int64_t t = st.t0 + i;
    const int64_t frame = st.frame_index[i];

    // The token fed at step i (the previous step's output) -> first layer input x.
    for (int b = 0; b < nb; ++b) {
      const int64_t stream = b0 + b;
      float* xs = m.xs.data() + b * RSp;
      if (s.head_kind == kHeadCategorical) {
        const int64_t token = i == 0 ? st.next_long[stream] : st.tokens_long[stream * st.n + i - 1];
        std::copy(w.embed + token * R, w.embed + (token + 1) * R, xs);
      } else {
        const float value = i == 0 ? st.next_float[stream] : st.tokens_float[stream * st.n + i - 1];
        for (int r = 0; r < R; ++r) xs[r] = value * w.embed[r] + w.embed[R + r];
      }
      std::fill(xs + R, xs + RSp, 0.0f);
    }

    for (int l = 0; l < s.L; ++l) {
      const int64_t d = s.dilations[l];
      const int64_t size = (k - 1) * d;
      for (int b = 0; b < nb; ++b) {
        const float* bias = st.bias + (b0 + b) * st.bias_stride_b + frame * st.bias_stride_f + l * G;
        std::copy(bias, bias + G, m.z.data() + b * Gp);
      }
      // z += conv taps: tap j (rows j*R.. of every panel) reads x(t - (k-1-j)·d) straight from
      // the ring - the same row for every stream, one queue apart - and the last tap reads x.
      const W* conv = w.conv + static_cast<int64_t>(l) * k * R * Gp;
      const int64_t panel_stride = static_cast<int64_t>(k) * R * kPanel;
      float* queue = st.queues + b0 * st.queue_stride + offsets[l] * R;
      for (int j = 0; j < k - 1; ++j) {
        const int64_t row = positive_mod(t - (k - 1 - j) * d, size);
        gemv_acc(conv + j * R * kPanel, R, Gp, queue + row * R, st.queue_stride, m.z.data(), Gp, nb, panel_stride);
      }
      gemv_acc(conv + (k - 1) * R * kPanel, R, Gp, m.xs.data(), RSp, m.z.data(), Gp, nb, panel_stride);
      // Write after reading: the oldest tap's row is the one time t overwrites.
      const int64_t own_row = positive_mod(t, size);
      for (int b = 0; b < nb; ++b) {
        const float* x = m.xs.data() + b * RSp;
        std::copy(x, x + R, queue + b * st.queue_stride + own_row * R);
      }
      for (int b = 0; b < nb; ++b) gated_activation(m.z.data() + b * Gp, half, m.a.data() + b * half);
      // x += res_w · a and skip += skip_w · a: one product over the fused [G/2, R+S] matrix.
      gemv_acc(w.proj + static_cast<int64_t>(l) * half * RSp, half, RSp, m.a.data(), half, m.xs.data(), RSp, nb);
      const float* res_b = w.res_b + l * R;
      for (int b = 0; b < nb; ++b) {
        float* x = m.xs.data() + b * RSp;
        for (int r = 0; r < R; ++r) x[r] += res_b[r];
      }
    }

    // Output head: logits = out2 · relu(out1 · relu(skip + skip_b) + out1_b) + out2_b.
    for (int b = 0; b < nb; ++b) {
      const float* skip = m.xs.data() + b * RSp + R;
      float* h1 = m.h1.data() + b * S;
      for (int c = 0; c < S; ++c) h1[c] = std::max(skip[c] + w.skip_b[c], 0.0f);
      std::copy(w.out1_b, w.out1_b + S, m.h2.data() + b * Sp);
      std::copy(w.out2_b, w.out2_b + A, m.logits.data() + b * Ap);
    }
    gemv_acc(w.out1, S, Sp, m.h1.data(), S, m.h2.data(), Sp, nb);
    for (float& v : m.h2) v = std::max(v, 0.0f);
    gemv_acc(w.out2, S, Ap, m.h2.data(), Sp, m.logits.data(), Ap, nb);

    for (int b = 0; b < nb; ++b) {
      const float* logits = m.logits.data() + b * Ap;
      const int64_t stream = b0 + b;
      if (st.logits_out) std::copy(logits, logits + A, st.logits_out + (i * st.batch + stream) * A);
      const float* u = st.uniforms + (i * st.batch + stream) * 2;
      if (s.head_kind == kHeadCategorical) {
        st.tokens_long[stream * st.n + i] =
            st.forced_long ? st.forced_long[stream * st.n + i]
                           : sample_categorical(logits, A, u[0], st.temperature, m.probs.data());
      } else {
        st.tokens_float[stream * st.n + i] =
            st.forced_float ? st.forced_float[stream * st.n + i]
                            : sample_mixture_of_logistics(logits, s.classes, u, st.temperature, st.log_scale_min);
      }
    }
  }
}

template <typename W>
TypedWeights<W> typed(const WaveNetWeights& w) {
  return {w.embed, static_cast<const W*>(w.conv), static_cast<const W*>(w.proj), w.res_b, w.skip_b,
          static_cast<const W*>(w.out1), w.out1_b, static_cast<const W*>(w.out2), w.out2_b};
}

}  // namespace

void wavenet_generate_streams(const Shape& shape, const WaveNetWeights& w, const Steps& st, int64_t b0,
                              int64_t b1) {
  switch (w.storage) {
    case Storage::kFloat32: run_streams(shape, typed<float>(w), st, b0, b1); break;
    case Storage::kFloat16: run_streams(shape, typed<f16_t>(w), st, b0, b1); break;
    case Storage::kBFloat16: run_streams(shape, typed<bf16_t>(w), st, b0, b1); break;
  }
}

}  // namespace wavegen::cpu
