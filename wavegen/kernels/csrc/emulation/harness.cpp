// The CUDA WaveNet kernel compiled for the CPU emulation (cuda_emulation.h), behind a C entry
// point that tests call through ctypes with the data pointers of CPU tensors.
//
//   g++ -std=c++20 -O1 -pthread -shared -fPIC -DWAVEGEN_CUDA_EMULATION \
//       -I csrc/emulation -I csrc csrc/emulation/harness.cpp -o wavegen_cuda_emulation.so
#include "cuda_emulation.h"
#include "../wavenet_cuda.cu"

namespace {
int panels(int n) { return (n + 63) / 64 * 64; }
}  // namespace

// ints:   B, L, k, R, G, S, A, head_kind, classes, storage, n, t0, frames, bias_sb, bias_sf,
//         then L dilations
// floats: temperature, log_scale_min
// ptrs:   queues, bias, frame_index, uniforms, next_long, next_float, forced_long, forced_float,
//         tokens_long, tokens_float, logits, embed, conv, proj, res_b, skip_b, out1, out1_b,
//         out2, out2_b   (null where absent)
// force:  cluster, streams, threads (0: let the planner choose), plan_only (1: do not launch),
//         cached (1: plan through plan_wavenet_cached, as the torch binding does; the force
//         values are then ignored and only WAVEGEN_CUDA_* apply)
// plan:   out - cluster, streams, threads, resident_layers, head_resident, smem_bytes
extern "C" const char* wavegen_emulated_wavenet_generate(const int64_t* ints, const double* floats,
                                                         void* const* ptrs, const int* force, int64_t* plan_out) {
  using namespace wavegen::cuda;
  WaveNetParams p{};
  p.B = static_cast<int>(ints[0]);
  p.L = static_cast<int>(ints[1]);
  p.k = static_cast<int>(ints[2]);
  p.R = static_cast<int>(ints[3]);
  p.G = static_cast<int>(ints[4]);
  p.S = static_cast<int>(ints[5]);
  p.A = static_cast<int>(ints[6]);
  p.head_kind = static_cast<int>(ints[7]);
  p.classes = static_cast<int>(ints[8]);
  p.storage = static_cast<int>(ints[9]);
  p.n = ints[10];
  p.t0 = ints[11];
  p.frames = ints[12];
  p.bias_sb = ints[13];
  p.bias_sf = ints[14];
  if (p.L > kMaxLayers) return "too many layers";
  p.Gp = panels(p.G);
  p.RSp = panels(p.R + p.S);
  p.Sp = panels(p.S);
  p.Ap = panels(p.A);
  int64_t rows = 0;
  for (int l = 0; l < p.L; ++l) {
    p.dilations[l] = static_cast<int>(ints[15 + l]);
    p.queue_offsets[l] = static_cast<int>(rows);
    rows += static_cast<int64_t>(p.k - 1) * p.dilations[l];
  }
  p.queue_rows = rows;
  p.temperature = static_cast<float>(floats[0]);
  p.log_scale_min = static_cast<float>(floats[1]);
  p.queues = static_cast<float*>(ptrs[0]);
  p.bias = static_cast<const float*>(ptrs[1]);
  p.frame_index = static_cast<const int64_t*>(ptrs[2]);
  p.uniforms = static_cast<const float*>(ptrs[3]);
  p.next_long = static_cast<const int64_t*>(ptrs[4]);
  p.next_float = static_cast<const float*>(ptrs[5]);
  p.forced_long = static_cast<const int64_t*>(ptrs[6]);
  p.forced_float = static_cast<const float*>(ptrs[7]);
  p.tokens_long = static_cast<int64_t*>(ptrs[8]);
  p.tokens_float = static_cast<float*>(ptrs[9]);
  p.logits = static_cast<float*>(ptrs[10]);
  p.embed = static_cast<const float*>(ptrs[11]);
  p.conv = ptrs[12];
  p.proj = ptrs[13];
  p.res_b = static_cast<const float*>(ptrs[14]);
  p.skip_b = static_cast<const float*>(ptrs[15]);
  p.out1 = ptrs[16];
  p.out1_b = static_cast<const float*>(ptrs[17]);
  p.out2 = ptrs[18];
  p.out2_b = static_cast<const float*>(ptrs[19]);
  LaunchPlan plan;
  const char* error = force[4] ? plan_wavenet_cached(p, &plan) : plan_wavenet(p, &plan, force[0], force[1], force[2]);
  if (error) return error;
  plan_out[0] = plan.cluster;
  plan_out[1] = plan.streams;
  plan_out[2] = plan.threads;
  plan_out[3] = plan.resident_layers;
  plan_out[4] = plan.head_resident;
  plan_out[5] = plan.smem_bytes;
  if (force[3]) return nullptr;
  return launch_wavenet(p, plan, nullptr);
}

// How many device queries (properties, occupancy) the emulated runtime has answered so far.
extern "C" int64_t wavegen_emulated_device_queries() { return device_queries(); }
