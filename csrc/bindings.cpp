// pybind11 module tri3d._C: the native ops over raw data pointers. No torch headers, so
// the module depends on neither the torch version nor its ABI. Arrays are contiguous;
// dtype is "float32" or "float64"; CUDA entry points take the stream as an integer handle.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "importance.h"
#include "ops.h"

namespace py = pybind11;
using std::int64_t;

namespace {

template <typename T>
const T* in(std::uintptr_t p) { return reinterpret_cast<const T*>(p); }
template <typename T>
T* out(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

template <typename F>
void by_dtype(const std::string& dtype, F&& f) {
  if (dtype == "float32") {
    f(float{});
  } else if (dtype == "float64") {
    f(double{});
  } else {
    throw std::invalid_argument("tri3d._C: dtype must be float32 or float64, got " + dtype);
  }
}

void check_sizes(int64_t M, int64_t S, int64_t C) {
  if (M < 0 || S < 2 || C < 0) throw std::invalid_argument("tri3d._C: need M >= 0, S >= 2, C >= 0");
}

void composite_forward(const std::string& device, const std::string& dtype, int64_t M, int64_t S, int64_t C,
                       std::uintptr_t sigma, std::uintptr_t rgb, std::uintptr_t depth, std::uintptr_t out_rgb,
                       std::uintptr_t out_depth, std::uintptr_t out_weights, std::uintptr_t stream) {
  check_sizes(M, S, C);
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::composite_forward_cpu<T>(M, S, C, in<T>(sigma), in<T>(rgb), in<T>(depth), out<T>(out_rgb),
                                      out<T>(out_depth), out<T>(out_weights));
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::composite_forward_cuda<T>(M, S, C, in<T>(sigma), in<T>(rgb), in<T>(depth), out<T>(out_rgb),
                                       out<T>(out_depth), out<T>(out_weights), reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of composite_forward");
    }
  });
}

void composite_backward(const std::string& device, const std::string& dtype, int64_t M, int64_t S, int64_t C,
                        std::uintptr_t sigma, std::uintptr_t rgb, std::uintptr_t depth, std::uintptr_t grad_rgb_out,
                        std::uintptr_t grad_depth_out, std::uintptr_t grad_weights_out, std::uintptr_t grad_sigma,
                        std::uintptr_t grad_rgb, std::uintptr_t stream) {
  check_sizes(M, S, C);
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* gw = grad_weights_out ? in<T>(grad_weights_out) : nullptr;
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::composite_backward_cpu<T>(M, S, C, in<T>(sigma), in<T>(rgb), in<T>(depth), in<T>(grad_rgb_out),
                                       in<T>(grad_depth_out), gw, out<T>(grad_sigma), out<T>(grad_rgb));
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::composite_backward_cuda<T>(M, S, C, in<T>(sigma), in<T>(rgb), in<T>(depth), in<T>(grad_rgb_out),
                                        in<T>(grad_depth_out), gw, out<T>(grad_sigma), out<T>(grad_rgb),
                                        reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of composite_backward");
    }
  });
}

void importance(const std::string& device, const std::string& dtype, int64_t M, int64_t S, int64_t n, std::uintptr_t depth,
                std::uintptr_t weights, std::uintptr_t u, std::uintptr_t out_depths, std::uintptr_t stream) {
  if (M < 0 || S < 4 || n < 0) throw std::invalid_argument("tri3d._C: importance needs M >= 0, S >= 4, n >= 0");
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::importance_cpu<T>(M, S, n, in<T>(depth), in<T>(weights), in<T>(u), out<T>(out_depths));
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::importance_cuda<T>(M, S, n, in<T>(depth), in<T>(weights), in<T>(u), out<T>(out_depths),
                                reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of importance");
    }
  });
}

