// The interface between the CPU op bindings (cpu_ops.cpp, torch headers) and the compute
// code (wavenet_cpu.cpp, vocoder_cpu.cpp: plain C++, quick to compile). The bindings check
// arguments, allocate outputs and split the work across threads; the compute functions
// each run one contiguous slice of it.
#pragma once

#include <cstdint>

#include "wavenet_problem.h"

namespace wavegen::cpu {

// 16-bit storage types; arithmetic is always float32.
struct f16_t { uint16_t bits; };   // IEEE binary16
struct bf16_t { uint16_t bits; };  // bfloat16 (top half of a float32)

enum class Storage { kFloat32, kFloat16, kBFloat16 };

// WaveNet weights in the kernel layout (see wavenet_problem.h); matrices in `storage`.
struct WaveNetWeights {
  Storage storage;
  const float* embed;
  const void* conv;
  const void* proj;
  const float* res_b;
  const float* skip_b;
  const void* out1;
  const float* out1_b;
  const void* out2;
  const float* out2_b;
};

// Advance streams [b0, b1) by all st.n steps.
void wavenet_generate_streams(const Shape& shape, const WaveNetWeights& w, const Steps& st, int64_t b0,
                              int64_t b1);

// leaky_relu(scale * x + shift) for rows [r0, r1) of x viewed as [B*C, T] (contiguous);
// scale/shift addressed as [b*s0 + c*s1 + t*s2] (strides of the expanded tensors).
struct FilmArgs {
  Storage storage;
  const void* x;
  const void* scale;
  const void* shift;
  void* out;
  int64_t C, T;
  int64_t scale_strides[3], shift_strides[3];
  float negative_slope;
};
void film_leaky_relu_rows(const FilmArgs& a, int64_t r0, int64_t r1);

// out = c1 * (y - c2 * eps) + sigma * noise (noise may be null), optionally clipped, on [i0, i1).
struct DiffusionArgs {
  Storage storage;
  const void* y;
  const void* eps;
  const void* noise;
  void* out;
  float c1, c2, sigma;
  bool clamp;
};
void diffusion_update_range(const DiffusionArgs& a, int64_t i0, int64_t i1);

}  // namespace wavegen::cpu
