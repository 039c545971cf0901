// CUDA kernels around the shared per-ray cores. Compositing: one warp per ray, lanes
// split the channels (coalesced [S, C] rows). Importance sampling: one thread per
// (ray, fine sample).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "composite.h"
#include "importance.h"
#include "ops.h"

namespace tri3d {

namespace {

constexpr int kWarpsPerBlock = 4;

struct WarpSync {
  __device__ void operator()() const { __syncwarp(); }
};
struct WarpSum {
  template <typename T>
  __device__ T operator()(T x) const {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
  }
};

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

template <typename T>
__global__ void composite_forward_kernel(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                         T* out_rgb, T* out_depth, T* out_weights) {
  int64_t r = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= M) return;
  composite_forward_ray<T>(S, C, sigma + r * S, rgb + r * S * C, depth + r * S, out_rgb + r * C, out_depth + r,
                           out_weights + r * (S - 1), threadIdx.x % 32, 32);
}

template <typename T>
__global__ void composite_backward_kernel(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                                          const T* grad_rgb_out, const T* grad_depth_out,
                                          const T* grad_weights_out, T* grad_sigma, T* grad_rgb) {
  int64_t r = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  if (r >= M) return;  // whole warps exit together: r is uniform across a warp
  composite_backward_ray<T>(S, C, sigma + r * S, rgb + r * S * C, depth + r * S, grad_rgb_out + r * C,
                            grad_depth_out + r, grad_weights_out ? grad_weights_out + r * (S - 1) : nullptr,
                            grad_sigma + r * S, grad_rgb + r * S * C, threadIdx.x % 32, 32, WarpSync(), WarpSum());
}

template <typename T>
__global__ void importance_kernel(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M * n) return;
  int64_t r = i / n;
  const T* w = weights + r * (S - 1);
  out[i] = importance_sample_one(depth + r * S, w, S, importance_total(w, S), u[i]);
}

template <typename T>
__global__ void merge_sorted_kernel(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth,
                                    int64_t* order) {
  int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= M) return;
  merge_sorted_ray(S, n, coarse + r * S, fine + r * n, out_depth + r * (S + n), order + r * (S + n));
}

int64_t warp_blocks(int64_t M) { return (M + kWarpsPerBlock - 1) / kWarpsPerBlock; }

}  // namespace

template <typename T>
void composite_forward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth, T* out_rgb,
                            T* out_depth, T* out_weights, void* stream) {
  if (M == 0) return;
  composite_forward_kernel<T><<<warp_blocks(M), 32 * kWarpsPerBlock, 0, (cudaStream_t)stream>>>(
      M, S, C, sigma, rgb, depth, out_rgb, out_depth, out_weights);
  check(cudaGetLastError(), "composite_forward_cuda launch");
}

template <typename T>
void composite_backward_cuda(int64_t M, int64_t S, int64_t C, const T* sigma, const T* rgb, const T* depth,
                             const T* grad_rgb_out, const T* grad_depth_out, const T* grad_weights_out,
                             T* grad_sigma, T* grad_rgb, void* stream) {
  if (M == 0) return;
  composite_backward_kernel<T><<<warp_blocks(M), 32 * kWarpsPerBlock, 0, (cudaStream_t)stream>>>(
      M, S, C, sigma, rgb, depth, grad_rgb_out, grad_depth_out, grad_weights_out, grad_sigma, grad_rgb);
  check(cudaGetLastError(), "composite_backward_cuda launch");
}

template <typename T>
void importance_cuda(int64_t M, int64_t S, int64_t n, const T* depth, const T* weights, const T* u, T* out, void* stream) {
  int64_t total = M * n;
  if (total == 0) return;
  const int threads = 256;
  importance_kernel<T><<<(total + threads - 1) / threads, threads, 0, (cudaStream_t)stream>>>(M, S, n, depth,
                                                                                              weights, u, out);
  check(cudaGetLastError(), "importance_cuda launch");
}

template <typename T>
void merge_sorted_cuda(int64_t M, int64_t S, int64_t n, const T* coarse, const T* fine, T* out_depth, int64_t* order,
                       void* stream) {
  if (M == 0) return;
  const int threads = 128;
  merge_sorted_kernel<T><<<(M + threads - 1) / threads, threads, 0, (cudaStream_t)stream>>>(M, S, n, coarse, fine,
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