void merge_sorted(const std::string& device, const std::string& dtype, int64_t M, int64_t S, int64_t n, std::uintptr_t coarse,
                  std::uintptr_t fine, std::uintptr_t out_depth, std::uintptr_t order, std::uintptr_t stream) {
  if (M < 0 || S < 1 || n < 0) throw std::invalid_argument("tri3d._C: merge_sorted needs M >= 0, S >= 1, n >= 0");
  if (n > tri3d::kMergeMaxFine) {  // the cores sort them in a fixed-size local array
    throw std::invalid_argument("tri3d._C: merge_sorted takes at most " + std::to_string(tri3d::kMergeMaxFine) +
                                " fine samples per ray, got n=" + std::to_string(n));
  }
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    auto* idx = reinterpret_cast<int64_t*>(order);
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::merge_sorted_cpu<T>(M, S, n, in<T>(coarse), in<T>(fine), out<T>(out_depth), idx);
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::merge_sorted_cuda<T>(M, S, n, in<T>(coarse), in<T>(fine), out<T>(out_depth), idx,
                                  reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of merge_sorted");
    }
  });
}

void check_triplane(const std::string& device, int64_t P, int64_t NT, int64_t H, int64_t W, int64_t C,
                    const py::tuple& axes, int* out_axes) {
  if (device != "cpu") throw std::invalid_argument("tri3d._C: no " + device + " build of triplane_sample (CUDA's path is Triton)");
  if (P < 0 || NT < 1 || H < 1 || W < 1 || C < 1) {
    throw std::invalid_argument("tri3d._C: triplane_sample needs P >= 0 and NT, H, W, C >= 1");
  }
  if (axes.size() != 6) throw std::invalid_argument("tri3d._C: triplane_sample needs 6 plane axes");
  for (int i = 0; i < 6; ++i) {
    out_axes[i] = axes[i].cast<int>();
    if (out_axes[i] < 0 || out_axes[i] > 2) throw std::invalid_argument("tri3d._C: plane axes must be 0, 1 or 2");
  }
}

// Every point's triplane index in [0, NT): the kernels index the planes by it.
void check_plane_of(int64_t P, int64_t NT, std::uintptr_t plane_of) {
  const int64_t* index = in<int64_t>(plane_of);
  for (int64_t n = 0; n < P; ++n) {
    if (index[n] < 0 || index[n] >= NT) {
      throw std::invalid_argument("tri3d._C: triplane_sample: plane_index must lie in [0, " + std::to_string(NT) + ")");
    }
  }
}

void triplane_sample_forward(const std::string& device, const std::string& dtype, int64_t P, int64_t NT, int64_t H,
                             int64_t W, int64_t C, std::uintptr_t planes, std::uintptr_t xyz, std::uintptr_t plane_of,
                             const py::tuple& axes, double scale, std::uintptr_t out_features) {
  int ax[6];
  check_triplane(device, P, NT, H, W, C, axes, ax);
  check_plane_of(P, NT, plane_of);
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    py::gil_scoped_release release;
    tri3d::triplane_sample_forward_cpu<T>(P, H, W, C, in<T>(planes), in<T>(xyz), in<int64_t>(plane_of), ax,
                                          static_cast<T>(scale), out<T>(out_features));
  });
}

void triplane_sample_backward(const std::string& device, const std::string& dtype, int64_t P, int64_t NT, int64_t H,
                              int64_t W, int64_t C, std::uintptr_t planes, std::uintptr_t xyz, std::uintptr_t plane_of,
                              const py::tuple& axes, double scale, std::uintptr_t grad_features,
                              std::uintptr_t grad_planes, std::uintptr_t grad_xyz) {
  int ax[6];
  check_triplane(device, P, NT, H, W, C, axes, ax);
  check_plane_of(P, NT, plane_of);
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* gx = grad_xyz ? out<T>(grad_xyz) : nullptr;
    py::gil_scoped_release release;
    tri3d::triplane_sample_backward_cpu<T>(P, NT, H, W, C, in<T>(planes), in<T>(xyz), in<int64_t>(plane_of), ax,
                                           static_cast<T>(scale), in<T>(grad_features), out<T>(grad_planes), gx);
  });
}

