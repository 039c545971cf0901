// Branch-free float exp and log1p for the CPU compositor's per-ray pre-pass, written so
// the compiler vectorizes a loop of them (no calls, selects instead of branches). The
// C library's expf / log1pf are scalar calls, and they were most of the compositor's
// CPU time. Double precision keeps the library functions.
//
// exp: x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2), exp(r) by Cephes'
// degree-7 polynomial, times 2^k built in the exponent bits; x is clamped to
// [-87, 88], so the result is a normal float (exp(-87) = 1.6e-38 stands for anything
// smaller). log1p: u = 1 + z, log(u) = e ln2 + log(m) with m in [sqrt(1/2), sqrt(2))
// (Cephes' polynomial), then Kahan's correction log1p(z) = log(u) z / (u - 1), exact to a
// few ulp also where 1 + z rounds.
#pragma once

#include <cstdint>
#include <cstring>

namespace tri3d {
namespace vector_math {

inline float bits_to_float(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline int32_t float_to_bits(float f) {
  int32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

inline float exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float t = x * 1.44269504088896341f;
  const int32_t k = static_cast<int32_t>(t + (t >= 0.0f ? 0.5f : -0.5f));  // round half away from 0
  const float fk = static_cast<float>(k);
  const float r = (x - fk * 0.693359375f) + fk * 2.12194440e-4f;  // ln2 = 0.693359375 - 2.12194440e-4
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * bits_to_float((k + 127) << 23);
}

// log(u) for a finite u >= 1.
inline float log_ge1(float u) {
  const int32_t bits = float_to_bits(u);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  e = high ? e + 1 : e;
  const float f = m - 1.0f;
  const float f2 = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  const float fe = static_cast<float>(e);
  float y = p * f2 * f + fe * -2.12194440e-4f - 0.5f * f2;
  return f + y + fe * 0.693359375f;
}

inline float log1p(float z) {  // z >= 0; every term computed, then selected (no branch)
  const float u = 1.0f + z;
  const float d = u - 1.0f;
  const float corrected = log_ge1(u) * (z / (d == 0.0f ? 1.0f : d));
  return d == 0.0f ? z : corrected;
}

}  // namespace vector_math
}  // namespace tri3d
