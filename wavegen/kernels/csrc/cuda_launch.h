// The interface between the CUDA op bindings (cuda_bindings.cpp, torch headers, host
// compiler) and the CUDA sources (wavenet_cuda.cu, vocoder_cuda.cu: no torch headers, so
// nvcc compiles them in seconds and CI can check them without a GPU).
//
// Functions return nullptr on success or a static error message.
#pragma once

#include <cstdint>

namespace wavegen::cuda {

enum Storage : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

constexpr int kMaxLayers = 96;

// One wavegen::wavenet_generate call: sizes, device pointers (weights in the panel layout of
// wavenet_problem.h) and the layer table.
struct WaveNetParams {
  int B, L, k, R, G, S, A, Gp, RSp, Sp, Ap, head_kind, classes, storage;
  int64_t n, t0, queue_rows, frames, bias_sb, bias_sf;
  float temperature, log_scale_min;
  int dilations[kMaxLayers];
  int queue_offsets[kMaxLayers];  // first queue row of each layer
  float* queues;
  const float* bias;
  const int64_t* frame_index;
  const float* uniforms;
  const int64_t* next_long;
  const float* next_float;
  const int64_t* forced_long;
  const float* forced_float;
  int64_t* tokens_long;
  float* tokens_float;
  float* logits;
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

// How a call is spread over the GPU. A *cluster* of `cluster` thread blocks (CTAs, one per
// SM) advances `streams` streams together; each CTA owns 1/cluster of every layer's gate
// channels and of the head, keeps its share of the weights in shared memory where it fits
// (`resident_layers` layers, the head if `head_resident`), and reads the rest from L2.
struct LaunchPlan {
  int cluster = 1;
  int streams = 1;
  int threads = 256;
  int resident_layers = 0;
  int head_resident = 0;
  int64_t smem_bytes = 0;
};

// Choose a plan for the current device. force_* > 0 override the heuristic (for tuning), as
// do WAVEGEN_CUDA_CLUSTER / _STREAMS / _THREADS; a forced value the kernel cannot run with
// (streams per cluster above threads per block, a block that is not whole warps, a cluster
// that is not a power of two or does not fit) is refused with a one-line message starting
// "cannot plan the launch:", never adjusted.
const char* plan_wavenet(const WaveNetParams& p, LaunchPlan* plan, int force_cluster, int force_streams,
                         int force_threads);
// plan_wavenet through a per-process cache keyed by (device, sizes, weight storage,
// overrides): the device queries and occupancy calls run once per shape, not per call.
const char* plan_wavenet_cached(const WaveNetParams& p, LaunchPlan* plan);
const char* launch_wavenet(const WaveNetParams& p, const LaunchPlan& plan, void* stream);

// Elementwise vocoder ops (float32 / float16 / bfloat16 storage, float32 arithmetic).
struct FilmParams {
  int storage;
  const void* x;
  const void* scale;
  const void* shift;
  void* out;
  int64_t B, C, T;
  int64_t scale_strides[3], shift_strides[3];
  float negative_slope;
};
const char* launch_film_leaky_relu(const FilmParams& p, void* stream);

struct DiffusionParams {
  int storage;
  const void* y;
  const void* eps;
  const void* noise;  // may be null
  void* out;
  int64_t numel;
  float c1, c2, sigma;
  int clamp;
};
const char* launch_diffusion_update(const DiffusionParams& p, void* stream);

}  // namespace wavegen::cuda
