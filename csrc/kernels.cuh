// The CUDA kernels around the shared per-ray cores, device code only: compiled by nvcc
// into tri3d._C (composite_cuda.cu launches them) and by NVRTC at run time for the
// no-build path (tri3d/_nvrtc.py names them `tri3d::kernels::<name><T>`). Compositing:
// one warp per ray, lanes split the channels (coalesced [S, C] rows) and compute the
// per-interval terms for 32 intervals at a time, one each, shared by shuffles. Importance
// sampling: one thread per (ray, fine sample). Merging: one thread per ray. bias_act: one
// thread per element (bias_act.h's core).
#pragma once

#include "bias_act.h"
#include "composite.h"
#include "importance.h"

namespace tri3d {
namespace kernels {

// Launch shapes, read by both launchers (composite_cuda.cu and tri3d/_nvrtc.py).
constexpr int kWarpsPerBlock = 4;       // compositing: rays (warps) per block
constexpr int kImportanceThreads = 256;  // importance sampling: threads per block
constexpr int kMergeThreads = 128;       // merging: threads (rays) per block
constexpr int kBiasActThreads = 256;     // bias_act: threads (elements of a row) per block
constexpr int kMaxGridY = 65535;         // CUDA's limit on gridDim.y: bias_act's rows loop over it
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

// The activation's flags as one kernel argument (NVRTC launches pass plain scalars).
constexpr int kBiasActLinear = 1;   // act is the identity
constexpr int kBiasActClamped = 2;  // the clamp applies

template <typename T>
__device__ BiasAct<T> bias_act_of(T alpha, T gain, T clamp, int flags) {
  return {alpha, gain, clamp, (flags & kBiasActLinear) != 0, (flags & kBiasActClamped) != 0};
}

// x, y: [outer, C, inner] seen as rows of `cols` elements: the outer * C rows of inner
// elements, row r holding channel r % C (inner != 1; an empty map, inner 0, has no
// columns), or the outer rows of C channels (inner == 1: channels-last maps, [N, C]
// activations). Grid: x over a row's elements (kBiasActThreads a block), y over the rows,
// looping when there are more than kMaxGridY; each thread tracks its row's channel
// without dividing per element. bias may be null.
template <typename T>
__global__ void bias_act_forward_kernel(int64_t outer, int64_t C, int64_t inner, const T* x, const T* bias, T alpha,
                                        T gain, T clamp, int flags, T* y) {
  const bool rows_are_channels = inner != 1;
  const int64_t rows = rows_are_channels ? outer * C : outer;
  const int64_t cols = rows_are_channels ? inner : C;
  const int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  const BiasAct<T> a = bias_act_of(alpha, gain, clamp, flags);
  const int64_t row_step = gridDim.y;
  // The step of a row's channel from one loop pass to the next: a second division per
  // thread, needed only when the grid has fewer rows than the map (uniform across it).
  const int64_t channel_step = rows_are_channels && rows > row_step ? row_step % C : 0;
  int64_t channel = rows_are_channels ? (int64_t)blockIdx.y % C : col;
  for (int64_t r = blockIdx.y; r < rows; r += row_step) {
    const int64_t i = r * cols + col;
    y[i] = bias_act_value(x[i], bias != nullptr, bias != nullptr ? bias[channel] : T(0), a);
    if (rows_are_channels) {
      channel += channel_step;
      if (channel >= C) channel -= C;
    }
  }
}

// grad_x from the forward's output y and grad_y: n elements, one thread each (a grid-stride
// loop past the grid's size).
template <typename T>
__global__ void bias_act_backward_kernel(int64_t n, const T* y, const T* grad_y, T alpha, T gain, T clamp, int flags,
                                         T* grad_x) {
  const BiasAct<T> a = bias_act_of(alpha, gain, clamp, flags);
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    grad_x[i] = bias_act_grad(y[i], grad_y[i], a);
  }
}

}  // namespace kernels
}  // namespace tri3d
