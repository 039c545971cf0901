// StyleGAN2's bias_act on the CPU: the C++ path of tri3d.ops.bias_lrelu (bias + leaky
// ReLU + gain + clamp, the epilogue of every convolution and fully connected layer of G
// and D). One pass over memory forward and one backward, where the reference makes four
// forward and about seven backward.
//
// The per-element core is bias_act.h's, shared with the CUDA kernels.
//
// Elements are split over threads (OpenMP); each element's result is independent of the
// thread count. The loops are compiled for AVX2 and for the baseline ISA (cpu_clones.h);
// both give the same bits. Every select is computed branch-free so that they vectorize.
#include "bias_act.h"
#include "cpu_clones.h"
#include "ops.h"

namespace tri3d {

namespace {

constexpr int64_t kBlock = 1 << 14;  // elements per OpenMP work item

template <typename T>
TRI3D_INLINE_INTO_CLONES void activation_loop(int64_t n, const T* __restrict__ x, bool add_bias, T bias,
                                              const BiasAct<T> a, T* __restrict__ y) {
  for (int64_t i = 0; i < n; ++i) y[i] = bias_act_value(x[i], add_bias, bias, a);
}

template <typename T>
TRI3D_INLINE_INTO_CLONES void activation_channels_loop(int64_t C, const T* __restrict__ x, const T* __restrict__ bias,
                                                       const BiasAct<T> a, T* __restrict__ y) {
  for (int64_t c = 0; c < C; ++c) y[c] = bias_act_value(x[c], true, bias[c], a);
}

template <typename T>
TRI3D_INLINE_INTO_CLONES void activation_grad_loop(int64_t n, const T* __restrict__ y, const T* __restrict__ grad,
                                                   const BiasAct<T> a, T* __restrict__ grad_x) {
  for (int64_t i = 0; i < n; ++i) grad_x[i] = bias_act_grad(y[i], grad[i], a);
}

// The cloned entry points (one per dtype: GCC clones functions, not templates).
#define TRI3D_ACTIVATION_CLONES(T)                                                                                 \
  TRI3D_CPU_CLONES void activation_span(int64_t n, const T* x, bool add_bias, T bias, const BiasAct<T>& a, T* y) { \
    activation_loop<T>(n, x, add_bias, bias, a, y);                                                                \
  }                                                                                                                \
  TRI3D_CPU_CLONES void activation_channels(int64_t C, const T* x, const T* bias, const BiasAct<T>& a, T* y) {     \
    activation_channels_loop<T>(C, x, bias, a, y);                                                                 \
  }                                                                                                                \
  TRI3D_CPU_CLONES void activation_grad_span(int64_t n, const T* y, const T* grad, const BiasAct<T>& a,            \
                                             T* grad_x) {                                                          \
    activation_grad_loop<T>(n, y, grad, a, grad_x);                                                                \
  }
TRI3D_ACTIVATION_CLONES(float)
TRI3D_ACTIVATION_CLONES(double)
#undef TRI3D_ACTIVATION_CLONES

// f(start, count) over [0, n) in blocks of kBlock, blocks split over threads.
template <typename F>
void for_blocks(int64_t n, F&& f) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t start = k * kBlock;
    f(start, n - start < kBlock ? n - start : kBlock);
  }
}

}  // namespace

template <typename T>
void bias_act_forward_cpu(int64_t outer, int64_t C, int64_t inner, const T* x, const T* bias, const BiasAct<T>& a,
                          T* y) {
  if (inner == 1 && bias != nullptr) {  // rows of C channels (channels-last or [N, C])
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < outer; ++o) activation_channels(C, x + o * C, bias, a, y + o * C);
    return;
  }
  if (inner == 1) {  // no bias: one flat span
    for_blocks(outer * C, [&](int64_t start, int64_t count) { activation_span(count, x + start, false, T(0), a, y + start); });
    return;
  }
#pragma omp parallel for schedule(static)  // rows of inner elements sharing channel c's bias
  for (int64_t row = 0; row < outer * C; ++row) {
    activation_span(inner, x + row * inner, bias != nullptr, bias != nullptr ? bias[row % C] : T(0), a,
                    y + row * inner);
  }
}

template <typename T>
void bias_act_backward_cpu(int64_t n, const T* y, const T* grad_y, const BiasAct<T>& a, T* grad_x) {
  for_blocks(n, [&](int64_t start, int64_t count) {
    activation_grad_span(count, y + start, grad_y + start, a, grad_x + start);
  });
}

#define TRI3D_INSTANTIATE(T)                                                                                      \
  template void bias_act_forward_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*, const BiasAct<T>&, T*);   \
  template void bias_act_backward_cpu<T>(int64_t, const T*, const T*, const BiasAct<T>&, T*);
TRI3D_INSTANTIATE(float)
TRI3D_INSTANTIATE(double)
#undef TRI3D_INSTANTIATE

}  // namespace tri3d
