// Alpha compositing along one ray (EG3D MipRayMarcher2 semantics, DESIGN.md), forward
// and closed-form backward, shared by the CPU loop and the CUDA kernel.
//
// Per ray with S sorted samples and K = S - 1 intervals:
//   delta_i = d_{i+1} - d_i, m_i = (s_i + s_{i+1}) / 2, sigma_i = softplus(m_i - 1),
//   alpha_i = 1 - exp(-sigma_i delta_i), T_0 = 1, T_{i+1} = T_i (1 - alpha_i + 1e-10),
//   w_i = alpha_i T_i, rgb = sum w_i (c_i + c_{i+1}) / 2, W = sum w_i,
//   depth = clamp(sum w_i (d_i + d_{i+1}) / 2 / W (or +inf when W == 0), d_0, d_{S-1}).
//
// Both passes read each sample's colour row once: rgb = sum_j v_j c_j with
// v_j = (w_{j-1} + w_j) / 2 (w_{-1} = w_K = 0), so dL/dc_j = v_j dL/drgb.
//
// Backward: with G_i = dL/dw_i (direct weight grad + rgb and depth contributions), the
// reverse scan R_{K-1} = 0, R_{k-1} = G_k alpha_k + (1 - alpha_k + eps) R_k gives
// dL/dalpha_k = T_k (G_k - R_k) without dividing by transmittance. A forward recompute
// parks what the reverse scan needs in the output buffers (no extra storage): T_k in
// grad_sigma[k], and when the terms come from the inputs (CUDA) and C >= 2 (a Terms
// policy with kParks), exp(-sigma_k delta_k) and softplus'(m_k - 1) in grad_rgb[k, 0:2],
// so the reverse scan computes no transcendental. It reads slot k at step k and
// overwrites it only at step k - 1.
//
// Channel loops take (lane, lanes) so a warp can split channels (CUDA) while the CPU
// uses (0, 1); `sync` orders the parked writes before their reads (and the reads before
// the overwrites) within a warp, and `reduce` sums a per-lane partial over the lanes
// (identity on the CPU).
#pragma once

#include "common.h"

