// CUDA implementation of wavegen::wavenet_generate: a persistent kernel that runs all n
// samples of a call in one launch (definition: wavegen/kernels/reference.py; weight layout:
// wavenet_problem.h). No torch headers here; cuda_bindings.cpp is the torch glue.
//
// Design (after nv-wavenet's persistent kernel, with Hopper thread-block clusters in place
// of its global-memory flags):
//
// * A cluster of C thread blocks (CTAs, one per SM) advances `streams` streams through every
//   sample. CTA `rank` owns gate pairs [p0, p1) of every layer (1/C of the conv columns and of
//   the residual/skip projection rows) and 1/C of each head layer's inputs. Its share of the
//   weights is copied into shared memory once per launch where it fits (the rest is read
//   from L2 in place), so at batch 1 sixteen SMs hold a whole `base` model on chip.
// * Per layer each CTA computes its gate outputs and its partial residual update, writes the
//   partial into every peer's shared memory (distributed shared memory), and one cluster
//   barrier later every CTA sums the C partials in the same order: all CTAs hold bit-identical
//   x. The skip sums stay local until the head, which reduce-scatters skip, hidden and logit
//   vectors and finally all-gathers the logits, so every CTA samples the same token itself.
//   Cost: L + 3 cluster barriers per sample. With C = 1 the same code runs in one CTA with
//   __syncthreads (any GPU; weights then mostly stream from L2).
// * Each exchange buffer is double-buffered by exchange parity: data written before barrier e
//   is read between barriers e and e+1, and that buffer is next written after barrier e+1.
// * Queues stay in global memory in the reference layout. The row a layer writes at time t is
//   the row its oldest tap reads at time t, so x_l(t) is written only after the barrier that
//   follows every CTA's read of layer l's taps; queue reads bypass L1 (ld.cg / cp.async.cg)
//   because other SMs write those rows. Layer l+1's taps and biases are prefetched
//   (cp.async) while layer l computes; the next sample's layer 0 during the head.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "cuda_launch.h"

namespace cg = cooperative_groups;

// Thread-block clusters (Hopper, sm_90) - or the CPU emulation in emulation/, which runs this
// file's kernel with threads and barriers so that tests can check its logic without a GPU.
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(WAVEGEN_CUDA_EMULATION)
#define WAVEGEN_HAS_CLUSTERS 1
#else
#define WAVEGEN_HAS_CLUSTERS 0
#endif

#ifndef WAVEGEN_DYNAMIC_SHARED
#define WAVEGEN_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace wavegen::cuda {
namespace {

constexpr int kPanel = 64;  // output columns per weight panel (wavenet_problem.h)
constexpr int kHeadCategorical = 0;
constexpr float kUniformEps = 1e-5f;
constexpr int kMaxThreads = 512;
// Streams a matrix-product lane accumulates at once (registers). One kernel shape for every
// batch size keeps compile time down; at batch 1 the three idle accumulators cost nothing
// that matters next to the barriers.
constexpr int kStreamTile = 4;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// Part i of [0, n) split into `parts` contiguous near-equal ranges starts here.
__host__ __device__ __forceinline__ int split_begin(int n, int parts, int i) {
  return static_cast<int>(static_cast<int64_t>(n) * i / parts);
}
// The part that owns index s (inverse of split_begin).
__host__ __device__ __forceinline__ int split_owner(int n, int parts, int s) {
  return static_cast<int>((static_cast<int64_t>(s + 1) * parts - 1) / n);
}
__host__ __device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ __forceinline__ int64_t align16(int64_t bytes) { return (bytes + 15) / 16 * 16; }

__device__ __forceinline__ int64_t positive_mod(int64_t a, int64_t m) {
  const int64_t r = a % m;
  return r < 0 ? r + m : r;
}

// ------------------------------------------------------------------------------ async copies

// 16-byte global -> shared copy that bypasses L1 (other SMs write the queues).
__device__ __forceinline__ void copy16_async_cg(float* dst, const float* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src) : "memory");
#else
  const float4 v = __ldcg(reinterpret_cast<const float4*>(src));
  *reinterpret_cast<float4*>(dst) = v;
#endif
}

// 4-byte copy of read-only data (biases).
__device__ __forceinline__ void copy4_async(float* dst, const float* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(src) : "memory");
#else
  *dst = __ldg(src);
#endif
}

__device__ __forceinline__ void async_commit_and_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

// ------------------------------------------------------------------------------ cluster

// Cluster of `size` CTAs; size 1 degenerates to one CTA and __syncthreads.
struct Cluster {
  int size;
  int rank;

  // Every thread of every CTA of the cluster arrives; release/acquire orders the shared
  // (local and distributed) and global memory accesses around it.
  __device__ __forceinline__ void sync() const {
#if WAVEGEN_HAS_CLUSTERS
    if (size > 1) {
      cg::this_cluster().sync();
      return;
    }
#endif
    __syncthreads();
  }

  // The same shared-memory object in CTA `r` of the cluster.
  template <typename T>
  __device__ __forceinline__ T* peer(T* local, int r) const {
#if WAVEGEN_HAS_CLUSTERS
    if (size > 1) return cg::this_cluster().map_shared_rank(local, static_cast<unsigned>(r));
#endif
    return local;
  }
};

// ------------------------------------------------------------------------------ shared memory

// Byte offsets of everything a CTA keeps in shared memory, computed on the host and passed to
// the kernel as parameters (constant memory, so they cost the kernel no registers). Per-CTA
// slice sizes use the largest rank's.
struct SmemLayout {
  int npmax, nsmax, nqmax, nrmax, nbpad, nwarps, nbt, max_chunks;
  int pw;  // row width of the partial-product buffer
  int conv_w, proj_w, out1_w, out2_w;  // resident weights
  int x, taps, biasb, z, a, part, skip, v, xchg, xchg_floats, scratch, unif, tok_l, tok_f, misc;
  int64_t total;

