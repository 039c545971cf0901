// Shared helpers for the per-ray cores: host/device qualifiers and EG3D's softplus.
#pragma once

#if defined(__CUDACC_RTC__)
// NVRTC (the no-build CUDA path, tri3d/_nvrtc.py) compiles without the C++ standard
// headers: the two names the cores take from them. Its math functions are built in.
typedef long long int64_t;
#define INFINITY __int_as_float(0x7f800000)
#else
#include <cmath>
#include <cstdint>
#endif

#if defined(__CUDACC__)
#define HOST_DEVICE __host__ __device__ __forceinline__
// A loop the device compiler keeps rolled: at C = 32 channels over 32 lanes a channel loop
// runs once, so unrolled copies would only add untaken code, and the SASS cost model
// (bench/sass_report.py) counts a rolled loop exactly (trip count x body).
#define TRI3D_NO_UNROLL _Pragma("unroll 1")
#else
#define HOST_DEVICE inline
#define TRI3D_NO_UNROLL
#endif

namespace tri3d {

#if !defined(__CUDACC__)
// Host code: the float overloads (expf, log1pf) for float, not the C library's double
// functions that an unqualified call on a float would otherwise convert to and from.
using std::exp;
using std::log1p;
#endif

// torch.nn.functional.softplus(x) with beta 1, threshold 20.
template <typename T>
HOST_DEVICE T softplus(T x) {
  return x > T(20) ? x : log1p(exp(x));
}

// softplus(x) and its derivative as torch computes it (exactly 1 above the threshold),
// from one exp.
template <typename T>
HOST_DEVICE void softplus_and_grad(T x, T& value, T& grad) {
  if (x > T(20)) {
    value = x;
    grad = T(1);
    return;
  }
  T z = exp(x);
  value = log1p(z);
  grad = z / (z + T(1));
}

template <typename T>
HOST_DEVICE T max2(T a, T b) { return a > b ? a : b; }

template <typename T>
HOST_DEVICE T min2(T a, T b) { return a < b ? a : b; }

}  // namespace tri3d
