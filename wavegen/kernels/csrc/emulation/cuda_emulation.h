// A CPU emulation of the small CUDA subset wavenet_cuda.cu uses, so that tests can run the
// kernel's logic - work split, cluster exchanges, ring buffers, sampling - on a machine
// without a GPU, and compare it with the reference.
//
// Every CUDA thread is a fiber (ucontext) on the calling OS thread, so a launch costs one CPU
// core however many threads it emulates and runs deterministically. __syncthreads, warp
// shuffles and cluster barriers are rendezvous: a fiber waiting at one yields until all its
// participants arrive, and if no fiber can move on (threads of one block waiting at
// different barriers, or a shuffle not every lane reaches) the emulation stops with an
// error - the situations that deadlock or misbehave on a GPU. Distributed shared memory maps
// an offset in one CTA's shared memory to the same offset in a peer's; shared memory starts
// filled with 0xFF bytes (NaN floats) so that reading anything the kernel did not write shows
// up in the results. Clusters run one after another. It checks logic, not speed or the
// memory model's finer points.
//
// Used only by emulation/harness.cpp; the stub headers next to this file stand in for the
// CUDA headers when that file is compiled with a host compiler.
#pragma once

#include <math.h>
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned a, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float4 {
  float x, y, z, w;
};

// The built-in index variables of the fiber that is running (the scheduler sets them).
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "CUDA emulation: %s\n", what);
  std::abort();
}

struct Fiber {
  ucontext_t context;
  std::vector<char> stack;
  std::function<void()> body;
  dim3 thread_idx, block_idx;
  unsigned char* smem = nullptr;
  struct Cta* cta = nullptr;
  unsigned cluster_rank = 0;
  bool done = false;
};

struct Scheduler {
  ucontext_t main;
  std::vector<std::unique_ptr<Fiber>> fibers;
  Fiber* current = nullptr;
  bool progress = false;
};

inline Scheduler*& scheduler() {
  static Scheduler* s = nullptr;
  return s;
}

inline void yield() { swapcontext(&scheduler()->current->context, &scheduler()->main); }

// All `expected` participants arrive, then all continue.
struct Barrier {
  int expected = 0, arrived = 0;
  uint64_t generation = 0;
  explicit Barrier(int n) : expected(n) {}
  void arrive_and_wait() {
    const uint64_t mine = generation;
    if (++arrived == expected) {
      arrived = 0;
      ++generation;
      scheduler()->progress = true;
      return;
    }
    while (generation == mine) yield();
  }
};

struct Cta {
  std::vector<unsigned char> smem;
  std::unique_ptr<Barrier> barrier;
  std::vector<std::unique_ptr<Barrier>> warp_barriers;
  std::vector<std::array<uint64_t, 32>> warp_slots;
};

struct Cluster {
  std::vector<std::unique_ptr<Cta>> ctas;
  std::unique_ptr<Barrier> barrier;
};

inline Cluster*& cluster() {
  static Cluster* c = nullptr;
  return c;
}
inline Fiber& self() { return *scheduler()->current; }

inline void trampoline() {
  Fiber& f = self();
  f.body();
  f.done = true;
  scheduler()->progress = true;
  swapcontext(&f.context, &scheduler()->main);
}

// Run every fiber until all finish; stop with an error if none can make progress.
inline void run_all(Scheduler& s) {
  scheduler() = &s;
  for (;;) {
    bool any_left = false;
    s.progress = false;
    for (auto& f : s.fibers) {
      if (f->done) continue;
      any_left = true;
      s.current = f.get();
      threadIdx = f->thread_idx;
      blockIdx = f->block_idx;
      swapcontext(&s.main, &f->context);
    }
    if (!any_left) break;
    if (!s.progress) fail("deadlock: threads wait at barriers that never complete");
  }
  scheduler() = nullptr;
}

// One warp-wide exchange: every lane publishes a value, then reads lane `source(lane)`'s.
template <typename T, typename Source>
T warp_exchange(T value, Source source) {
  static_assert(sizeof(T) <= 8, "values up to 8 bytes");
  Fiber& f = self();
  const unsigned lane = f.thread_idx.x % 32, warp = f.thread_idx.x / 32;
  auto& slots = f.cta->warp_slots[warp];
  auto& barrier = *f.cta->warp_barriers[warp];
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  slots[lane] = bits;
  barrier.arrive_and_wait();
  const uint64_t other = slots[source(lane)];
  barrier.arrive_and_wait();
  T out;
  std::memcpy(&out, &other, sizeof(T));
  return out;
}

}  // namespace emu

#define WAVEGEN_DYNAMIC_SHARED(name) unsigned char* name = ::emu::self().smem

inline void __syncthreads() { emu::self().cta->barrier->arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned, T value, int lane_mask) {
  return emu::warp_exchange(value, [&](unsigned lane) { return lane ^ static_cast<unsigned>(lane_mask); });
}
template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta) {
  return emu::warp_exchange(value, [&](unsigned lane) { return lane >= delta ? lane - delta : lane; });
}

template <typename T>
T __ldg(const T* p) { return *p; }
template <typename T>
T __ldcg(const T* p) { return *p; }

using std::max;
using std::min;