  void compute(const WaveNetParams& p, int cluster, int streams, int threads, int bytes_per_weight,
                                   int resident_layers, int head_resident, int nbt_) {
    const int C = cluster, G2 = p.G / 2, kR = p.k * p.R;
    npmax = ceil_div(G2, C);
    nsmax = ceil_div(p.S, C);
    nqmax = ceil_div(p.S, C);
    nrmax = ceil_div(p.A, C);
    nbt = nbt_;
    nbpad = ceil_div(streams, nbt) * nbt;
    nwarps = threads / 32;
    pw = p.RSp > p.Sp ? p.RSp : p.Sp;
    pw = pw > p.Ap ? pw : p.Ap;
    // Matrix-product chunks of up to 32 columns (+1 each for a range that does not start on a
    // multiple of 32): the largest product decides the scratch size.
    int chunks = 2 * (ceil_div(npmax, 32) + 1);
    chunks = chunks > p.RSp / 32 ? chunks : p.RSp / 32;
    chunks = chunks > p.Sp / 32 ? chunks : p.Sp / 32;
    chunks = chunks > p.Ap / 32 ? chunks : p.Ap / 32;
    max_chunks = chunks > nwarps ? chunks : nwarps;

    int64_t off = 0;
    const auto take = [&](int64_t bytes) {
      const int64_t at = off;
      off += align16(bytes);
      return static_cast<int>(at < (int64_t{1} << 30) ? at : (int64_t{1} << 30));  // `total` flags overflow
    };
    conv_w = take(static_cast<int64_t>(resident_layers) * 2 * kR * npmax * bytes_per_weight);
    proj_w = take(static_cast<int64_t>(resident_layers) * npmax * p.RSp * bytes_per_weight);
    out1_w = take(head_resident ? static_cast<int64_t>(nsmax) * p.Sp * bytes_per_weight : 0);
    out2_w = take(head_resident ? static_cast<int64_t>(nqmax) * p.Ap * bytes_per_weight : 0);
    const int64_t f = sizeof(float);
    // Inputs of matrix products (taps, a, v) have nbpad rows: a product reads whole stream
    // tiles, the rows past the last stream only feed accumulators that are never stored.
    const int64_t nb = streams;
    x = take(f * nb * p.R);
    taps = take(f * 2 * nbpad * kR);
    biasb = take(f * 2 * nb * 2 * npmax);
    z = take(f * nb * 2 * npmax);
    a = take(f * nbpad * npmax);
    part = take(f * nb * pw);
    skip = take(f * nb * p.Sp);
    v = take(f * nbpad * (nsmax > nqmax ? nsmax : nqmax));
    int64_t xc = static_cast<int64_t>(C) * nb * p.R;
    xc = xc > static_cast<int64_t>(C) * nb * nsmax ? xc : static_cast<int64_t>(C) * nb * nsmax;
    xc = xc > static_cast<int64_t>(C) * nb * nqmax ? xc : static_cast<int64_t>(C) * nb * nqmax;
    xc = xc > static_cast<int64_t>(C) * nb * nrmax ? xc : static_cast<int64_t>(C) * nb * nrmax;
    xc = xc > nb * p.Ap ? xc : nb * p.Ap;
    xchg_floats = static_cast<int>(align16(xc * f) / f);
    xchg = take(f * 2 * xchg_floats);
    scratch = take(f * static_cast<int64_t>(max_chunks) * nbt * 32);
    unif = take(f * nb * 2);
    tok_l = take(sizeof(int64_t) * nb);
    tok_f = take(f * nb);
    misc = take(16);  // two int64: this and the next sample's conditioning frame
    total = off;
  }
};

// ------------------------------------------------------------------------------ products

// A block of a weight matrix W (K inputs x N outputs): rows [k0, k1), columns [j0, j1).
// In shared memory it is compact, element (k, j) at base[(k-k0)*(j1-j0) + (j-j0)]; in
// global memory it is the panel layout, element (k, j) at
// base[(j/64)*k_full*64 + k*64 + j%64]. out_offset: where column j0 goes in the output row.
template <typename WT>
struct Slice {
  const WT* base;
  int in_smem;
  int k_full, k0, k1, j0, j1, out_offset;
};

template <typename WT>
__device__ __forceinline__ const WT* slice_element(const Slice<WT>& s, int k, int j, int64_t* row_stride) {
  if (s.in_smem) {
    *row_stride = s.j1 - s.j0;
    return s.base + static_cast<int64_t>(k - s.k0) * (s.j1 - s.j0) + (j - s.j0);
  }
  *row_stride = kPanel;
  return s.base + static_cast<int64_t>(j / kPanel) * s.k_full * kPanel + static_cast<int64_t>(k) * kPanel + j % kPanel;
}

__device__ __forceinline__ int slice_chunks(int j0, int j1) { return j1 > j0 ? (j1 - 1) / 32 - j0 / 32 + 1 : 0; }

