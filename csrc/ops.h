// Entry points of the native ops over raw pointers (contiguous arrays), one set per
// backend. M = number of rays, S = samples per ray, C = channels, n = fine samples.
#pragma once

#include <cstdint>

#include "bias_act.h"

namespace tri3d {

template <typename T>
void composite_forward_cpu(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                           T* out_depth, T* out_weights);

template <typename T>
void composite_backward_cpu(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                            const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                            T* grad_sigma, T* grad_rgb);

template <typename T>
void importance_cpu(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out);

template <typename T>
void merge_sorted_cpu(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth, int64_t* order);

// Triplane sampling (CPU only; CUDA's path is Triton's fused sample + decode). P points xyz [P, 3] reading
// triplane plane_of [P] of the channels-last planes [NT, 3, H, W, C]; axes: the (u, v)
// coordinate index of each plane (6 ints); scale = 2 / box_warp. out: [P, C];
// grad_planes: [NT, 3, H, W, C] (overwritten); grad_xyz: [P, 3] or null (not computed).
template <typename T>
void triplane_sample_forward_cpu(int64_t P, int64_t H, int64_t W, int64_t C, const T* planes, const T* xyz,
                                 const int64_t* plane_of, const int* axes, T scale, T* out);

template <typename T>
void triplane_sample_backward_cpu(int64_t P, int64_t NT, int64_t H, int64_t W, int64_t C, const T* planes,
                                  const T* xyz, const int64_t* plane_of, const int* axes, T scale, const T* grad_out,
                                  T* grad_planes, T* grad_xyz);

// StyleGAN2's bias_act (bias_act.h): y = clamp(act(x + bias) * gain, -clamp, clamp).
// x, y: [outer, C, inner] contiguous; bias: [C] or null (no bias).
template <typename T>
void bias_act_forward_cpu(int64_t outer, int64_t C, int64_t inner, const T* x, const T* bias, const BiasAct<T>& a,
                          T* y);

// grad_x from the forward's output y and grad_y, n elements (the bias gradient is
// grad_x's sum over everything but the channel, left to the caller).
template <typename T>
void bias_act_backward_cpu(int64_t n, const T* y, const T* grad_y, const BiasAct<T>& a, T* grad_x);

#ifdef TRI3D_WITH_CUDA
template <typename T>
void composite_forward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                            T* out_depth, T* out_weights, void* stream);

template <typename T>
void composite_backward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                             const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                             T* grad_sigma, T* grad_rgb, void* stream);

template <typename T>
void importance_cuda(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out, void* stream);

template <typename T>
void merge_sorted_cuda(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth, int64_t* order,
                       void* stream);

template <typename T>
void bias_act_forward_cuda(int64_t outer, int64_t C, int64_t inner, const T* x, const T* bias, const BiasAct<T>& a,
                           T* y, void* stream);

template <typename T>
void bias_act_backward_cuda(int64_t n, const T* y, const T* grad_y, const BiasAct<T>& a, T* grad_x, void* stream);

// The CUDA runtime this module was built with, the newest runtime the installed driver
// supports (0: no driver) and the number of visible devices (0 when none or on error).
void cuda_versions(int* runtime, int* driver, int* devices);
#endif

}  // namespace tri3d
