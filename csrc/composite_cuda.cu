// Host launchers of the CUDA kernels (kernels.cuh) for tri3d._C.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels.cuh"
#include "ops.h"

namespace tri3d {

namespace {

using kernels::kImportanceThreads;
using kernels::kMergeThreads;
using kernels::kWarpsPerBlock;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

int64_t warp_blocks(int64_t M) { return (M + kWarpsPerBlock - 1) / kWarpsPerBlock; }

}  // namespace

template <typename T>
void composite_forward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                            T* out_depth, T* out_weights, void* stream) {
  if (M == 0) return;
  kernels::composite_forward_kernel<T><<<warp_blocks(M), 32 * kWarpsPerBlock, 0, (cudaStream_t)stream>>>(
      M, S, C, sigma, rgb, depth, out_rgb, out_depth, out_weights);
  check(cudaGetLastError(), "composite_forward_cuda launch");
}

template <typename T>
void composite_backward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                             const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                             T* grad_sigma, T* grad_rgb, void* stream) {
  if (M == 0) return;
  kernels::composite_backward_kernel<T><<<warp_blocks(M), 32 * kWarpsPerBlock, 0, (cudaStream_t)stream>>>(
      M, S, C, sigma, rgb, depth, grad_rgb_out, grad_depth_out, grad_weights_out, grad_sigma, grad_rgb);
  check(cudaGetLastError(), "composite_backward_cuda launch");
}

template <typename T>
void importance_cuda(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out, void* stream) {
  int64_t total = M * n;
  if (total == 0) return;
  const int threads = kImportanceThreads;
  kernels::importance_kernel<T><<<(total + threads - 1) / threads, threads, 0, (cudaStream_t)stream>>>(M, S, n, depth,
                                                                                              weights, u, out);
  check(cudaGetLastError(), "importance_cuda launch");
}

template <typename T>
void merge_sorted_cuda(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth, int64_t* order,
                       void* stream) {
  if (M == 0) return;
  const int threads = kMergeThreads;
  kernels::merge_sorted_kernel<T><<<(M + threads - 1) / threads, threads, 0, (cudaStream_t)stream>>>(M, S, n, coarse, fine,
                                                                                            out_depth, order);
  check(cudaGetLastError(), "merge_sorted_cuda launch");
}

#define TRI3D_INSTANTIATE(T)                                                                                     \
  template void composite_forward_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, T*, T*, void*);  \
  template void composite_backward_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, \
                                           const T*, T*, T*, void*);                                             \
  template void importance_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, void*);              \
  template void merge_sorted_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, int64_t*, void*);
TRI3D_INSTANTIATE(float)
TRI3D_INSTANTIATE(double)
#undef TRI3D_INSTANTIATE

void cuda_versions(int* runtime, int* driver, int* devices) {
  if (cudaRuntimeGetVersion(runtime) != cudaSuccess) *runtime = 0;
  if (cudaDriverGetVersion(driver) != cudaSuccess) *driver = 0;
  if (*driver == 0 || cudaGetDeviceCount(devices) != cudaSuccess) *devices = 0;
  cudaGetLastError();  // a failed query must not leave a sticky error for the next launch's check
}

}  // namespace tri3d
