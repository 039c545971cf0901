// StyleGAN2's bias_act for one element: the core shared by the CPU loops
// (bias_act_cpu.cpp) and the CUDA kernels (kernels.cuh), so both paths compute the same
// operations in the same order.
//
// y = clamp(act(x + b) * gain, -c, c), act(v) = v > 0 ? v : v * alpha (or v), each
// operation rounded as the reference (tri3d.ops.bias_lrelu_ref) rounds it, so the forward
// gives the reference's bits; no multiply is followed by an add, so no compiler can
// contract one into an FMA. The backward reads only y: with gain > 0 and alpha >= 0, y > 0
// exactly where x + b > 0, and |y| < c exactly where the clamp let the value through,
// except for a value that lands on +-c itself (the reference passes its gradient, this
// core does not). dx = (dy * gain) [* alpha where y <= 0] where |y| < c, else 0: the
// reference's order of operations, so the same bits wherever the masks agree. Every
// select is branch-free, so that the CPU loops vectorize.
#pragma once

#include "common.h"

namespace tri3d {

// The activation's constants: gain > 0 and alpha >= 0 (the backward reads the sign of y).
template <typename T>
struct BiasAct {
  T alpha;
  T gain;
  T clamp;
  bool linear;   // act is the identity
  bool clamped;  // clamp applies
};

template <typename T>
HOST_DEVICE T bias_act_value(T x, bool add_bias, T bias, const BiasAct<T>& a) {
  const T biased = add_bias ? x + bias : x;
  const T leaky = biased > T(0) ? biased : biased * a.alpha;
  const T scaled = (a.linear ? biased : leaky) * a.gain;
  const T clamped = scaled < -a.clamp ? -a.clamp : (scaled > a.clamp ? a.clamp : scaled);
  return a.clamped ? clamped : scaled;
}

template <typename T>
HOST_DEVICE T bias_act_grad(T y, T grad, const BiasAct<T>& a) {
  const T scaled = grad * a.gain;
  const T leaky = y > T(0) ? scaled : scaled * a.alpha;
  const T g = a.linear ? scaled : leaky;
  const T passed = (y < a.clamp) & (y > -a.clamp) ? g : T(0);  // & not &&: no branch
  return a.clamped ? passed : g;
}

}  // namespace tri3d