// out[b][s.out_offset + j - s.j0] (= or +=) sum over k of in[b][k - s.k0] * W[k][j], for the
// columns of up to two slices and streams b < nb. Every thread of the CTA must call this.
//
// Columns go in chunks that never cross a multiple of 32 (so never a 64-wide panel). A warp
// takes one chunk: lane = (row r, column c) with c fastest, CW = chunk width rounded up to a
// power of two and RW = 32 / CW rows per step, so a warp reads RW rows of CW consecutive
// weights: coalesced in global memory, conflict-free in compact shared memory. Warps beyond
// the chunk count split the rows; partial sums are reduced with shuffles, then across warps
// in a fixed order (deterministic results).
template <typename WT, int NBT>
__device__ void matvec(const Slice<WT>* slices, int nslices, const float* in, int ldin, float* out, int ldout,
                       int nb, bool accumulate, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int chunks0 = slice_chunks(slices[0].j0, slices[0].j1);
  const int total = chunks0 + (nslices > 1 ? slice_chunks(slices[1].j0, slices[1].j1) : 0);
  if (total == 0) return;  // uniform across the CTA
  const int splits = total >= nwarps ? 1 : nwarps / total;

  const auto locate = [&](int chunk, const Slice<WT>** sl, int* cb, int* cw) {
    int q = chunk;
    *sl = &slices[0];
    if (q >= chunks0) {
      q -= chunks0;
      *sl = &slices[1];
    }
    const int base = ((*sl)->j0 / 32 + q) * 32;
    *cb = max((*sl)->j0, base);
    *cw = min((*sl)->j1, base + 32) - *cb;
  };

  for (int b0 = 0; b0 < nb; b0 += NBT) {
    for (int item = warp; item < total * splits; item += nwarps) {
      const int chunk = item % total, split = item / total;
      const Slice<WT>* sl;
      int cb, cw;
      locate(chunk, &sl, &cb, &cw);
      const int CW = cw <= 1 ? 1 : cw <= 2 ? 2 : cw <= 4 ? 4 : cw <= 8 ? 8 : cw <= 16 ? 16 : 32;
      const int RW = 32 / CW;
      const int c = lane % CW, r = lane / CW;
      const int K = sl->k1 - sl->k0;
      const int kb = sl->k0 + split_begin(K, splits, split), ke = sl->k0 + split_begin(K, splits, split + 1);
      float acc[NBT];
#pragma unroll
      for (int bb = 0; bb < NBT; ++bb) acc[bb] = 0.0f;
      if (c < cw && kb + r < ke) {
        int64_t ld;
        const WT* w = slice_element(*sl, kb + r, cb + c, &ld);
        const float* x = in + static_cast<int64_t>(b0) * ldin + (kb + r - sl->k0);
        if (sl->in_smem) {
          for (int k = kb + r; k < ke; k += RW, w += RW * ld, x += RW) {
            const float wk = to_f32(*w);
#pragma unroll
            for (int bb = 0; bb < NBT; ++bb) acc[bb] = fmaf(x[bb * ldin], wk, acc[bb]);
          }
        } else {
          for (int k = kb + r; k < ke; k += RW, w += RW * ld, x += RW) {
            const float wk = to_f32(__ldg(w));
#pragma unroll
            for (int bb = 0; bb < NBT; ++bb) acc[bb] = fmaf(x[bb * ldin], wk, acc[bb]);
          }
        }
      }
      for (int offset = CW; offset < 32; offset <<= 1) {
#pragma unroll
        for (int bb = 0; bb < NBT; ++bb) acc[bb] += __shfl_xor_sync(0xffffffffu, acc[bb], offset);
      }
      if (r == 0 && c < cw) {
        if (splits == 1) {  // this warp has the whole sum: write the output now
          const int bn = min(NBT, nb - b0);
          for (int bb = 0; bb < bn; ++bb) {
            float* o = out + static_cast<int64_t>(b0 + bb) * ldout + sl->out_offset + (cb + c - sl->j0);
            *o = accumulate ? *o + acc[bb] : acc[bb];
          }
        } else {
#pragma unroll
          for (int bb = 0; bb < NBT; ++bb) scratch[(static_cast<int64_t>(item) * NBT + bb) * 32 + c] = acc[bb];
        }
      }
    }
    __syncthreads();
    if (splits == 1) continue;  // outputs written; the barrier above publishes them
    const int bn = min(NBT, nb - b0);
    for (int idx = threadIdx.x; idx < total * NBT * 32; idx += blockDim.x) {
      const int chunk = idx / (NBT * 32), bb = (idx / 32) % NBT, c = idx % 32;
      if (bb >= bn) continue;
      const Slice<WT>* sl;
      int cb, cw;
      locate(chunk, &sl, &cb, &cw);
      if (c >= cw) continue;
      float sum = 0.0f;
      for (int split = 0; split < splits; ++split)
        sum += scratch[(static_cast<int64_t>(split * total + chunk) * NBT + bb) * 32 + c];
      float* o = out + static_cast<int64_t>(b0 + bb) * ldout + sl->out_offset + (cb + c - sl->j0);
      *o = accumulate ? *o + sum : sum;
    }
    __syncthreads();
  }
}