// The activation's constants; the backward reads the sign of y, which needs these.
template <typename T>
tri3d::BiasAct<T> bias_act_params(double alpha, double gain, double clamp, bool linear, bool clamped) {
  if (!(gain > 0) || !(alpha >= 0) || (clamped && !(clamp > 0))) {
    throw std::invalid_argument("tri3d._C: bias_act needs gain > 0, alpha >= 0 and clamp > 0");
  }
  return {static_cast<T>(alpha), static_cast<T>(gain), static_cast<T>(clamp), linear, clamped};
}

void bias_act_forward(const std::string& device, const std::string& dtype, int64_t outer, int64_t C, int64_t inner,
                      std::uintptr_t x, std::uintptr_t bias, double alpha, double gain, double clamp, bool linear,
                      bool clamped, std::uintptr_t y, std::uintptr_t stream) {
  if (outer < 0 || C < 0 || inner < 0) throw std::invalid_argument("tri3d._C: bias_act needs outer, C, inner >= 0");
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto params = bias_act_params<T>(alpha, gain, clamp, linear, clamped);
    const T* b = bias ? in<T>(bias) : nullptr;
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::bias_act_forward_cpu<T>(outer, C, inner, in<T>(x), b, params, out<T>(y));
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::bias_act_forward_cuda<T>(outer, C, inner, in<T>(x), b, params, out<T>(y), reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of bias_act_forward");
    }
  });
}

void bias_act_backward(const std::string& device, const std::string& dtype, int64_t n, std::uintptr_t y,
                       std::uintptr_t grad_y, double alpha, double gain, double clamp, bool linear, bool clamped,
                       std::uintptr_t grad_x, std::uintptr_t stream) {
  if (n < 0) throw std::invalid_argument("tri3d._C: bias_act needs n >= 0");
  by_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto params = bias_act_params<T>(alpha, gain, clamp, linear, clamped);
    if (device == "cpu") {
      py::gil_scoped_release release;
      tri3d::bias_act_backward_cpu<T>(n, in<T>(y), in<T>(grad_y), params, out<T>(grad_x));
#ifdef TRI3D_WITH_CUDA
    } else if (device == "cuda") {
      tri3d::bias_act_backward_cuda<T>(n, in<T>(y), in<T>(grad_y), params, out<T>(grad_x),
                                       reinterpret_cast<void*>(stream));
#endif
    } else {
      throw std::invalid_argument("tri3d._C: no " + device + " build of bias_act_backward");
    }
  });
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tri3d native ops (compositor, importance sampler, bias_act, CPU triplane sampling) over raw pointers";
#ifdef TRI3D_WITH_CUDA
  m.attr("with_cuda") = true;
  m.def(
      "cuda_versions",
      [] {
        int runtime = 0, driver = 0, devices = 0;
        tri3d::cuda_versions(&runtime, &driver, &devices);
        return py::make_tuple(runtime, driver, devices);
      },
      "(CUDA runtime built with, newest runtime the driver supports (0: no driver), visible devices)");
#else
  m.attr("with_cuda") = false;
#endif
  m.def("composite_forward", &composite_forward, "Alpha compositing forward (one ray per row)");
  m.def("composite_backward", &composite_backward, "Alpha compositing closed-form backward");
  m.def("importance", &importance, "Inverse-CDF importance sampling from coarse weights");
  m.def("merge_sorted", &merge_sorted, "Merge sorted coarse with unsorted fine depths: sorted depths + order");
  m.def("triplane_sample_forward", &triplane_sample_forward, "Triplane bilinear sampling, mean of the planes (CPU)");
  m.def("triplane_sample_backward", &triplane_sample_backward, "Gradients of triplane sampling: planes and points (CPU)");
  m.def("bias_act_forward", &bias_act_forward, "clamp(act(x + bias) * gain): bias + leaky ReLU + gain + clamp");
  m.def("bias_act_backward", &bias_act_backward, "Gradient of bias_act with respect to x, from its output");
}
