// Entry points of the native ops over raw pointers (contiguous arrays), one set per
// backend. M = number of rays, S = samples per ray, C = channels, n = fine samples.
#pragma once

#include <cstdint>

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

// The CUDA runtime this module was built with, the newest runtime the installed driver
// supports (0: no driver) and the number of visible devices (0 when none or on error).
void cuda_versions(int* runtime, int* driver, int* devices);
#endif

}  // namespace tri3d