// ------------------------------------------------------------------------------ sampling

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Inverse-CDF pick among `count` classes with probabilities prob(i) (float, as softmax
// returns them): how many running sums, accumulated in double like torch.cumsum does, round
// to a float below u - clamped to count-1. One warp; each lane owns a contiguous block.
template <typename Prob>
__device__ int warp_inverse_cdf(int count, float u, Prob prob) {
  const int lane = threadIdx.x & 31;
  const int per = (count + 31) / 32;
  const int lo = min(count, lane * per), hi = min(count, lo + per);
  double local = 0.0;
  for (int i = lo; i < hi; ++i) local += static_cast<double>(prob(i));
  double before = local;  // inclusive scan, then make it exclusive
  for (int o = 1; o < 32; o <<= 1) {
    const double other = __shfl_up_sync(0xffffffffu, before, o);
    if (lane >= o) before += other;
  }
  before -= local;
  int below = 0;
  double cdf = before;
  for (int i = lo; i < hi; ++i) {
    cdf += static_cast<double>(prob(i));
    below += static_cast<float>(cdf) < u ? 1 : 0;
  }
  for (int o = 16; o > 0; o >>= 1) below += __shfl_xor_sync(0xffffffffu, below, o);
  return min(below, count - 1);
}

// One warp samples one stream's token from its logits (as reference.sample_from_logits).
__device__ void warp_sample(const WaveNetParams& p, const float* logits, const float* u, int64_t* tok_l,
                            float* tok_f) {
  const int lane = threadIdx.x & 31;
  if (p.head_kind == kHeadCategorical) {
    const int A = p.A;
    if (p.temperature <= 0.0f) {  // argmax, first index on ties (as torch.argmax)
      float best = -INFINITY;
      int best_i = A;
      for (int i = lane; i < A; i += 32)
        if (logits[i] > best || (logits[i] == best && i < best_i)) best = logits[i], best_i = i;
      for (int o = 16; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
        if (ob > best || (ob == best && oi < best_i)) best = ob, best_i = oi;
      }
      if (lane == 0) *tok_l = min(best_i, A - 1);
      return;
    }
    const float T = p.temperature;
    float m = -INFINITY;
    for (int i = lane; i < A; i += 32) m = fmaxf(m, logits[i] / T);
    m = warp_max(m);
    float total = 0.0f;
    for (int i = lane; i < A; i += 32) total += expf(logits[i] / T - m);
    total = warp_sum(total);
    const int pick = warp_inverse_cdf(A, u[0], [&](int i) { return expf(logits[i] / T - m) / total; });
    if (lane == 0) *tok_l = pick;
    return;
  }
  const int M = p.classes;  // mixture of logistics: weights, means, log scales
  float m = -INFINITY;
  for (int i = lane; i < M; i += 32) m = fmaxf(m, logits[i]);
  m = warp_max(m);
  float total = 0.0f;
  for (int i = lane; i < M; i += 32) total += expf(logits[i] - m);
  total = warp_sum(total);
  const int comp = warp_inverse_cdf(M, u[0], [&](int i) { return expf(logits[i] - m) / total; });
  if (lane == 0) {
    const float mean = logits[M + comp];
    const float log_scale = fmaxf(logits[2 * M + comp], p.log_scale_min);
    const float v = fminf(fmaxf(u[1], kUniformEps), 1.0f - kUniformEps);
    const float noise = logf(v) - log1pf(-v);
    *tok_f = fminf(fmaxf(mean + p.temperature * expf(log_scale) * noise, -1.0f), 1.0f);
  }
}

// ------------------------------------------------------------------------------ the kernel

struct KernelPlan {
  int cluster, streams, resident_layers, head_resident;
  SmemLayout lay;
};

template <typename WT>
__global__ void __launch_bounds__(kMaxThreads) wavenet_generate_kernel(const WaveNetParams p, const KernelPlan kp) {
  constexpr int NBT = kStreamTile;
  WAVEGEN_DYNAMIC_SHARED(smem);
  const int C = kp.cluster;
  Cluster cluster{C, 0};
#if WAVEGEN_HAS_CLUSTERS
  if (C > 1) cluster.rank = static_cast<int>(cg::this_cluster().block_rank());
#endif
  const int rank = cluster.rank;
  const int tid = threadIdx.x, nthreads = blockDim.x;
  const int NB = kp.streams;
  const int sb = static_cast<int>(blockIdx.x / C) * NB;  // first stream of this cluster
  const int nb = min(NB, p.B - sb);
  if (nb <= 0) return;  // the whole cluster leaves together

  const SmemLayout& lay = kp.lay;
  WT* conv_res = reinterpret_cast<WT*>(smem + lay.conv_w);
  WT* proj_res = reinterpret_cast<WT*>(smem + lay.proj_w);
  WT* out1_res = reinterpret_cast<WT*>(smem + lay.out1_w);
  WT* out2_res = reinterpret_cast<WT*>(smem + lay.out2_w);
  float* x = reinterpret_cast<float*>(smem + lay.x);
  float* taps = reinterpret_cast<float*>(smem + lay.taps);
  float* biasb = reinterpret_cast<float*>(smem + lay.biasb);
  float* z = reinterpret_cast<float*>(smem + lay.z);
  float* a = reinterpret_cast<float*>(smem + lay.a);
  float* part = reinterpret_cast<float*>(smem + lay.part);
  float* skip = reinterpret_cast<float*>(smem + lay.skip);
  float* v = reinterpret_cast<float*>(smem + lay.v);
  float* xchg = reinterpret_cast<float*>(smem + lay.xchg);
  float* scratch = reinterpret_cast<float*>(smem + lay.scratch);
  float* unif = reinterpret_cast<float*>(smem + lay.unif);
  int64_t* tok_l = reinterpret_cast<int64_t*>(smem + lay.tok_l);
  float* tok_f = reinterpret_cast<float*>(smem + lay.tok_f);
  int64_t* frames = reinterpret_cast<int64_t*>(smem + lay.misc);  // [0]: this sample's frame, [1]: the next

  const int R = p.R, k = p.k, kR = p.k * p.R, G2 = p.G / 2, S = p.S, A = p.A;
  const int npm = lay.npmax, nsm = lay.nsmax, nqm = lay.nqmax, nrm = lay.nrmax;
  const int64_t XF = lay.xchg_floats;
  // What this CTA owns.
  const int p0 = split_begin(G2, C, rank), np = split_begin(G2, C, rank + 1) - p0;
  const int s0 = split_begin(S, C, rank), ns = split_begin(S, C, rank + 1) - s0;
  const int q0 = s0, nq = ns;  // hidden units of the first head layer: same split as skip
  const int r0 = split_begin(A, C, rank), nr = split_begin(A, C, rank + 1) - r0;
  const int x0 = split_begin(R, C, rank), x1 = split_begin(R, C, rank + 1);  // queue columns it writes

  const WT* conv_g = static_cast<const WT*>(p.conv);
  const WT* proj_g = static_cast<const WT*>(p.proj);
  const WT* out1_g = static_cast<const WT*>(p.out1);
  const WT* out2_g = static_cast<const WT*>(p.out2);
  const int64_t conv_layer = static_cast<int64_t>(p.Gp) * kR;    // elements per layer
  const int64_t proj_layer = static_cast<int64_t>(p.RSp) * G2;
  const auto panel_at = [](const WT* base, int k_full, int kk, int j) {
    return base[static_cast<int64_t>(j / kPanel) * k_full * kPanel + static_cast<int64_t>(kk) * kPanel + j % kPanel];
  };

  // ---- copy this CTA's share of the weights into shared memory (once per launch)
  for (int l = 0; l < kp.resident_layers; ++l) {
    for (int half = 0; half < 2; ++half) {  // filter columns, then gate columns: [kR][np] each
      WT* cf = conv_res + (static_cast<int64_t>(l) * 2 + half) * kR * npm;
      for (int idx = tid; idx < kR * np; idx += nthreads)
        cf[idx] = panel_at(conv_g + l * conv_layer, kR, idx / np, half * G2 + p0 + idx % np);
    }
    WT* pf = proj_res + static_cast<int64_t>(l) * npm * p.RSp;  // [np][RSp]
    for (int idx = tid; idx < np * p.RSp; idx += nthreads)
      pf[idx] = panel_at(proj_g + l * proj_layer, G2, p0 + idx / p.RSp, idx % p.RSp);
  }
  if (kp.head_resident) {
    for (int idx = tid; idx < ns * p.Sp; idx += nthreads) out1_res[idx] = panel_at(out1_g, S, s0 + idx / p.Sp, idx % p.Sp);
    for (int idx = tid; idx < nq * p.Ap; idx += nthreads) out2_res[idx] = panel_at(out2_g, S, q0 + idx / p.Ap, idx % p.Ap);
  }

  // 16-byte copies need 16-byte aligned rows.
  const bool vec_taps = (R % 4) == 0 && (reinterpret_cast<uintptr_t>(p.queues) % 16) == 0;
  // Taps of layer l at time t and its bias columns for frame `frame` -> buffer `buf`.
  const auto prefetch_layer = [&](int l, int64_t t, int64_t frame, int buf) {
    const int64_t d = p.dilations[l], size = (k - 1) * d;
    float* tb = taps + static_cast<int64_t>(buf) * lay.nbpad * kR;
    if (vec_taps) {
      const int quads = R / 4;
      for (int idx = tid; idx < nb * (k - 1) * quads; idx += nthreads) {
        const int b = idx / ((k - 1) * quads), j = (idx / quads) % (k - 1), q = idx % quads;
        const int64_t row = p.queue_offsets[l] + positive_mod(t - (k - 1 - j) * d, size);
        copy16_async_cg(tb + b * kR + j * R + 4 * q, p.queues + ((sb + b) * p.queue_rows + row) * R + 4 * q);
      }
    } else {
      for (int idx = tid; idx < nb * (k - 1) * R; idx += nthreads) {
        const int b = idx / ((k - 1) * R), j = (idx / R) % (k - 1), r = idx % R;
        const int64_t row = p.queue_offsets[l] + positive_mod(t - (k - 1 - j) * d, size);
        tb[b * kR + j * R + r] = __ldcg(p.queues + ((sb + b) * p.queue_rows + row) * R + r);
      }
    }
    float* bb = biasb + static_cast<int64_t>(buf) * NB * 2 * npm;
    for (int idx = tid; idx < nb * 2 * np; idx += nthreads) {
      const int b = idx / (2 * np), c2 = idx % (2 * np);
      const int col = c2 < np ? p0 + c2 : G2 + p0 + (c2 - np);
      copy4_async(bb + b * 2 * npm + c2, p.bias + (sb + b) * p.bias_sb + frame * p.bias_sf + l * p.G + col);
    }
  };

  const auto clamp_frame = [&](int64_t f) { return f < 0 ? int64_t{0} : (f >= p.frames ? p.frames - 1 : f); };

  // Tokens fed at the first step.
  for (int b = tid; b < nb; b += nthreads) {
    if (p.head_kind == kHeadCategorical) {
      const int64_t t0k = p.next_long[sb + b];
      tok_l[b] = t0k < 0 ? 0 : (t0k >= p.classes ? p.classes - 1 : t0k);
    } else {
      tok_f[b] = p.next_float[sb + b];
    }
  }
  const int64_t first_frame = clamp_frame(p.frame_index[0]);
  if (tid == 0) frames[0] = first_frame;
  prefetch_layer(0, p.t0, first_frame, 0);
  async_commit_and_wait_all();
  // Staged weights and first inputs complete, and every CTA of the cluster is running
  // before anyone writes into a peer's shared memory.
  cluster.sync();

  int64_t exchange = 0;  // exchange counter: buffer parity
  const auto xbuf = [&](int64_t e) { return xchg + (e & 1) * XF; };

  for (int64_t i = 0; i < p.n; ++i) {
    const int64_t t = p.t0 + i;
    // Start loads that are consumed late (their latency hides behind the layers).
    float u0 = 0.0f, u1 = 0.0f, forced_f = 0.0f;
    int64_t forced_l = 0, frame_next = 0;
    if (tid < nb) {
      u0 = p.uniforms[(i * p.B + sb + tid) * 2];
      u1 = p.uniforms[(i * p.B + sb + tid) * 2 + 1];
      if (p.forced_long) forced_l = p.forced_long[(sb + tid) * p.n + i];
      if (p.forced_float) forced_f = p.forced_float[(sb + tid) * p.n + i];
    }
    if (tid == 0 && i + 1 < p.n) frame_next = clamp_frame(p.frame_index[i + 1]);
    const int64_t frame = frames[0];

    // x = embedding of the current token (also the newest tap of layer 0); skip sums restart.
    for (int idx = tid; idx < nb * R; idx += nthreads) {
      const int b = idx / R, r = idx % R;
      const float x0v = p.head_kind == kHeadCategorical ? p.embed[tok_l[b] * R + r] : tok_f[b] * p.embed[r] + p.embed[R + r];
      x[idx] = x0v;
      taps[b * kR + (k - 1) * R + r] = x0v;  // layer 0 uses tap buffer 0
    }
    for (int idx = tid; idx < nb * p.Sp; idx += nthreads) skip[idx] = 0.0f;
    __syncthreads();

    for (int l = 0; l < p.L; ++l) {
      const int buf = l & 1;
      const bool last = l == p.L - 1;
      if (!last) prefetch_layer(l + 1, t, frame, buf ^ 1);
      // The newest tap (x itself) is already in place: written with x at the end of the
      // previous layer (or with the embedding), followed by a barrier.
      float* tb = taps + static_cast<int64_t>(buf) * lay.nbpad * kR;

      // z (own filter and gate columns) = taps . conv
      const bool resident = l < kp.resident_layers;
      Slice<WT> conv_slices[2];
      for (int half = 0; half < 2; ++half) {
        Slice<WT>& s = conv_slices[half];
        s.in_smem = resident;
        s.base = resident ? conv_res + (static_cast<int64_t>(l) * 2 + half) * kR * npm : conv_g + l * conv_layer;
        s.k_full = kR;
        s.k0 = 0;
        s.k1 = kR;
        s.j0 = resident ? 0 : half * G2 + p0;
        s.j1 = s.j0 + np;
        s.out_offset = half * np;
      }
      matvec<WT, NBT>(conv_slices, 2, tb, kR, z, 2 * npm, nb, false, scratch);

      // a = tanh(z_f + bias_f) * sigmoid(z_g + bias_g)
      const float* bb = biasb + static_cast<int64_t>(buf) * NB * 2 * npm;
      for (int idx = tid; idx < nb * np; idx += nthreads) {
        const int b = idx / np, pp = idx % np;
        const float zf = z[b * 2 * npm + pp] + bb[b * 2 * npm + pp];
        const float zg = z[b * 2 * npm + np + pp] + bb[b * 2 * npm + np + pp];
        a[b * npm + pp] = tanhf(zf) * (1.0f / (1.0f + expf(-zg)));
      }
      __syncthreads();

      // Own rows of the residual/skip projection: part = a . proj[p0:p1, :]
      Slice<WT> proj_slice;
      proj_slice.in_smem = resident;
      proj_slice.base = resident ? proj_res + static_cast<int64_t>(l) * npm * p.RSp : proj_g + l * proj_layer;
      proj_slice.k_full = G2;
      proj_slice.k0 = resident ? 0 : p0;
      proj_slice.k1 = proj_slice.k0 + np;
      proj_slice.j0 = 0;
      proj_slice.j1 = p.RSp;
      proj_slice.out_offset = 0;
      matvec<WT, NBT>(&proj_slice, 1, a, npm, part, lay.pw, nb, false, scratch);

      // Skip partial stays here; the residual partial goes to every CTA of the cluster.
      for (int idx = tid; idx < nb * S; idx += nthreads) {
        const int b = idx / S, s = idx % S;
        skip[b * p.Sp + s] += part[b * lay.pw + R + s];
      }
      if (!last) {
        float* dst_local = xbuf(exchange);
        if (R % 4 == 0) {  // 16-byte remote stores: a quarter of the distributed-memory transactions
          const int quads = R / 4;
          for (int idx = tid; idx < C * nb * quads; idx += nthreads) {
            const int peer = idx / (nb * quads), rest = idx % (nb * quads), b = rest / quads, q = rest % quads;
            const float4 value = *reinterpret_cast<const float4*>(part + b * lay.pw + 4 * q);
            *reinterpret_cast<float4*>(cluster.peer(dst_local, peer) + (static_cast<int64_t>(rank) * NB + b) * R + 4 * q) =
                value;
          }
        } else {
          for (int idx = tid; idx < C * nb * R; idx += nthreads) {
            const int peer = idx / (nb * R), rest = idx % (nb * R), b = rest / R, r = rest % R;
            cluster.peer(dst_local, peer)[(static_cast<int64_t>(rank) * NB + b) * R + r] = part[b * lay.pw + r];
          }
        }
      }
      async_commit_and_wait_all();  // next layer's taps and biases have landed
      if (last) {
        __syncthreads();
        break;  // x after the last layer is never used; the head's first barrier covers its queue write
      }
      cluster.sync();

      // Every CTA has read layer l's taps: now x_l may overwrite the oldest tap's row.
      const float* recv = xbuf(exchange);
      const int64_t size = static_cast<int64_t>(k - 1) * p.dilations[l];
      const int64_t row = p.queue_offsets[l] + positive_mod(t, size);
      float* next_taps = taps + static_cast<int64_t>(buf ^ 1) * lay.nbpad * kR;  // disjoint from the prefetched taps
      for (int idx = tid; idx < nb * R; idx += nthreads) {
        const int b = idx / R, r = idx % R;
        const float xl = x[idx];
        if (r >= x0 && r < x1) p.queues[((sb + b) * p.queue_rows + row) * R + r] = xl;
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += recv[(static_cast<int64_t>(c) * NB + b) * R + r];
        const float next = xl + (p.res_b[l * R + r] + sum);
        x[idx] = next;
        next_taps[b * kR + (k - 1) * R + r] = next;
      }
      ++exchange;
      __syncthreads();
    }

    // ---- head, stage 1: reduce-scatter the skip sums; CTA `rank` keeps skip[s0 : s0+ns]
    {
      float* dst_local = xbuf(exchange);
      for (int idx = tid; idx < nb * S; idx += nthreads) {
        const int b = idx / S, s = idx % S;
        const int owner = split_owner(S, C, s);
        const int offset = s - split_begin(S, C, owner);
        cluster.peer(dst_local, owner)[(static_cast<int64_t>(rank) * NB + b) * nsm + offset] = skip[b * p.Sp + s];
      }
      if (tid == 0) frames[1] = frame_next;
      cluster.sync();
      // The last layer's x may now replace its oldest tap (every CTA read it before this barrier).
      {
        const int l = p.L - 1;
        const int64_t size = static_cast<int64_t>(k - 1) * p.dilations[l];
        const int64_t row = p.queue_offsets[l] + positive_mod(t, size);
        for (int idx = tid; idx < nb * R; idx += nthreads) {
          const int b = idx / R, r = idx % R;
          if (r >= x0 && r < x1) p.queues[((sb + b) * p.queue_rows + row) * R + r] = x[idx];
        }
      }
      const float* recv = xbuf(exchange);
      for (int idx = tid; idx < nb * ns; idx += nthreads) {
        const int b = idx / ns, ss = idx % ns;
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += recv[(static_cast<int64_t>(c) * NB + b) * nsm + ss];
        v[b * nsm + ss] = fmaxf(sum + p.skip_b[s0 + ss], 0.0f);
      }
      ++exchange;
      __syncthreads();
    }

    // ---- stage 2: partial hidden layer from own skip inputs; reduce-scatter it
    {
      Slice<WT> s1;
      s1.in_smem = kp.head_resident;
      s1.base = kp.head_resident ? out1_res : out1_g;
      s1.k_full = S;
      s1.k0 = kp.head_resident ? 0 : s0;
      s1.k1 = s1.k0 + ns;
      s1.j0 = 0;
      s1.j1 = p.Sp;
      s1.out_offset = 0;
      matvec<WT, NBT>(&s1, 1, v, nsm, part, lay.pw, nb, false, scratch);
      float* dst_local = xbuf(exchange);
      for (int idx = tid; idx < nb * S; idx += nthreads) {
        const int b = idx / S, q = idx % S;
        const int owner = split_owner(S, C, q);
        const int offset = q - split_begin(S, C, owner);
        cluster.peer(dst_local, owner)[(static_cast<int64_t>(rank) * NB + b) * nqm + offset] = part[b * lay.pw + q];
      }
      cluster.sync();
      // All queue writes of this sample are visible now: fetch the next sample's layer 0.
      if (i + 1 < p.n) prefetch_layer(0, t + 1, frames[1], 0);
      const float* recv = xbuf(exchange);
      for (int idx = tid; idx < nb * nq; idx += nthreads) {
        const int b = idx / nq, qq = idx % nq;
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += recv[(static_cast<int64_t>(c) * NB + b) * nqm + qq];
        v[b * nsm + qq] = fmaxf(sum + p.out1_b[q0 + qq], 0.0f);
      }
      ++exchange;
      __syncthreads();
    }

    // ---- stage 3: partial logits from own hidden units; reduce-scatter them
    {
      Slice<WT> s2;
      s2.in_smem = kp.head_resident;
      s2.base = kp.head_resident ? out2_res : out2_g;
      s2.k_full = S;
      s2.k0 = kp.head_resident ? 0 : q0;
      s2.k1 = s2.k0 + nq;
      s2.j0 = 0;
      s2.j1 = p.Ap;
      s2.out_offset = 0;
      matvec<WT, NBT>(&s2, 1, v, nsm, part, lay.pw, nb, false, scratch);
      float* dst_local = xbuf(exchange);
      for (int idx = tid; idx < nb * A; idx += nthreads) {
        const int b = idx / A, r = idx % A;
        const int owner = split_owner(A, C, r);
        const int offset = r - split_begin(A, C, owner);
        cluster.peer(dst_local, owner)[(static_cast<int64_t>(rank) * NB + b) * nrm + offset] = part[b * lay.pw + r];
      }
      if (tid < nb) {
        unif[2 * tid] = u0;
        unif[2 * tid + 1] = u1;
      }
      cluster.sync();
      ++exchange;
    }

    // ---- stage 4: own logits slice -> output, and all-gather the logits
    {
      const float* recv = xbuf(exchange - 1);
      float* dst_local = xbuf(exchange);
      for (int idx = tid; idx < nb * nr; idx += nthreads) {
        const int b = idx / nr, rr = idx % nr;
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += recv[(static_cast<int64_t>(c) * NB + b) * nrm + rr];
        const float logit = sum + p.out2_b[r0 + rr];
        if (p.logits) p.logits[(i * p.B + sb + b) * A + r0 + rr] = logit;
        for (int c = 0; c < C; ++c) cluster.peer(dst_local, c)[static_cast<int64_t>(b) * p.Ap + r0 + rr] = logit;
      }
      async_commit_and_wait_all();  // next sample's layer-0 taps and biases
      cluster.sync();
      ++exchange;
    }

    // ---- sample (every CTA, identically) or take the forced token
    {
      const float* logits = xbuf(exchange - 1);
      const int warp = tid >> 5, nwarps = nthreads >> 5;
      const bool forced = p.forced_long != nullptr || p.forced_float != nullptr;
      if (forced) {
        if (tid < nb) {
          if (p.head_kind == kHeadCategorical)
            tok_l[tid] = forced_l < 0 ? 0 : (forced_l >= p.classes ? p.classes - 1 : forced_l);
          else
            tok_f[tid] = forced_f;
        }
      } else {
        for (int b = warp; b < nb; b += nwarps)
          warp_sample(p, logits + static_cast<int64_t>(b) * p.Ap, unif + 2 * b, tok_l + b, tok_f + b);
      }
      if (tid == 0) frames[0] = frames[1];  // every thread read frames[0] at the sample's start
      __syncthreads();
      if (rank == 0 && tid < nb) {
        if (p.head_kind == kHeadCategorical)
          p.tokens_long[(sb + tid) * p.n + i] = forced ? forced_l : tok_l[tid];
        else
          p.tokens_float[(sb + tid) * p.n + i] = tok_f[tid];
      }
    }
  }
  // No CTA may leave while a peer could still write into its shared memory.
  cluster.sync();
}

// ------------------------------------------------------------------------------ host side

template <typename WT>
const void* kernel_ptr() {
  return reinterpret_cast<const void*>(&wavenet_generate_kernel<WT>);
}

const void* select_kernel(int storage) {
  if (storage == kFloat32) return kernel_ptr<float>();
  if (storage == kFloat16) return kernel_ptr<__half>();
  return kernel_ptr<__nv_bfloat16>();
}

int bytes_per_weight(int storage) { return storage == kFloat32 ? 4 : 2; }

// The value of a WAVEGEN_CUDA_* override: 0 when unset or empty, -1 when it is not a
// positive integer (a typo must not silently fall back to the planner's choice).
int env_override(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < 1 || parsed > (1L << 20)) return -1;
  return static_cast<int>(parsed);
}

