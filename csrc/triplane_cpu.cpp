// Triplane bilinear sampling on the CPU: the C++ path of tri3d.ops.sample_triplane (the
// GPU's fused path is the Triton kernel, which also runs the decoder).
//
// Numerics are the reference's (tri3d/ops/triplane.py): a point's plane coordinates are
// u = xyz[axis_u] * scale (scale = 2 / box_warp), read as grid_sample(bilinear, zeros
// padding, align_corners=False) reads them (pixel x = ((u + 1) W - 1) / 2, corners outside
// the plane read 0), and the three planes' features are averaged. The planes are
// channels-last, [T, 3, H, W, C], so a corner's C channels are one contiguous row and the
// per-corner work is a vectorizable loop over channels.
//
// Forward: points split over threads (OpenMP). Backward: the plane gradient is gathered
// per (triplane, plane) task over that triplane's points in point order (a counting sort
// by triplane first), so no two threads write one texel and the sums do not depend on the
// thread count; the point gradient, when asked for, is a second pass over points.
//
// The per-point work is compiled for AVX2 and for the baseline ISA (cpu_clones.h); both
// give the same bits.
#include <cmath>
#include <vector>

#include "cpu_clones.h"
#include "ops.h"

namespace tri3d {

namespace {

// The four corners of one bilinear read: row offsets into the plane (-1: outside, reads
// 0) and weights, plus the weights' derivatives along x and y (for the point gradient).
template <typename T>
struct Bilinear {
  int64_t row[4];
  T weight[4];
  T dx[4];
  T dy[4];
};

// Corners of the read at plane coordinates (u, v) in [-1, 1] on an H x W plane; rows are
// texel indices y * W + x. Coordinates far outside the plane give four outside corners
// (checked before the float -> integer conversion, which could otherwise overflow).
template <typename T>
TRI3D_INLINE_INTO_CLONES Bilinear<T> bilinear(T u, T v, int64_t H, int64_t W) {
  Bilinear<T> b;
  const T ix = ((u + T(1)) * T(W) - T(1)) / T(2);
  const T iy = ((v + T(1)) * T(H) - T(1)) / T(2);
  if (!(ix > T(-1) && ix < T(W) && iy > T(-1) && iy < T(H))) {
    for (int k = 0; k < 4; ++k) {
      b.row[k] = -1;
      b.weight[k] = b.dx[k] = b.dy[k] = T(0);
    }
    return b;
  }
  const T fx = std::floor(ix), fy = std::floor(iy);
  const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  const T tx = ix - fx, ty = iy - fy;
  const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1};
  const int64_t ys[4] = {y0, y0, y0 + 1, y0 + 1};
  const T wx[4] = {T(1) - tx, tx, T(1) - tx, tx};
  const T wy[4] = {T(1) - ty, T(1) - ty, ty, ty};
  const T sx[4] = {T(-1), T(1), T(-1), T(1)};
  const T sy[4] = {T(-1), T(-1), T(1), T(1)};
  for (int k = 0; k < 4; ++k) {
    const bool inside = xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H;
    b.row[k] = inside ? ys[k] * W + xs[k] : -1;
    b.weight[k] = wx[k] * wy[k];
    b.dx[k] = sx[k] * wy[k];
    b.dy[k] = wx[k] * sy[k];
  }
  return b;
}

struct Layout {
  int64_t H, W, C;
  int axes[6];  // (u, v) coordinate index of planes 0, 1, 2
  int64_t plane_size() const { return H * W * C; }
};

template <typename T>
TRI3D_INLINE_INTO_CLONES Bilinear<T> read_of(const Layout& L, const T* point, int p, T scale) {
  return bilinear<T>(point[L.axes[2 * p]] * scale, point[L.axes[2 * p + 1]] * scale, L.H, L.W);
}

// out[0:C] = mean over the three planes of the bilinear read at one point.
template <typename T>
TRI3D_INLINE_INTO_CLONES void forward_point(const Layout& L, const T* triplane, const T* point, T scale,
                                            T* __restrict__ out) {
  const int64_t C = L.C;
  for (int64_t c = 0; c < C; ++c) out[c] = T(0);
  for (int p = 0; p < 3; ++p) {
    const Bilinear<T> b = read_of(L, point, p, scale);
    const T* plane = triplane + p * L.plane_size();
    for (int k = 0; k < 4; ++k) {
      if (b.row[k] < 0) continue;
      const T w = b.weight[k];
      const T* __restrict__ r = plane + b.row[k] * C;
      for (int64_t c = 0; c < C; ++c) out[c] += w * r[c];
    }
  }
  for (int64_t c = 0; c < C; ++c) out[c] /= T(3);
}

// grad_plane[row] += weight * grad_out / 3 for the four corners of one point's read.
template <typename T>
TRI3D_INLINE_INTO_CLONES void scatter_point(const Layout& L, const T* point, int p, T scale,
                                            const T* __restrict__ grad_out, T* grad_plane) {
  const int64_t C = L.C;
  const Bilinear<T> b = read_of(L, point, p, scale);
  for (int k = 0; k < 4; ++k) {
    if (b.row[k] < 0) continue;
    const T w = b.weight[k] / T(3);
    T* __restrict__ r = grad_plane + b.row[k] * C;
    for (int64_t c = 0; c < C; ++c) r[c] += w * grad_out[c];
  }
}

// grad_point[0:3] = d(loss)/d(xyz) of one point: per plane and corner, the dot of
// grad_out / 3 with the corner's row times the weight's derivative, chained through
// x = ((u + 1) W - 1) / 2 and u = xyz * scale.
template <typename T>
TRI3D_INLINE_INTO_CLONES void point_grad(const Layout& L, const T* triplane, const T* point, T scale,
                                         const T* grad_out, T* grad_point) {
  const int64_t C = L.C;
  grad_point[0] = grad_point[1] = grad_point[2] = T(0);
  for (int p = 0; p < 3; ++p) {
    const Bilinear<T> b = read_of(L, point, p, scale);
    const T* plane = triplane + p * L.plane_size();
    T gx = T(0), gy = T(0);
    for (int k = 0; k < 4; ++k) {
      if (b.row[k] < 0) continue;
      const T* r = plane + b.row[k] * C;
      T dot = T(0);
      for (int64_t c = 0; c < C; ++c) dot += grad_out[c] * r[c];
      gx += b.dx[k] * dot;
      gy += b.dy[k] * dot;
    }
    grad_point[L.axes[2 * p]] += gx / T(3) * (T(L.W) / T(2)) * scale;
    grad_point[L.axes[2 * p + 1]] += gy / T(3) * (T(L.H) / T(2)) * scale;
  }
}

// The cloned entry points (one per dtype: GCC clones functions, not templates).
#define TRI3D_TRIPLANE_CLONES(T)                                                                                 \
  TRI3D_CPU_CLONES void forward_point_cpu(const Layout& L, const T* triplane, const T* point, T scale, T* out) { \
    forward_point<T>(L, triplane, point, scale, out);                                                           \
  }                                                                                                              \
  TRI3D_CPU_CLONES void scatter_points_cpu(const Layout& L, const int64_t* order, int64_t count, const T* xyz,   \
                                           int p, T scale, const T* grad_out, T* grad_plane) {                   \
    for (int64_t i = 0; i < count; ++i) {                                                                        \
      const int64_t n = order[i];                                                                                \
      scatter_point<T>(L, xyz + 3 * n, p, scale, grad_out + n * L.C, grad_plane);                                \
    }                                                                                                            \
  }                                                                                                              \
  TRI3D_CPU_CLONES void point_grad_cpu(const Layout& L, const T* triplane, const T* point, T scale,              \
                                       const T* grad_out, T* grad_point) {                                       \
    point_grad<T>(L, triplane, point, scale, grad_out, grad_point);                                             \
  }
TRI3D_TRIPLANE_CLONES(float)
TRI3D_TRIPLANE_CLONES(double)
#undef TRI3D_TRIPLANE_CLONES

Layout layout_of(int64_t H, int64_t W, int64_t C, const int* axes) {
  Layout L{H, W, C, {}};
  for (int i = 0; i < 6; ++i) L.axes[i] = axes[i];
  return L;
}

}  // namespace

