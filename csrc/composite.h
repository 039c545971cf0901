// Alpha compositing along one ray (EG3D MipRayMarcher2 semantics, DESIGN.md), forward
// and closed-form backward, shared by the CPU loop and the CUDA kernel.
//
// Per ray with S sorted samples and K = S - 1 intervals:
//   delta_i = d_{i+1} - d_i, m_i = (s_i + s_{i+1}) / 2, sigma_i = softplus(m_i - 1),
//   alpha_i = 1 - exp(-sigma_i delta_i), T_0 = 1, T_{i+1} = T_i (1 - alpha_i + 1e-10),
//   w_i = alpha_i T_i, rgb = sum w_i (c_i + c_{i+1}) / 2, W = sum w_i,
//   depth = clamp(sum w_i (d_i + d_{i+1}) / 2 / W (or +inf when W == 0), d_0, d_{S-1}).
//
// Backward: with G_i = dL/dw_i (direct weight grad + rgb and depth contributions), the
// reverse scan R_{K-1} = 0, R_{k-1} = G_k alpha_k + (1 - alpha_k + eps) R_k gives
// dL/dalpha_k = T_k (G_k - R_k) without dividing by transmittance. T_k comes from a
// forward recompute parked in the grad_sigma slots (no extra storage): slot k holds T_k
// until the reverse scan has passed it.
//
// Channel loops take (lane, lanes) so a warp can split channels (CUDA) while the CPU
// uses (0, 1); `sync` orders the parked T_k writes before their reads within a warp and
// `reduce` sums a per-lane partial over the lanes (identity on the CPU).
#pragma once

#include "common.h"

namespace tri3d {

constexpr double kTransmittanceEps = 1e-10;
constexpr double kSigmaShift = 1.0;

template <typename T>
struct Interval {
  T alpha;       // 1 - exp(-sigma delta)
  T keep;        // exp(-sigma delta) = 1 - alpha
  T delta;
  T m;           // midpoint raw density
};

template <typename T>
HOST_DEVICE Interval<T> interval(const T* sigma, const T* depth, int64_t i) {
  Interval<T> iv;
  iv.delta = depth[i + 1] - depth[i];
  iv.m = (sigma[i] + sigma[i + 1]) * T(0.5);
  T sig = softplus(iv.m - T(kSigmaShift));
  iv.keep = exp(-sig * iv.delta);
  iv.alpha = T(1) - iv.keep;
  return iv;
}

// Forward for one ray. sigma, depth: [S]; rgb: [S, C]; out_rgb: [C]; out_depth: [1];
// out_weights: [S-1]. Every lane computes the scalars; lanes split channels and weights.
template <typename T>
HOST_DEVICE void composite_forward_ray(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                                       T* out_depth, T* out_weights, int lane, int lanes) {
  const T eps = T(kTransmittanceEps);
  for (int64_t c = lane; c < C; c += lanes) out_rgb[c] = T(0);
  T trans = T(1), wsum = T(0), dsum = T(0);
  for (int64_t i = 0; i < S - 1; ++i) {
    Interval<T> iv = interval(sigma, depth, i);
    T w = iv.alpha * trans;
    if (lane == 0) out_weights[i] = w;
    for (int64_t c = lane; c < C; c += lanes) out_rgb[c] += w * (rgb[i * C + c] + rgb[(i + 1) * C + c]) * T(0.5);
    wsum += w;
    dsum += w * (depth[i] + depth[i + 1]) * T(0.5);
    trans *= T(1) - iv.alpha + eps;
  }
  if (lane == 0) {
    T d = wsum > T(0) ? dsum / wsum : T(INFINITY);
    out_depth[0] = min2(max2(d, depth[0]), depth[S - 1]);
  }
}

// Backward for one ray. grad_rgb_out: [C]; grad_depth_out: [1]; grad_weights_out: [S-1]
// (may be null: no gradient). Writes grad_sigma: [S] and grad_rgb: [S, C].
template <typename T, typename Sync, typename Reduce>
HOST_DEVICE void composite_backward_ray(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                        const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                                        T* grad_sigma, T* grad_rgb, int lane, int lanes, Sync sync, Reduce reduce) {
  const T eps = T(kTransmittanceEps);
  const int64_t K = S - 1;
  // Pass 1: forward recompute of T_k (parked in grad_sigma[k]) and the depth totals.
  T trans = T(1), wsum = T(0), dsum = T(0);
  for (int64_t i = 0; i < K; ++i) {
    Interval<T> iv = interval(sigma, depth, i);
    if (lane == 0) grad_sigma[i] = trans;
    T w = iv.alpha * trans;
    wsum += w;
    dsum += w * (depth[i] + depth[i + 1]) * T(0.5);
    trans *= T(1) - iv.alpha + eps;
  }
  sync();
  // The clamped normalized depth passes gradient only strictly inside [d_0, d_{S-1}].
  T gdepth = T(0), depth_val = T(0);
  if (wsum > T(0)) {
    depth_val = dsum / wsum;
    if (depth_val > depth[0] && depth_val < depth[S - 1]) gdepth = grad_depth_out[0] / wsum;
  }
  // Pass 2: reverse scan.
  for (int64_t c = lane; c < C; c += lanes) grad_rgb[K * C + c] = T(0);
  T R = T(0), gm_next = T(0);
  for (int64_t k = K - 1; k >= 0; --k) {
    Interval<T> iv = interval(sigma, depth, k);
    T t_k = grad_sigma[k];
    T w = iv.alpha * t_k;
    // G_k = dL/dw_k: direct + rgb (channel dot product split over lanes) + depth.
    T partial = T(0);
    for (int64_t c = lane; c < C; c += lanes) partial += grad_rgb_out[c] * (rgb[k * C + c] + rgb[(k + 1) * C + c]);
    T G = (grad_weights_out ? grad_weights_out[k] : T(0)) + reduce(partial) * T(0.5);
    G += gdepth * ((depth[k] + depth[k + 1]) * T(0.5) - depth_val);
    T g_alpha = t_k * (G - R);
    R = G * iv.alpha + (T(1) - iv.alpha + eps) * R;
    T gm = g_alpha * iv.delta * iv.keep * softplus_grad(iv.m - T(kSigmaShift));
    sync();
    if (lane == 0) grad_sigma[k + 1] = (gm + gm_next) * T(0.5);  // slot k+1's T is no longer needed
    gm_next = gm;
    // rgb: c_mid_k = (c_k + c_{k+1}) / 2 gets grad_rgb_out * w_k.
    for (int64_t c = lane; c < C; c += lanes) {
      T g = grad_rgb_out[c] * w * T(0.5);
      grad_rgb[(k + 1) * C + c] += g;
      grad_rgb[k * C + c] = g;
    }
  }
  sync();
  if (lane == 0) grad_sigma[0] = gm_next * T(0.5);
}

}  // namespace tri3d