// An error message with numbers in it: one buffer per thread, valid until that thread's next
// planner call (callers copy it into their exception at once).
const char* message(const char* format, ...) {
  thread_local char buffer[320];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return buffer;
}

// Shared memory for a plan, and the residency that fits into `limit` bytes (head first: it
// is small and every sample needs it; then as many layers as fit).
bool fit_residency(const WaveNetParams& p, LaunchPlan* plan, int64_t limit) {
  const int nbt = kStreamTile;
  const int bpw = bytes_per_weight(p.storage);
  SmemLayout lay;
  lay.compute(p, plan->cluster, plan->streams, plan->threads, bpw, 0, 0, nbt);
  if (lay.total > limit) return false;
  lay.compute(p, plan->cluster, plan->streams, plan->threads, bpw, 0, 1, nbt);
  plan->head_resident = lay.total <= limit ? 1 : 0;
  int layers = 0;
  for (int l = p.L; l >= 1; --l) {  // largest number of resident layers that fits
    lay.compute(p, plan->cluster, plan->streams, plan->threads, bpw, l, plan->head_resident, nbt);
    if (lay.total <= limit) {
      layers = l;
      break;
    }
  }
  plan->resident_layers = layers;
  lay.compute(p, plan->cluster, plan->streams, plan->threads, bpw, layers, plan->head_resident, nbt);
  plan->smem_bytes = lay.total;
  return true;
}

