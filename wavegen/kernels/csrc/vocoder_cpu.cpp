// CPU compute for the vocoder's fused elementwise ops (definitions in
// wavegen/kernels/reference.py). Each is one pass over memory replacing two to four
// separate PyTorch ops and their temporaries; arithmetic is float32 whatever the storage.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "cpu_kernels.h"

namespace wavegen::cpu {
namespace {

template <typename S>
inline float load(const S* p, int64_t i) { return static_cast<float>(p[i]); }
template <typename S>
inline void store(S* p, int64_t i, float v) { p[i] = static_cast<S>(v); }

template <typename F>
void visit_storage(Storage storage, F&& body) {
  switch (storage) {
    case Storage::kFloat32: body(float{}); break;
    case Storage::kFloat16: body(c10::Half{}); break;
    case Storage::kBFloat16: body(c10::BFloat16{}); break;
  }
}

inline float leaky(float v, float slope) { return v >= 0.0f ? v : v * slope; }

}  // namespace

void film_leaky_relu_rows(const FilmArgs& a, int64_t r0, int64_t r1) {
  visit_storage(a.storage, [&](auto tag) {
    using S = decltype(tag);
    const S* x = static_cast<const S*>(a.x);
    const S* scale = static_cast<const S*>(a.scale);
    const S* shift = static_cast<const S*>(a.shift);
    S* out = static_cast<S*>(a.out);
    const int64_t T = a.T;
    const float slope = a.negative_slope;
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / a.C, c = row % a.C;
      const S* xr = x + row * T;
      const S* sr = scale + b * a.scale_strides[0] + c * a.scale_strides[1];
      const S* hr = shift + b * a.shift_strides[0] + c * a.shift_strides[1];
      S* orow = out + row * T;
      const int64_t s2 = a.scale_strides[2], h2 = a.shift_strides[2];
      if (s2 == 0 && h2 == 0) {  // per-channel FiLM, the common case
        const float sc = load(sr, 0), sh = load(hr, 0);
#pragma omp simd
        for (int64_t t = 0; t < T; ++t) store(orow, t, leaky(sc * load(xr, t) + sh, slope));
      } else if (s2 == 1 && h2 == 1) {
#pragma omp simd
        for (int64_t t = 0; t < T; ++t) store(orow, t, leaky(load(sr, t) * load(xr, t) + load(hr, t), slope));
      } else {
        for (int64_t t = 0; t < T; ++t)
          store(orow, t, leaky(load(sr, t * s2) * load(xr, t) + load(hr, t * h2), slope));
      }
    }
  });
}

void diffusion_update_range(const DiffusionArgs& a, int64_t i0, int64_t i1) {
  visit_storage(a.storage, [&](auto tag) {
    using S = decltype(tag);
    const S* y = static_cast<const S*>(a.y);
    const S* eps = static_cast<const S*>(a.eps);
    const S* noise = static_cast<const S*>(a.noise);
    S* out = static_cast<S*>(a.out);
    const float c1 = a.c1, c2 = a.c2, sigma = a.sigma;
    if (noise) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float v = c1 * (load(y, i) - c2 * load(eps, i)) + sigma * load(noise, i);
        store(out, i, a.clamp ? std::min(std::max(v, -1.0f), 1.0f) : v);
      }
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float v = c1 * (load(y, i) - c2 * load(eps, i));
        store(out, i, a.clamp ? std::min(std::max(v, -1.0f), 1.0f) : v);
      }
    }
  });
}

}  // namespace wavegen::cpu
