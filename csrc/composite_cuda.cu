// Host launchers of the CUDA kernels (kernels.cuh) for tri3d._C.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels.cuh"
#include "ops.h"

namespace tri3d {

namespace {

using kernels::kBiasActThreads;
using kernels::kImportanceThreads;
using kernels::kMaxGridY;
using kernels::kMergeThreads;
using kernels::kWarpsPerBlock;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

int64_t warp_blocks(int64_t M) { return (M + kWarpsPerBlock - 1) / kWarpsPerBlock; }

template <typename T>
int bias_act_flags(const BiasAct<T>& a) {
  return (a.linear ? kernels::kBiasActLinear : 0) | (a.clamped ? kernels::kBiasActClamped : 0);
}

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

template <typename T>
void bias_act_forward_cuda(int64_t outer, int64_t C, int64_t inner, const T* x, const T* bias, const BiasAct<T>& a,
                           T* y, void* stream) {
  const int64_t rows = inner != 1 ? outer * C : outer;  // as the kernel sees the rows
  const int64_t cols = inner != 1 ? inner : C;
  if (rows == 0 || cols == 0) return;
  const dim3 grid((unsigned)((cols + kBiasActThreads - 1) / kBiasActThreads),
                  (unsigned)(rows < kMaxGridY ? rows : kMaxGridY));
  kernels::bias_act_forward_kernel<T><<<grid, kBiasActThreads, 0, (cudaStream_t)stream>>>(
      outer, C, inner, x, bias, a.alpha, a.gain, a.clamp, bias_act_flags(a), y);
  check(cudaGetLastError(), "bias_act_forward_cuda launch");
}

template <typename T>
void bias_act_backward_cuda(int64_t n, const T* y, const T* grad_y, const BiasAct<T>& a, T* grad_x, void* stream) {
  if (n == 0) return;
  const int64_t blocks = (n + kBiasActThreads - 1) / kBiasActThreads;
  const int64_t max_blocks = 0x7fffffff;  // CUDA's limit on gridDim.x: the kernel loops past it
  kernels::bias_act_backward_kernel<T><<<(unsigned)(blocks < max_blocks ? blocks : max_blocks), kBiasActThreads, 0,
                                         (cudaStream_t)stream>>>(n, y, grad_y, a.alpha, a.gain, a.clamp,
                                                                 bias_act_flags(a), grad_x);
  check(cudaGetLastError(), "bias_act_backward_cuda launch");
}

#define TRI3D_INSTANTIATE(T)                                                                                     \
  template void composite_forward_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, T*, T*, void*);  \
  template void composite_backward_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, \
                                           const T*, T*, T*, void*);                                             \
  template void importance_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, T*, void*);              \
  template void merge_sorted_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, int64_t*, void*);             \
  template void bias_act_forward_cuda<T>(int64_t, int64_t, int64_t, const T*, const T*, const BiasAct<T>&, T*, void*); \
  template void bias_act_backward_cuda<T>(int64_t, const T*, const T*, const BiasAct<T>&, T*, void*);
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