// What the kernel relies on, whoever chose the plan. One thread per stream loads its
// uniforms and forced token and stores its sampled token (the `tid < nb` sections), so a
// cluster may not advance more streams than a block has threads; blocks are whole warps
// within __launch_bounds__; clusters are powers of two up to the non-portable limit of 16.
const char* plan_invariant_error(const LaunchPlan& plan) {
  if (plan.threads < 32 || plan.threads > kMaxThreads || plan.threads % 32 != 0)
    return message("cannot plan the launch: %d threads per block; use a multiple of 32 from 32 to %d", plan.threads,
                   kMaxThreads);
  if (plan.cluster < 1 || plan.cluster > 16 || (plan.cluster & (plan.cluster - 1)) != 0)
    return message("cannot plan the launch: a cluster of %d blocks; use 1, 2, 4, 8 or 16", plan.cluster);
  if (plan.streams < 1 || plan.streams > plan.threads)
    return message("cannot plan the launch: %d streams per cluster with %d threads per block; each stream needs "
                   "its own thread, so use at most as many streams as threads",
                   plan.streams, plan.threads);
  return nullptr;
}

}  // namespace

const char* plan_wavenet(const WaveNetParams& p, LaunchPlan* plan, int force_cluster, int force_streams,
                         int force_threads) {
  if (p.L > kMaxLayers) return "too many layers for the CUDA kernel";
  // Arguments > 0 win over the environment (the emulation's tests pass them directly).
  const char* names[3] = {"WAVEGEN_CUDA_CLUSTER", "WAVEGEN_CUDA_STREAMS", "WAVEGEN_CUDA_THREADS"};
  int* forced[3] = {&force_cluster, &force_streams, &force_threads};
  for (int i = 0; i < 3; ++i) {
    if (*forced[i] > 0) continue;
    *forced[i] = env_override(names[i]);
    if (*forced[i] < 0)
      return message("cannot plan the launch: %s=%s is not a positive integer", names[i], std::getenv(names[i]));
  }
  // A forced value is checked as given, never rounded or clamped into something else.
  LaunchPlan wanted;
  wanted.threads = force_threads > 0 ? force_threads : 256;
  wanted.cluster = force_cluster > 0 ? force_cluster : 1;
  wanted.streams = force_streams > 0 ? force_streams : 1;
  if (const char* error = plan_invariant_error(wanted)) return error;
  const int threads = wanted.threads;

  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return "no CUDA device";
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return "cannot read the CUDA device's properties";
  const int64_t limit = prop.sharedMemPerBlockOptin > 0 ? prop.sharedMemPerBlockOptin : prop.sharedMemPerBlock;

  // Clusters need Hopper and this binary's sm_90+ code for the kernel.
  int max_cluster = 1;
  cudaFuncAttributes attributes;
  const void* any_kernel = select_kernel(p.storage);
  if (prop.major >= 9 && cudaFuncGetAttributes(&attributes, any_kernel) == cudaSuccess &&
      attributes.binaryVersion >= 90)
    max_cluster = 16;
  if (force_cluster > max_cluster)
    return message("cannot plan the launch: a cluster of %d blocks needs thread-block clusters (an sm_90 GPU and "
                   "sm_90 code); this GPU and build run clusters of %d",
                   force_cluster, max_cluster);

  const int sms = prop.multiProcessorCount;
  // How many clusters of C CTAs with `smem` bytes each can run at once (0: none). Clusters
  // must fit inside one GPC, so this can be fewer than sms / C.
  const auto active_clusters = [&](int C, int threads_per_cta, int64_t smem) {
    if (C == 1) return sms;
    const void* kernel = select_kernel(p.storage);
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) !=
        cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    if (C > 8 && cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(C, 1, 1);
    config.blockDim = dim3(threads_per_cta, 1, 1);
    config.dynamicSmemBytes = static_cast<size_t>(smem);
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeClusterDimension;
    attribute[0].val.clusterDim.x = C;
    attribute[0].val.clusterDim.y = 1;
    attribute[0].val.clusterDim.z = 1;
    config.attrs = attribute;
    config.numAttrs = 1;
    int active = 0;
    if (cudaOccupancyMaxActiveClusters(&active, kernel, &config) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return active;
  };

  for (int C = max_cluster; C >= 1; C /= 2) {
    if (force_cluster > 0 && C != force_cluster) continue;
    LaunchPlan candidate;
    candidate.cluster = C;
    candidate.threads = threads;
    // Streams per cluster: enough that one wave of clusters covers the batch, at most one per
    // thread. The number of clusters that fit depends on the shared memory, which depends on
    // the streams: settle it in two rounds. Forced streams are tried as given.
    int wave = std::max(1, sms / C);
    for (int round = 0; round < 2; ++round) {
      candidate.streams = force_streams > 0 ? force_streams : std::min(threads, std::max(1, ceil_div(p.B, wave)));
      while (force_streams <= 0 && !fit_residency(p, &candidate, limit) && candidate.streams > 1)
        candidate.streams = std::max(1, candidate.streams / 2);  // more waves, smaller buffers
      if (!fit_residency(p, &candidate, limit)) {
        candidate.streams = 0;
        break;
      }
      const int active = active_clusters(C, candidate.threads, candidate.smem_bytes);
      if (active < 1) {
        candidate.streams = 0;
        break;
      }
      if (active >= wave || force_streams > 0) break;
      wave = active;
    }
    if (candidate.streams < 1 || !fit_residency(p, &candidate, limit)) continue;
    // Exchange buffers and per-CTA work grow with cluster x streams; past 64 a smaller
    // cluster serves a large batch better.
    if (force_streams <= 0 && force_cluster <= 0 && C > 1 && C * candidate.streams > 64) continue;
    if (const char* error = plan_invariant_error(candidate)) return error;  // a planner bug, not the user's
    *plan = candidate;
    return nullptr;
  }
  if (force_cluster > 0 || force_streams > 0)
    return message("cannot plan the launch: %s%d blocks per cluster and %s%d streams per cluster do not fit into "
                   "this GPU's %lld bytes of shared memory per block (or no such cluster can be resident)",
                   force_cluster > 0 ? "" : "any of 1-", force_cluster > 0 ? force_cluster : max_cluster,
                   force_streams > 0 ? "" : "1-", force_streams > 0 ? force_streams : threads,
                   static_cast<long long>(limit));
  return "cannot plan the launch: no launch configuration fits this model into shared memory";
}

const char* plan_wavenet_cached(const WaveNetParams& p, LaunchPlan* plan) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return "no CUDA device";
  // Everything the plan depends on: the device, the sizes, the weight storage and the
  // overrides (a tuning sweep changes those between calls). Dilations and n do not matter.
  using Key = std::array<int64_t, 13>;
  const Key key{device, p.B, p.L, p.k, p.R, p.G, p.S, p.A, p.head_kind, p.storage,
                env_override("WAVEGEN_CUDA_CLUSTER"), env_override("WAVEGEN_CUDA_STREAMS"),
                env_override("WAVEGEN_CUDA_THREADS")};
  static std::mutex mutex;
  static std::map<Key, LaunchPlan> plans;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    const auto found = plans.find(key);
    if (found != plans.end()) {
      *plan = found->second;
      return nullptr;
    }
  }
  if (const char* error = plan_wavenet(p, plan, 0, 0, 0)) return error;  // refusals are not cached
  const std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= 4096) plans.clear();  // a bound, for callers that vary the batch without end
  plans.emplace(key, *plan);
  return nullptr;
}