namespace tri3d {

constexpr double kTransmittanceEps = 1e-10;
constexpr double kSigmaShift = 1.0;

template <typename T>
struct Interval {
  T alpha;  // 1 - exp(-sigma delta)
  T keep;   // exp(-sigma delta) = 1 - alpha
  T delta;  // d_{i+1} - d_i
  T dsig;   // softplus'(m - 1): d sigma / d m (only from interval_with_grad)
};

template <typename T>
HOST_DEVICE T midpoint_density(const T* __restrict__ sigma, int64_t i) {
  return (sigma[i] + sigma[i + 1]) * T(0.5) - T(kSigmaShift);
}

template <typename T>
HOST_DEVICE Interval<T> interval(const T* __restrict__ sigma, const T* __restrict__ depth, int64_t i) {
  Interval<T> iv;
  iv.delta = depth[i + 1] - depth[i];
  iv.keep = exp(-softplus(midpoint_density(sigma, i)) * iv.delta);
  iv.alpha = T(1) - iv.keep;
  iv.dsig = T(0);
  return iv;
}

template <typename T>
HOST_DEVICE Interval<T> interval_with_grad(const T* __restrict__ sigma, const T* __restrict__ depth, int64_t i) {
  Interval<T> iv;
  iv.delta = depth[i + 1] - depth[i];
  T sig;
  softplus_and_grad(midpoint_density(sigma, i), sig, iv.dsig);
  iv.keep = exp(-sig * iv.delta);
  iv.alpha = T(1) - iv.keep;
  return iv;
}

// Where the cores get each interval's terms. The CUDA kernels compute them from the
// inputs, shared across a warp's lanes (TermsSharedByLanes below; the backward parks them
// for its reverse scan when C >= 2, chosen per ray outside the loops, and otherwise every
// lane computes them, TermsFromInputs); the CPU loop fills a table per ray first, in a
// loop the compiler vectorizes (composite_cpu.cpp).
template <typename T>
struct TermsFromInputs {
  static constexpr bool kParks = false;  // every lane recomputes the terms, the reverse scan too
  static constexpr bool kDots = false;   // the backward computes its row dots itself
  const T* __restrict__ sigma;
  const T* __restrict__ depth;
  HOST_DEVICE void prepare(int64_t, bool) const {}
  HOST_DEVICE Interval<T> value(int64_t i) const { return interval(sigma, depth, i); }
  HOST_DEVICE Interval<T> with_grad(int64_t i) const { return interval_with_grad(sigma, depth, i); }
};

// The forward-order loops walk the intervals in chunks of kChunk: `prepare(i0, grad)`
// readies the terms of intervals i0 .. i0 + kChunk - 1, then value / with_grad read them.
// TermsSharedByLanes has each of kChunk lanes compute one interval's terms (lane j the
// interval i0 + j) and shares them, instead of every lane computing every interval's
// transcendentals. `Lanes` holds the chunk: a warp's registers and shuffles on CUDA
// (WarpLanes, kernels.cuh), an array in the host emulation that tests the chunking
// (ArrayLanes). Every lane makes the same calls (the cores' sample loops are uniform).
constexpr int kChunk = 32;

template <typename T>
struct ArrayLanes {
  Interval<T> held[kChunk];
  template <typename F>
  HOST_DEVICE void fill(F&& term_of) {
    for (int j = 0; j < kChunk; ++j) held[j] = term_of(j);
  }
  HOST_DEVICE Interval<T> get(int j) const { return held[j]; }
};

template <typename T, bool kPark, typename Lanes>
struct TermsSharedByLanes {
  static constexpr bool kParks = kPark;
  static constexpr bool kDots = false;
  const T* __restrict__ sigma;
  const T* __restrict__ depth;
  int64_t K;  // intervals of the ray
  mutable Lanes lanes;
  mutable int64_t base = 0;  // first interval of the chunk the lanes hold
  HOST_DEVICE void prepare(int64_t i0, bool grad) const {
    base = i0;
    lanes.fill([&](int j) {
      const int64_t k = i0 + j;
      if (k >= K) return Interval<T>{T(0), T(1), T(0), T(0)};
      return grad ? interval_with_grad(sigma, depth, k) : interval(sigma, depth, k);
    });
  }
  HOST_DEVICE Interval<T> value(int64_t i) const { return lanes.get(static_cast<int>(i - base)); }
  HOST_DEVICE Interval<T> with_grad(int64_t i) const { return value(i); }
};

// The CPU's per-ray tables. The backward's table also holds each row's dot with dL/drgb,
// p_j = sum_c dL/drgb_c rgb_{j,c} (summed in channel order as the cores do, so the bits are
// the same), filled for several rows at once: the cores' one-row-at-a-time sum is a chain
// of dependent adds.
template <typename T>
struct TermsFromTable {
  static constexpr bool kParks = false;
  static constexpr bool kDots = true;
  const T* __restrict__ depth;
  const T* __restrict__ keep;  // [S-1] exp(-sigma_i delta_i)
  const T* __restrict__ dsig;  // [S-1] softplus'(m_i - 1) (backward only)
  const T* __restrict__ dots;  // [S] p_j (backward only)
  HOST_DEVICE void prepare(int64_t, bool) const {}
  HOST_DEVICE T dot(int64_t row) const { return dots[row]; }
  HOST_DEVICE Interval<T> value(int64_t i) const {
    Interval<T> iv;
    iv.delta = depth[i + 1] - depth[i];
    iv.keep = keep[i];
    iv.alpha = T(1) - iv.keep;
    iv.dsig = T(0);
    return iv;
  }
  HOST_DEVICE Interval<T> with_grad(int64_t i) const {
    Interval<T> iv = value(i);
    iv.dsig = dsig[i];
    return iv;
  }
};

// A lane's channels are lane, lane + lanes, ... With kSlots > 0 (CUDA, C <= 32 over 32
// lanes: one slot) the caller guarantees C <= kSlots * lanes and the lane keeps its running
// sums (forward) and its dL/drgb (backward) in kSlots registers, so a sample costs no
// channel loop and no load or store of an accumulator; with kSlots == 0 (the CPU, wide C)
// the channel loops walk memory. Both give the same bits: the same operations in the same
// order.

// Calls f(n, c) for each register slot n of this lane whose channel c = lane + n * lanes
// exists (c < C).
template <int kSlots, typename F>
HOST_DEVICE void for_lane_slots(int lane, int lanes, int64_t C, F&& f) {
  for (int n = 0; n < kSlots; ++n) {
    const int64_t c = lane + int64_t(n) * lanes;
    if (c < C) f(n, c);
  }
}

// Forward for one ray. sigma, depth: [S]; rgb: [S, C]; out_rgb: [C]; out_depth: [1];
// out_weights: [S-1]. Every lane computes the scalars; lanes split channels and weights.
template <typename T, int kSlots = 0, typename Terms>
HOST_DEVICE void composite_forward_ray(int64_t S, int64_t C, const T* __restrict__ rgb, const T* __restrict__ depth,
                                       T* __restrict__ out_rgb, T* __restrict__ out_depth, T* __restrict__ out_weights,
                                       int lane, int lanes, const Terms& terms) {
  const T eps = T(kTransmittanceEps);
  const int64_t K = S - 1;
  T acc[kSlots > 0 ? kSlots : 1] = {};  // out_rgb of the lane's channels (kSlots > 0)
  auto add_row = [&](int64_t row, T v) {  // out_rgb += v * rgb[row] over the lane's channels
    if constexpr (kSlots > 0) {
      for_lane_slots<kSlots>(lane, lanes, C, [&](int n, int64_t c) { acc[n] += v * rgb[row * C + c]; });
    } else {
      TRI3D_NO_UNROLL for (int64_t c = lane; c < C; c += lanes) out_rgb[c] += v * rgb[row * C + c];
    }
  };
  if constexpr (kSlots == 0) {
    TRI3D_NO_UNROLL for (int64_t c = lane; c < C; c += lanes) out_rgb[c] = T(0);
  }
  T trans = T(1), wsum = T(0), dsum = T(0), w_prev = T(0);
  TRI3D_NO_UNROLL for (int64_t i0 = 0; i0 < K; i0 += kChunk) {
    terms.prepare(i0, false);
    const int64_t end = min2(K, i0 + kChunk);
    TRI3D_NO_UNROLL for (int64_t i = i0; i < end; ++i) {
      Interval<T> iv = terms.value(i);
      T w = iv.alpha * trans;
      if (lane == 0) out_weights[i] = w;
      add_row(i, (w_prev + w) * T(0.5));  // row i's coefficient
      w_prev = w;
      wsum += w;
      dsum += w * (depth[i] + depth[i + 1]) * T(0.5);
      trans *= T(1) - iv.alpha + eps;
    }
  }
  add_row(K, w_prev * T(0.5));
  if constexpr (kSlots > 0) {
    for_lane_slots<kSlots>(lane, lanes, C, [&](int n, int64_t c) { out_rgb[c] = acc[n]; });
  }
  if (lane == 0) {
    T d = wsum > T(0) ? dsum / wsum : T(INFINITY);
    out_depth[0] = min2(max2(d, depth[0]), depth[S - 1]);
  }
}

// Backward for one ray. grad_rgb_out: [C]; grad_depth_out: [1]; grad_weights_out: [S-1]
// (may be null: no gradient). Writes grad_sigma: [S] and grad_rgb: [S, C].
template <typename T, int kSlots = 0, typename Terms, typename Sync, typename Reduce>
HOST_DEVICE void composite_backward_ray(int64_t S, int64_t C, const T* __restrict__ rgb, const T* __restrict__ depth,
                                        const T* __restrict__ grad_rgb_out, const T* __restrict__ grad_depth_out,
                                        const T* __restrict__ grad_weights_out, T* __restrict__ grad_sigma,
                                        T* __restrict__ grad_rgb, int lane, int lanes, const Terms& terms, Sync sync,
                                        Reduce reduce) {
  const T eps = T(kTransmittanceEps);
  const int64_t K = S - 1;
  constexpr bool parked = Terms::kParks;  // grad_rgb rows hold keep_k and softplus' (C >= 2)
  T g_out[kSlots > 0 ? kSlots : 1] = {};  // dL/drgb of the lane's channels (kSlots > 0)
  if constexpr (kSlots > 0) {
    for_lane_slots<kSlots>(lane, lanes, C, [&](int n, int64_t c) { g_out[n] = grad_rgb_out[c]; });
  }
  auto row_dot = [&](int64_t row) -> T {  // dL/drgb . rgb[row], summed over the lanes
    T partial = T(0);
    if constexpr (Terms::kDots) {
      return terms.dot(row);
    } else if constexpr (kSlots > 0) {
      for_lane_slots<kSlots>(lane, lanes, C, [&](int n, int64_t c) { partial += g_out[n] * rgb[row * C + c]; });
    } else {
      TRI3D_NO_UNROLL for (int64_t c = lane; c < C; c += lanes) partial += grad_rgb_out[c] * rgb[row * C + c];
    }
    return reduce(partial);
  };
  auto write_row = [&](int64_t row, T v) {  // grad_rgb[row] = v dL/drgb
    if constexpr (kSlots > 0) {
      for_lane_slots<kSlots>(lane, lanes, C, [&](int n, int64_t c) { grad_rgb[row * C + c] = g_out[n] * v; });
    } else {
      TRI3D_NO_UNROLL for (int64_t c = lane; c < C; c += lanes) grad_rgb[row * C + c] = grad_rgb_out[c] * v;
    }
  };
  // Pass 1: forward recompute of T_k and the depth totals; park the per-interval terms.
  T trans = T(1), wsum = T(0), dsum = T(0);
  TRI3D_NO_UNROLL for (int64_t i0 = 0; i0 < K; i0 += kChunk) {
    terms.prepare(i0, true);
    const int64_t end = min2(K, i0 + kChunk);
    TRI3D_NO_UNROLL for (int64_t i = i0; i < end; ++i) {
      Interval<T> iv = terms.with_grad(i);
      if (lane == 0) {
        grad_sigma[i] = trans;
        if (parked) {
          grad_rgb[i * C] = iv.keep;
          grad_rgb[i * C + 1] = iv.dsig;
        }
      }
      T w = iv.alpha * trans;
      wsum += w;
      dsum += w * (depth[i] + depth[i + 1]) * T(0.5);
      trans *= T(1) - iv.alpha + eps;
    }
  }
  sync();
  // The clamped normalized depth passes gradient only strictly inside [d_0, d_{S-1}].
  T gdepth = T(0), depth_val = T(0);
  if (wsum > T(0)) {
    depth_val = dsum / wsum;
    if (depth_val > depth[0] && depth_val < depth[S - 1]) gdepth = grad_depth_out[0] / wsum;
  }
  // Pass 2: reverse scan. p_j = dL/drgb . c_j (each row's dot once); row k + 1 of
  // grad_rgb is complete at step k, when w_k is known.
  T p_next = row_dot(K);
  T R = T(0), gm_next = T(0), w_next = T(0);
  TRI3D_NO_UNROLL for (int64_t k = K - 1; k >= 0; --k) {
    Interval<T> iv;
    if (parked) {
      iv.delta = depth[k + 1] - depth[k];
      iv.keep = grad_rgb[k * C];
      iv.dsig = grad_rgb[k * C + 1];
      iv.alpha = T(1) - iv.keep;
    } else {
      iv = terms.with_grad(k);
    }
    T t_k = grad_sigma[k];
    T w = iv.alpha * t_k;
    T p_k = row_dot(k);
    // G_k = dL/dw_k: direct + rgb + depth.
    T G = (grad_weights_out ? grad_weights_out[k] : T(0)) + (p_k + p_next) * T(0.5);
    G += gdepth * ((depth[k] + depth[k + 1]) * T(0.5) - depth_val);
    T g_alpha = t_k * (G - R);
    R = G * iv.alpha + (T(1) - iv.alpha + eps) * R;
    T gm = g_alpha * iv.delta * iv.keep * iv.dsig;
    sync();  // every lane has read slot k + 1 (at step k + 1) and slot k before they are overwritten
    if (lane == 0) grad_sigma[k + 1] = (gm + gm_next) * T(0.5);
    write_row(k + 1, (w + w_next) * T(0.5));  // row k + 1's coefficient
    gm_next = gm;
    w_next = w;
    p_next = p_k;
  }
  sync();
  if (lane == 0) grad_sigma[0] = gm_next * T(0.5);
  write_row(0, w_next * T(0.5));
}

}  // namespace tri3d