namespace cooperative_groups {
struct cluster_group {
  unsigned block_rank() const { return emu::self().cluster_rank; }
  void sync() const { emu::cluster()->barrier->arrive_and_wait(); }
  template <typename T>
  T* map_shared_rank(T* local, unsigned rank) const {
    emu::Fiber& f = emu::self();
    const auto offset = reinterpret_cast<unsigned char*>(local) - f.smem;
    if (offset < 0 || static_cast<size_t>(offset) >= f.cta->smem.size()) emu::fail("map_shared_rank outside shared memory");
    if (rank >= emu::cluster()->ctas.size()) emu::fail("map_shared_rank to a rank outside the cluster");
    return reinterpret_cast<T*>(emu::cluster()->ctas[rank]->smem.data() + offset);
  }
};
inline cluster_group this_cluster() { return {}; }
}  // namespace cooperative_groups

// ---------------------------------------------------------------------------------------------
// runtime API

using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
using cudaStream_t = void*;

struct cudaDeviceProp {
  int major = 9, minor = 0, multiProcessorCount = 132;  // an H100 / H200
  size_t sharedMemPerBlockOptin = 232448, sharedMemPerBlock = 49152;
};
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
// Calls that ask the driver about the device (slow on a GPU): counted, so that tests can check
// that the launch-plan cache spares them on repeated calls.
inline int64_t& device_queries() {
  static int64_t count = 0;
  return count;
}
// WAVEGEN_EMU_SMEM and WAVEGEN_EMU_SMS shrink the pretend GPU (to exercise L2-resident weights).
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  ++device_queries();
  *prop = cudaDeviceProp{};
  if (const char* smem = std::getenv("WAVEGEN_EMU_SMEM")) prop->sharedMemPerBlockOptin = std::strtoull(smem, nullptr, 10);
  if (const char* sms = std::getenv("WAVEGEN_EMU_SMS")) prop->multiProcessorCount = std::atoi(sms);
  return cudaSuccess;
}
struct cudaFuncAttributes {
  int binaryVersion = 90, ptxVersion = 90;
};
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, const void*) {
  *attributes = cudaFuncAttributes{};
  return cudaSuccess;
}
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize, cudaFuncAttributeNonPortableClusterSizeAllowed };
inline cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }
enum cudaLaunchAttributeID { cudaLaunchAttributeClusterDimension = 4 };
struct cudaLaunchAttributeValue {
  struct {
    unsigned x, y, z;
  } clusterDim;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
  dim3 gridDim, blockDim;
  size_t dynamicSmemBytes = 0;
  cudaStream_t stream = nullptr;
  cudaLaunchAttribute* attrs = nullptr;
  unsigned numAttrs = 0;
};
// As many clusters as the pretend GPU has multiprocessors for (one CTA per SM), or none if a
// block asks for more shared memory than there is.
inline cudaError_t cudaOccupancyMaxActiveClusters(int* clusters, const void*, const cudaLaunchConfig_t* config) {
  ++device_queries();
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  unsigned size = 1;
  for (unsigned a = 0; a < config->numAttrs; ++a)
    if (config->attrs[a].id == cudaLaunchAttributeClusterDimension) size = config->attrs[a].val.clusterDim.x;
  *clusters = config->dynamicSmemBytes > prop.sharedMemPerBlockOptin ? 0 : prop.multiProcessorCount / static_cast<int>(size);
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }

template <typename... KernelArgs, typename... Args>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(KernelArgs...), Args... args) {
  unsigned cluster_size = 1;
  for (unsigned a = 0; a < config->numAttrs; ++a)
    if (config->attrs[a].id == cudaLaunchAttributeClusterDimension) cluster_size = config->attrs[a].val.clusterDim.x;
  const unsigned blocks = config->gridDim.x, threads = config->blockDim.x;
  if (blocks % cluster_size) emu::fail("grid is not a multiple of the cluster size");
  if (threads % 32) emu::fail("block size is not a multiple of 32");
  blockDim = dim3(threads);
  gridDim = dim3(blocks);
  for (unsigned first = 0; first < blocks; first += cluster_size) {
    emu::Cluster cluster;
    cluster.barrier = std::make_unique<emu::Barrier>(static_cast<int>(cluster_size * threads));
    emu::Scheduler scheduler;
    for (unsigned r = 0; r < cluster_size; ++r) {
      auto cta = std::make_unique<emu::Cta>();
      cta->smem.assign(config->dynamicSmemBytes, 0xFF);  // uninitialised shared memory reads as NaN
      cta->barrier = std::make_unique<emu::Barrier>(static_cast<int>(threads));
      for (unsigned w = 0; w < threads / 32; ++w) cta->warp_barriers.push_back(std::make_unique<emu::Barrier>(32));
      cta->warp_slots.resize(threads / 32);
      for (unsigned t = 0; t < threads; ++t) {
        auto fiber = std::make_unique<emu::Fiber>();
        fiber->stack.resize(256 * 1024);
        fiber->thread_idx = dim3(t);
        fiber->block_idx = dim3(first + r);
        fiber->cta = cta.get();
        fiber->smem = cta->smem.data();
        fiber->cluster_rank = r;
        fiber->body = [=] { kernel(args...); };
        getcontext(&fiber->context);
        fiber->context.uc_stack.ss_sp = fiber->stack.data();
        fiber->context.uc_stack.ss_size = fiber->stack.size();
        fiber->context.uc_link = nullptr;
        makecontext(&fiber->context, emu::trampoline, 0);
        scheduler.fibers.push_back(std::move(fiber));
      }
      cluster.ctas.push_back(std::move(cta));
    }
    emu::cluster() = &cluster;
    emu::run_all(scheduler);
    emu::cluster() = nullptr;
  }
  return cudaSuccess;
}
