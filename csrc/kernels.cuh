// The CUDA kernels around the shared per-ray cores, device code only: compiled by nvcc
// into tri3d._C (composite_cuda.cu launches them) and by NVRTC at run time for the
// no-build path (tri3d/_nvrtc.py names them `tri3d::kernels::<name><T>`). Compositing:
// one warp per ray, lanes split the channels (coalesced [S, C] rows) and compute the
// per-interval terms for 32 intervals at a time, one each, shared by shuffles. Importance
// sampling: one thread per (ray, fine sample). Merging: one thread per ray.
#pragma once

#include "composite.h"
#include "importance.h"

namespace tri3d {
namespace kernels {

// Launch shapes, read by both launchers (composite_cuda.cu and tri3d/_nvrtc.py).
constexpr int kWarpsPerBlock = 4;       // compositing: rays (warps) per block
constexpr int kImportanceThreads = 256;  // importance sampling: threads per block
constexpr int kMergeThreads = 128;       // merging: threads (rays) per block
// Compositing keeps a lane's channels in registers (composite.h's kSlots) when C is at most
// this (one channel per lane: the decoder's 32 features, and the coarse pass's none).
constexpr int kRegisterChannels = 32;
constexpr int kLaneSlots = kRegisterChannels / 32;  // composite.h's kSlots: registers per lane
// Resident compositing blocks per SM the forward is compiled for: 16 (full occupancy, 32
// registers) in fp32, which it reaches without spilling; fp64 needs more registers.
template <typename T>
constexpr int kForwardBlocksPerSM = sizeof(T) == 4 ? 16 : 8;

struct WarpSync {
  __device__ void operator()() const { __syncwarp(); }
};
// A chunk of interval terms held one per lane (TermsSharedByLanes, composite.h).
template <typename T>
struct WarpLanes {
  int lane;
  T keep, delta, dsig;  // this lane's interval
  template <typename F>
  __device__ void fill(F&& term_of) {
    const Interval<T> iv = term_of(lane);
    keep = iv.keep;
    delta = iv.delta;
    dsig = iv.dsig;
  }
  __device__ Interval<T> get(int j) const {
    Interval<T> iv;
    iv.keep = __shfl_sync(0xffffffffu, keep, j);
    iv.delta = __shfl_sync(0xffffffffu, delta, j);
    iv.dsig = __shfl_sync(0xffffffffu, dsig, j);
    iv.alpha = T(1) - iv.keep;
    return iv;
  }
};

struct WarpSum {
  template <typename T>
  __device__ T operator()(T x) const {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
  }
};

template <typename T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, kForwardBlocksPerSM<T>)
    composite_forward_kernel(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                             T* out_rgb, T* out_depth, T* out_weights) {
  int64_t r = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= M) return;
  const int lane = threadIdx.x % 32;
  const TermsSharedByLanes<T, false, WarpLanes<T>> terms{sigma + r * S, depth + r * S, S - 1, {lane}};
  if (C <= kRegisterChannels) {  // one version of the loops per case, chosen per launch
    composite_forward_ray<T, kLaneSlots>(S, C, rgb + r * S * C, depth + r * S, out_rgb + r * C, out_depth + r,
                                out_weights + r * (S - 1), lane, 32, terms);
  } else {
    composite_forward_ray<T, 0>(S, C, rgb + r * S * C, depth + r * S, out_rgb + r * C, out_depth + r,
                                out_weights + r * (S - 1), lane, 32, terms);
  }
}

template <typename T>
__global__ void composite_backward_kernel(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                          const T* grad_rgb_out, const T* grad_depth_out,
                                          const T* grad_weights_out, T* grad_sigma, T* grad_rgb) {
  int64_t r = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= M) return;  // whole warps exit together: r is uniform across a warp
  const T* grad_weights = grad_weights_out ? grad_weights_out + r * (S - 1) : nullptr;
  const int lane = threadIdx.x % 32;
  // One version of the loops per case, chosen per launch: grad_rgb rows have room to park
  // the terms when C >= 2; otherwise the reverse scan recomputes its terms in descending
  // order, each lane all of them.
  const TermsSharedByLanes<T, true, WarpLanes<T>> parked{sigma + r * S, depth + r * S, S - 1, {lane}};
  if (C < 2) {
    composite_backward_ray<T, kLaneSlots>(S, C, rgb + r * S * C, depth + r * S, grad_rgb_out + r * C, grad_depth_out + r,
                                 grad_weights, grad_sigma + r * S, grad_rgb + r * S * C, lane, 32,
                                 TermsFromInputs<T>{sigma + r * S, depth + r * S}, WarpSync(), WarpSum());
  } else if (C <= kRegisterChannels) {
    composite_backward_ray<T, kLaneSlots>(S, C, rgb + r * S * C, depth + r * S, grad_rgb_out + r * C, grad_depth_out + r,
                                 grad_weights, grad_sigma + r * S, grad_rgb + r * S * C, lane, 32, parked, WarpSync(),
                                 WarpSum());
  } else {
    composite_backward_ray<T, 0>(S, C, rgb + r * S * C, depth + r * S, grad_rgb_out + r * C, grad_depth_out + r,
                                 grad_weights, grad_sigma + r * S, grad_rgb + r * S * C, lane, 32, parked, WarpSync(),
                                 WarpSum());
  }
}

template <typename T>
__global__ void importance_kernel(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u,
                                  T* out_depths) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M * n) return;
  int64_t r = i / n;
  const T* w = weights + r * (S - 1);
  out_depths[i] = importance_sample_one(depth + r * S, w, S, importance_total(w, S), u[i]);
}

template <typename T>
__global__ void merge_sorted_kernel(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth,
                                    int64_t* order) {
  int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= M) return;
  merge_sorted_ray(S, n, coarse + r * S, fine + r * n, out_depth + r * (S + n), order + r * (S + n));
}

}  // namespace kernels
}  // namespace tri3d
