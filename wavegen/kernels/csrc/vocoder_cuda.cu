// CUDA versions of the vocoder's fused elementwise ops (definitions in
// wavegen/kernels/reference.py): one pass over memory each, float32 arithmetic whatever
// the storage dtype. No torch headers (see cuda_launch.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_launch.h"

namespace wavegen::cuda {
namespace {

__device__ __forceinline__ float load_f32(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load_f32(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load_f32(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store_f32(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f32(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store_f32(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

template <typename S>
__global__ void film_leaky_relu_kernel(const FilmParams p) {
  const S* x = static_cast<const S*>(p.x);
  const S* scale = static_cast<const S*>(p.scale);
  const S* shift = static_cast<const S*>(p.shift);
  S* out = static_cast<S*>(p.out);
  const int64_t total = p.B * p.C * p.T;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i % p.T, row = i / p.T, c = row % p.C, b = row / p.C;
    const float sc = load_f32(scale, b * p.scale_strides[0] + c * p.scale_strides[1] + t * p.scale_strides[2]);
    const float sh = load_f32(shift, b * p.shift_strides[0] + c * p.shift_strides[1] + t * p.shift_strides[2]);
    const float v = sc * load_f32(x, i) + sh;
    store_f32(out, i, v >= 0.0f ? v : v * p.negative_slope);
  }
}

template <typename S>
__global__ void diffusion_update_kernel(const DiffusionParams p) {
  const S* y = static_cast<const S*>(p.y);
  const S* eps = static_cast<const S*>(p.eps);
  const S* noise = static_cast<const S*>(p.noise);
  S* out = static_cast<S*>(p.out);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = p.c1 * (load_f32(y, i) - p.c2 * load_f32(eps, i));
    if (noise) v += p.sigma * load_f32(noise, i);
    if (p.clamp) v = fminf(fmaxf(v, -1.0f), 1.0f);
    store_f32(out, i, v);
  }
}

unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);  // grid-stride beyond
}

}  // namespace

const char* launch_film_leaky_relu(const FilmParams& p, void* stream) {
  const int64_t n = p.B * p.C * p.T;
  if (n == 0) return nullptr;
  const int threads = 256;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.storage == kFloat32) film_leaky_relu_kernel<float><<<grid_for(n, threads), threads, 0, s>>>(p);
  else if (p.storage == kFloat16) film_leaky_relu_kernel<__half><<<grid_for(n, threads), threads, 0, s>>>(p);
  else film_leaky_relu_kernel<__nv_bfloat16><<<grid_for(n, threads), threads, 0, s>>>(p);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* launch_diffusion_update(const DiffusionParams& p, void* stream) {
  if (p.numel == 0) return nullptr;
  const int threads = 256;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.storage == kFloat32) diffusion_update_kernel<float><<<grid_for(p.numel, threads), threads, 0, s>>>(p);
  else if (p.storage == kFloat16) diffusion_update_kernel<__half><<<grid_for(p.numel, threads), threads, 0, s>>>(p);
  else diffusion_update_kernel<__nv_bfloat16><<<grid_for(p.numel, threads), threads, 0, s>>>(p);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace wavegen::cuda
