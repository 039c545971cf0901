// Importance sampling of one ray from its coarse compositing weights (EG3D semantics,
// DESIGN.md), shared by the CPU loop and the CUDA kernel.
//
// depth: [S] sorted coarse depths; weights: [S-1]; u: [n] uniforms in [0, 1).
// Smoothed weights a_j = (max(w_{j-1}, w_j) + max(w_j, w_{j+1})) / 2 + 0.01 (edges use the
// one neighbour there is); the interior a_1 .. a_{S-3}, plus 1e-5, are a piecewise
// constant density over the bins between coarse midpoints mid_0 .. mid_{S-3}; each u is
// mapped through the inverse CDF (searchsorted right, EG3D's below/above clamping).
#pragma once

#include "common.h"

namespace tri3d {

constexpr double kWeightFloor = 0.01;
constexpr double kPdfEps = 1e-5;

template <typename T>
HOST_DEVICE T smoothed_weight(const T* w, int64_t L, int64_t j) {
  T left = j > 0 ? max2(w[j - 1], w[j]) : w[j];
  T right = j < L - 1 ? max2(w[j], w[j + 1]) : w[j];
  return (left + right) * T(0.5) + T(kWeightFloor);
}

// Sum of the interior smoothed weights (+ eps each): the CDF normalizer.
template <typename T>
HOST_DEVICE T importance_total(const T* w, int64_t S) {
  const int64_t L = S - 1;
  T total = T(0);
  for (int64_t j = 1; j < L - 1; ++j) total += smoothed_weight(w, L, j) + T(kPdfEps);
  return total;
}

// Unnormalized CDF at index k (k = 0 .. K, K = S - 3): sum of the first k densities.
// Inverse CDF of one u by a linear walk over the bins (S is small: 48 to 128).
template <typename T>
HOST_DEVICE T importance_sample_one(const T* depth, const T* w, int64_t S, T total, T u) {
  const int64_t L = S - 1, K = S - 3;
  const T eps = T(kPdfEps);
  // cdf_0 = 0; cdf_k = sum_{j<k} p_j. searchsorted(right): idx = #{k : cdf_k <= u}.
  T cdf_lo = T(0), cdf_hi = T(0);
  int64_t idx = 1;  // cdf_0 = 0 <= u always
  T cdf = T(0);
  for (int64_t k = 1; k <= K; ++k) {
    T next = cdf + (smoothed_weight(w, L, k) + eps) / total;  // cdf_k, density p_{k-1} = a_k
    if (next <= u) {
      cdf = next;
      idx = k + 1;
    } else {
      break;
    }
  }
  int64_t below = idx - 1 < 0 ? 0 : idx - 1;
  int64_t above = idx > K ? K : idx;
  // cdf values at below / above (recomputed: below is the last cdf <= u).
  cdf_lo = cdf;
  cdf_hi = above == below ? cdf : cdf + (smoothed_weight(w, L, above) + eps) / total;
  T bin_lo = (depth[below] + depth[below + 1]) * T(0.5);
  T bin_hi = (depth[above] + depth[above + 1]) * T(0.5);
  T denom = cdf_hi - cdf_lo;
  if (denom < eps) denom = T(1);
  return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo);
}

}  // namespace tri3d

namespace tri3d {

// Fine samples per ray the native merge takes; merge_samples uses the reference above this.
constexpr int kMergeMaxFine = 128;

// Merge one ray's sorted coarse depths [S] with its unsorted fine depths [n <= kMergeMaxFine]
// into sorted depths [S + n] and the order [S + n] (indices into concat(coarse, fine)). The
// fine depths and their indices are insertion-sorted (stably) in arrays local to the ray (a
// thread's registers / local memory on CUDA, interleaved across a warp's threads; the stack
// on the CPU), so a step reads no index before its value; the two-pointer merge then takes
// coarse first on ties.
template <typename T>
HOST_DEVICE void merge_sorted_ray(int64_t S, int64_t n, const T* __restrict__ coarse, const T* __restrict__ fine,
                                  T* __restrict__ out_depth, int64_t* __restrict__ order) {
  T vals[kMergeMaxFine];   // the fine depths, sorted so far
  int idx[kMergeMaxFine];  // their indices into fine
  for (int j = 0; j < n; ++j) {
    const T v = fine[j];
    int k = j;
    while (k > 0 && vals[k - 1] > v) {
      vals[k] = vals[k - 1];
      idx[k] = idx[k - 1];
      --k;
    }
    vals[k] = v;
    idx[k] = j;
  }
  int64_t i = 0;
  int j = 0;
  while (i < S || j < n) {
    const bool take_coarse = j >= n || (i < S && coarse[i] <= vals[j]);
    out_depth[i + j] = take_coarse ? coarse[i] : vals[j];
    order[i + j] = take_coarse ? i : S + idx[j];
    if (take_coarse) {
      ++i;
    } else {
      ++j;
    }
  }
}

}  // namespace tri3d
