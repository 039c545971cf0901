// CPU loops over rays (OpenMP) around the shared per-ray cores. Each ray's interval
// terms (and, backward, its row dots) come from a table filled first in a vectorizable
// loop (vector_math_cpu.h for float; the C library for double), in a scratch buffer per
// thread.
//
// The per-ray work is compiled for AVX2 and for the baseline ISA (cpu_clones.h); both
// give the same bits.
#include <vector>

#include "cpu_clones.h"
#include "composite.h"
#include "importance.h"
#include "ops.h"
#include "vector_math_cpu.h"

namespace tri3d {

namespace {
struct NoSync {
  void operator()() const {}
};
struct Identity {
  template <typename T>
  T operator()(T x) const { return x; }
};

// keep[i] = exp(-softplus(m_i - 1) delta_i) and, when dsig is given, softplus'(m_i - 1),
// for the K = S - 1 intervals of one ray.
TRI3D_INLINE_INTO_CLONES void fill_terms(int64_t K, const float* __restrict__ sigma, const float* __restrict__ depth, float* __restrict__ keep,
                float* __restrict__ dsig) {
  const float shift = static_cast<float>(kSigmaShift);
  if (dsig == nullptr) {
    for (int64_t i = 0; i < K; ++i) {
      const float x = (sigma[i] + sigma[i + 1]) * 0.5f - shift;
      const float softplus = vector_math::log1p(vector_math::exp(x));
      keep[i] = vector_math::exp(-(x > 20.0f ? x : softplus) * (depth[i + 1] - depth[i]));
    }
    return;
  }
  for (int64_t i = 0; i < K; ++i) {  // the same, plus softplus' from the same exp
    const float x = (sigma[i] + sigma[i + 1]) * 0.5f - shift;
    const float z = vector_math::exp(x);
    const float softplus = vector_math::log1p(z);
    const float grad = z / (z + 1.0f);
    keep[i] = vector_math::exp(-(x > 20.0f ? x : softplus) * (depth[i + 1] - depth[i]));
    dsig[i] = x > 20.0f ? 1.0f : grad;
  }
}

TRI3D_INLINE_INTO_CLONES void fill_terms(int64_t K, const double* sigma, const double* depth, double* keep, double* dsig) {
  for (int64_t i = 0; i < K; ++i) {
    Interval<double> iv = dsig ? interval_with_grad(sigma, depth, i) : interval(sigma, depth, i);
    keep[i] = iv.keep;
    if (dsig) dsig[i] = iv.dsig;
  }
}

// dots[j] = sum_c g[c] rgb[j, c] for the S rows of one ray, each summed in channel order
// from 0 (the bits of the cores' own loop), four rows at a time: four independent chains of
// adds instead of one (GCC keeps the order and vectorizes across the four rows).
template <typename T>
TRI3D_INLINE_INTO_CLONES void fill_row_dots(int64_t S, int64_t C, const T* __restrict__ rgb, const T* __restrict__ g, T* __restrict__ dots) {
  int64_t j = 0;
  for (; j + 4 <= S; j += 4) {
    const T* r = rgb + j * C;
    T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
    for (int64_t c = 0; c < C; ++c) {
      s0 += g[c] * r[c];
      s1 += g[c] * r[C + c];
      s2 += g[c] * r[2 * C + c];
      s3 += g[c] * r[3 * C + c];
    }
    dots[j] = s0;
    dots[j + 1] = s1;
    dots[j + 2] = s2;
    dots[j + 3] = s3;
  }
  for (; j < S; ++j) {
    T sum = T(0);
    for (int64_t c = 0; c < C; ++c) sum += g[c] * rgb[j * C + c];
    dots[j] = sum;
  }
}

// One ray of each pass; keep, dsig: [S-1] and dots: [S] are the thread's scratch tables.
template <typename T>
TRI3D_INLINE_INTO_CLONES void forward_ray(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                          T* out_rgb, T* out_depth, T* out_weights, T* keep) {
  fill_terms(S - 1, sigma, depth, keep, nullptr);
  composite_forward_ray<T>(S, C, rgb, depth, out_rgb, out_depth, out_weights, 0, 1,
                           TermsFromTable<T>{depth, keep, nullptr, nullptr});
}

template <typename T>
TRI3D_INLINE_INTO_CLONES void backward_ray(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                           const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                                           T* grad_sigma, T* grad_rgb, T* keep, T* dsig, T* dots) {
  fill_terms(S - 1, sigma, depth, keep, dsig);
  fill_row_dots(S, C, rgb, grad_rgb_out, dots);
  composite_backward_ray<T>(S, C, rgb, depth, grad_rgb_out, grad_depth_out, grad_weights_out, grad_sigma, grad_rgb, 0,
                            1, TermsFromTable<T>{depth, keep, dsig, dots}, NoSync(), Identity());
}

// The cloned entry points (one per dtype: GCC clones functions, not templates).
#define TRI3D_RAY_CLONES(T)                                                                                        \
  TRI3D_CPU_CLONES void forward_ray_cpu(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,        \
                                        T* out_rgb, T* out_depth, T* out_weights, T* keep) {                       \
    forward_ray<T>(S, C, sigma, rgb, depth, out_rgb, out_depth, out_weights, keep);                               \
  }                                                                                                                \
  TRI3D_CPU_CLONES void backward_ray_cpu(int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,       \
                                         const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out, \
                                         T* grad_sigma, T* grad_rgb, T* keep, T* dsig, T* dots) {                  \
    backward_ray<T>(S, C, sigma, rgb, depth, grad_rgb_out, grad_depth_out, grad_weights_out, grad_sigma, grad_rgb,  \
                    keep, dsig, dots);                                                                             \
  }
TRI3D_RAY_CLONES(float)
TRI3D_RAY_CLONES(double)
#undef TRI3D_RAY_CLONES
}  // namespace

template <typename T>
void composite_forward_cpu(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                           T* out_depth, T* out_weights) {
#pragma omp parallel
  {
    std::vector<T> keep(S - 1);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < M; ++r) {
      forward_ray_cpu(S, C, sigma + r * S, rgb + r * S * C, depth + r * S, out_rgb + r * C, out_depth + r,
                      out_weights + r * (S - 1), keep.data());
    }
  }
}

