// Small SIMD building blocks for the CPU kernels: weight loads in three storage
// precisions, a register-blocked matrix-vector product, and vectorised exp / gate.
//
// Everything here has an AVX2+FMA(+F16C) path and a portable fallback that the
// compiler vectorises on its own; the build chooses by the flags it passes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define WAVEGEN_HAVE_AVX2 1
#else
#define WAVEGEN_HAVE_AVX2 0
#endif

namespace wavegen::cpu {

inline float to_float(float v) { return v; }
inline float to_float(bf16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v.bits) << 16;  // bf16 is the top half of an fp32
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline float to_float(f16_t v) {
#if WAVEGEN_HAVE_AVX2
  return _cvtsh_ss(v.bits);
#else
  // IEEE binary16 -> binary32 by hand: sign, 5-bit exponent (bias 15), 10-bit mantissa.
  const uint32_t sign = static_cast<uint32_t>(v.bits & 0x8000u) << 16;
  uint32_t exponent = (v.bits >> 10) & 0x1fu, mantissa = v.bits & 0x3ffu, bits;
  if (exponent == 0x1fu) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // signed zero
  } else {  // subnormal: normalise the mantissa
    exponent = 113u;
    while (!(mantissa & 0x400u)) { mantissa <<= 1; --exponent; }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// ---------------------------------------------------------------------------------------------
// Matrix-vector products over panel-major weights (see wavenet_problem.h): W[k][n] lives at
// w[(n / 64) * K * 64 + k * 64 + n % 64], so one panel - 64 outputs for every input - is one
// contiguous stream that the hardware prefetcher follows, and each input value multiplies a
// contiguous run of outputs: a broadcast and a row of FMAs.
//
//   out[b][n] += sum_k in[b][k] * W[k][n]      for b < nb, n < Np (Np a multiple of 64)
// ---------------------------------------------------------------------------------------------

#if WAVEGEN_HAVE_AVX2

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const f16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const bf16_t* p) {
  // bf16 is the top half of an fp32: widen to 32 bits and shift into place.
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// BB streams x NV vectors of 8 outputs, accumulators held in registers over the whole K loop.
// BB * NV <= 12 leaves room for the weight vectors and a broadcast in the 16 ymm registers.
// (The unroll pragmas make GCC keep the accumulator array in registers instead of
// storing it to the stack on every iteration.)
template <int BB, int NV, typename W>
inline void gemv_tile(const W* w, int K, const float* in, int64_t ldin, float* out, int64_t ldout) {
  __m256 acc[BB][NV];
#pragma GCC unroll 16
  for (int b = 0; b < BB; ++b)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[b][v] = _mm256_loadu_ps(out + b * ldout + 8 * v);
  for (int k = 0; k < K; ++k) {
    const W* row = w + k * kPanel;
    if constexpr (BB == 1) {
      const __m256 x = _mm256_broadcast_ss(in + k);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[0][v] = _mm256_fmadd_ps(x, load8(row + 8 * v), acc[0][v]);
    } else {
      __m256 wv[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) wv[v] = load8(row + 8 * v);
#pragma GCC unroll 16
      for (int b = 0; b < BB; ++b) {
        const __m256 x = _mm256_broadcast_ss(in + b * ldin + k);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[b][v] = _mm256_fmadd_ps(x, wv[v], acc[b][v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int b = 0; b < BB; ++b)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + b * ldout + 8 * v, acc[b][v]);
}

// Columns [0, 8*NV) of one panel, for all nb streams, four at a time: the panel's columns
// stay in L1 while each block of streams passes over them.
template <int NV, typename W>
inline void gemv_panel_columns(const W* w, int K, const float* in, int64_t ldin, float* out, int64_t ldout,
                               int nb) {
  int b = 0;
  for (; b + 4 <= nb; b += 4) gemv_tile<4, NV>(w, K, in + b * ldin, ldin, out + b * ldout, ldout);
  switch (nb - b) {
    case 3: gemv_tile<3, NV>(w, K, in + b * ldin, ldin, out + b * ldout, ldout); break;
    case 2: gemv_tile<2, NV>(w, K, in + b * ldin, ldin, out + b * ldout, ldout); break;
    case 1: gemv_tile<1, NV>(w, K, in + b * ldin, ldin, out + b * ldout, ldout); break;
    default: break;
  }
}

#endif  // WAVEGEN_HAVE_AVX2

// panel_stride: elements from one panel to the next (K * 64 for a whole matrix; larger when
// the product covers only some of each panel's rows, e.g. one tap of the dilated conv).
template <typename W>
inline void gemv_acc(const W* w, int K, int Np, const float* in, int64_t ldin, float* out, int64_t ldout,
                     int nb, int64_t panel_stride = -1) {
  if (panel_stride < 0) panel_stride = static_cast<int64_t>(K) * kPanel;
  for (int n = 0; n < Np; n += kPanel) {
    const W* panel = w + (n / kPanel) * panel_stride;
    float* o = out + n;
#if WAVEGEN_HAVE_AVX2
    if (nb == 1) {
      gemv_tile<1, 8>(panel, K, in, ldin, o, ldout);  // 64 outputs in 8 registers
    } else {  // 24 + 24 + 16 columns, blocked over 4 streams (12 accumulators)
      gemv_panel_columns<3>(panel, K, in, ldin, o, ldout, nb);
      gemv_panel_columns<3>(panel + 24, K, in, ldin, o + 24, ldout, nb);
      gemv_panel_columns<2>(panel + 48, K, in, ldin, o + 48, ldout, nb);
    }
#else
    for (int b = 0; b < nb; ++b) {
      float* ob = o + b * ldout;
      const float* x = in + b * ldin;
      for (int k = 0; k < K; ++k) {
        const float xk = x[k];
        const W* row = panel + static_cast<int64_t>(k) * kPanel;
#pragma omp simd
        for (int c = 0; c < kPanel; ++c) ob[c] += xk * to_float(row[c]);
      }
    }
#endif
  }
}

// ---------------------------------------------------------------------------------------------
// exp, tanh, sigmoid. The gate evaluates 2 * L * G/2 transcendental functions per sample,
// so scalar libm calls would cost more than all the matrix work; these vector versions
// are accurate to a few ulp (exp: Cody-Waite range reduction + degree-7 Taylor polynomial).
// ---------------------------------------------------------------------------------------------

#if WAVEGEN_HAVE_AVX2

inline __m256 exp8(__m256 x) {
  // e^x = 2^m * e^r with m = round(x / ln 2), |r| <= ln(2) / 2.
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 m = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 split into a part with few mantissa bits (exact product with m) and the rest.
  __m256 r = _mm256_fnmadd_ps(m, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(m, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // Scale by 2^m by adding m to the exponent field.
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// tanh(f) * sigmoid(g), elementwise.
inline __m256 gate8(__m256 f, __m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  // tanh|f| = (1 - e^{-2|f|}) / (1 + e^{-2|f|}); the sign is put back afterwards.
  const __m256 abs_f = _mm256_andnot_ps(sign_mask, f);
  const __m256 e = exp8(_mm256_mul_ps(abs_f, _mm256_set1_ps(-2.0f)));
  __m256 th = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  th = _mm256_or_ps(th, _mm256_and_ps(f, sign_mask));
  const __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
  return _mm256_mul_ps(th, sg);
}

#endif  // WAVEGEN_HAVE_AVX2

inline float gate1(float f, float g) { return std::tanh(f) * (1.0f / (1.0f + std::exp(-g))); }

// a[h] = tanh(z[h]) * sigmoid(z[half + h]) for h < half.
inline void gated_activation(const float* z, int half, float* a) {
  int h = 0;
#if WAVEGEN_HAVE_AVX2
  for (; h + 8 <= half; h += 8)
    _mm256_storeu_ps(a + h, gate8(_mm256_loadu_ps(z + h), _mm256_loadu_ps(z + half + h)));
#endif
  for (; h < half; ++h) a[h] = gate1(z[h], z[half + h]);
}

// out[i] = exp(x[i] - shift), returns the sum (accumulated in float, in order of i blocks).
inline void exp_shifted(const float* x, int n, float shift, float* out) {
  int i = 0;
#if WAVEGEN_HAVE_AVX2
  const __m256 s = _mm256_set1_ps(shift);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
#endif
  for (; i < n; ++i) out[i] = std::exp(x[i] - shift);
}

}  // namespace wavegen::cpu