template <typename T>
void triplane_sample_forward_cpu(int64_t P, int64_t H, int64_t W, int64_t C, const T* planes, const T* xyz,
                                 const int64_t* plane_of, const int* axes, T scale, T* out) {
  const Layout L = layout_of(H, W, C, axes);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < P; ++n) {
    forward_point_cpu(L, planes + plane_of[n] * 3 * L.plane_size(), xyz + 3 * n, scale, out + n * C);
  }
}

template <typename T>
void triplane_sample_backward_cpu(int64_t P, int64_t NT, int64_t H, int64_t W, int64_t C, const T* planes,
                                  const T* xyz, const int64_t* plane_of, const int* axes, T scale, const T* grad_out,
                                  T* grad_planes, T* grad_xyz) {
  const Layout L = layout_of(H, W, C, axes);
  // Points grouped by triplane, each group in point order (a stable counting sort).
  std::vector<int64_t> start(NT + 1, 0), order(P);
  for (int64_t n = 0; n < P; ++n) ++start[plane_of[n] + 1];
  for (int64_t t = 0; t < NT; ++t) start[t + 1] += start[t];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t n = 0; n < P; ++n) order[fill[plane_of[n]]++] = n;
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < NT * 3; ++task) {
    const int64_t t = task / 3;
    const int p = static_cast<int>(task % 3);
    T* grad_plane = grad_planes + task * L.plane_size();
    for (int64_t i = 0; i < L.plane_size(); ++i) grad_plane[i] = T(0);
    scatter_points_cpu(L, order.data() + start[t], start[t + 1] - start[t], xyz, p, scale, grad_out, grad_plane);
  }
  if (grad_xyz == nullptr) return;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < P; ++n) {
    point_grad_cpu(L, planes + plane_of[n] * 3 * L.plane_size(), xyz + 3 * n, scale, grad_out + n * C,
                   grad_xyz + 3 * n);
  }
}

#define TRI3D_INSTANTIATE(T)                                                                                     \
  template void triplane_sample_forward_cpu<T>(int64_t, int64_t, int64_t, int64_t, const T*, const T*,          \
                                               const int64_t*, const int*, T, T*);                              \
  template void triplane_sample_backward_cpu<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, const T*, \
                                                const int64_t*, const int*, T, const T*, T*, T*);
TRI3D_INSTANTIATE(float)
TRI3D_INSTANTIATE(double)
#undef TRI3D_INSTANTIATE

}  // namespace tri3d