template <typename T>
void composite_backward_cpu(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                            const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                            T* grad_sigma, T* grad_rgb) {
#pragma omp parallel
  {
    std::vector<T> keep(S - 1), dsig(S - 1), dots(S);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < M; ++r) {
      backward_ray_cpu(S, C, sigma + r * S, rgb + r * S * C, depth + r * S, grad_rgb_out + r * C, grad_depth_out + r,
                       grad_weights_out ? grad_weights_out + r * (S - 1) : nullptr, grad_sigma + r * S,
                       grad_rgb + r * S * C, keep.data(), dsig.data(), dots.data());
    }
  }
}

template <typename T>
void importance_cpu(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const T* w = weights + r * (S - 1);
    T total = importance_total(w, S);
    for (int64_t j = 0; j < n; ++j) out[r * n + j] = importance_sample_one(depth + r * S, w, S, total, u[r * n + j]);
  }
}

template <typename T>
void merge_sorted_cpu(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth, int64_t* order) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    merge_sorted_ray(S, n, coarse + r * S, fine + r * n, out_depth + r * (S + n), order + r * (S + n));
  }
}

#define TRI3D_INSTANTIATE(T)                                                                                    \
  template void composite_forward_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, T*, T*);         \
  template void composite_backward_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, \
                                          const T*, T*, T*);                                                    \
  template void importance_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*);                       \
  template void merge_sorted_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, int64_t*);
TRI3D_INSTANTIATE(float)
TRI3D_INSTANTIATE(double)
#undef TRI3D_INSTANTIATE

}  // namespace tri3d