const char* launch_wavenet(const WaveNetParams& p, const LaunchPlan& plan, void* stream) {
  if (p.n == 0 || p.B == 0) return nullptr;
  if (const char* error = plan_invariant_error(plan)) return error;  // never launch a plan that leaves tokens unwritten
  const int nbt = kStreamTile;
  const void* kernel = select_kernel(p.storage);
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem_bytes)) !=
      cudaSuccess)
    return "cannot reserve the kernel's shared memory";
  if (plan.cluster > 8 && cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess)
    return "this GPU does not allow clusters of more than 8 blocks";
  const int clusters = ceil_div(p.B, plan.streams);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(clusters * plan.cluster), 1, 1);
  config.blockDim = dim3(static_cast<unsigned>(plan.threads), 1, 1);
  config.dynamicSmemBytes = static_cast<size_t>(plan.smem_bytes);
  config.stream = static_cast<cudaStream_t>(stream);
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = static_cast<unsigned>(plan.cluster);
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = plan.cluster > 1 ? 1 : 0;
  KernelPlan kp{plan.cluster, plan.streams, plan.resident_layers, plan.head_resident, SmemLayout{}};
  kp.lay.compute(p, plan.cluster, plan.streams, plan.threads, bytes_per_weight(p.storage), plan.resident_layers,
                 plan.head_resident, nbt);
  cudaError_t err;
  if (p.storage == kFloat32)
    err = cudaLaunchKernelEx(&config, wavenet_generate_kernel<float>, p, kp);
  else if (p.storage == kFloat16)
    err = cudaLaunchKernelEx(&config, wavenet_generate_kernel<__half>, p, kp);
  else
    err = cudaLaunchKernelEx(&config, wavenet_generate_kernel<__nv_bfloat16>, p, kp);
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace wavegen::cuda
