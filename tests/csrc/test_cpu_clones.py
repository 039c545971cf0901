"""The CPU compositor's, triplane sampler's and bias_act's AVX2 clones give the bits of
their baseline build.

csrc/composite_cpu.cpp, csrc/triplane_cpu.cpp and csrc/bias_act_cpu.cpp compile their
loops twice (GCC ``target_clones``: AVX2 and the baseline x86-64 ISA;
``csrc/cpu_clones.h``) and the loader picks one. A small program runs the compositor's
forward and backward (with and without a weights gradient), the triplane sampler's forward
and backward (features, plane and point gradients) and bias_act's forward and backward
(every flag), fp32 and fp64, sample counts and channel counts around the vector widths,
built normally, which on an AVX2 machine runs the AVX2 clone, and built with
``-DTRI3D_NO_CPU_CLONES`` (baseline only); every output must
match bit for bit, so results (and training runs) do not depend on the machine's vector
width. Needs g++ with OpenMP on an x86-64 Linux machine with AVX2, not a GPU."""
from __future__ import annotations

import platform
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CXX = shutil.which("g++")
CSRC = Path(__file__).parents[2] / "csrc"


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


PROGRAM = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ops.h"

using namespace tri3d;

template <typename T>
uint64_t fnv(const std::vector<T>& v) {
  uint64_t h = 1469598103934665603ull;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

template <typename T>
void run(int M, int S, int C, std::mt19937& gen) {
  std::normal_distribution<T> normal(T(0), T(3));
  std::uniform_real_distribution<T> unit(T(0), T(1));
  std::vector<T> sigma(M * S), rgb(M * S * C), depth(M * S), g_rgb(M * C), g_depth(M), g_w(M * (S - 1));
  for (int r = 0; r < M; ++r) {
    T d = T(2);
    for (int i = 0; i < S; ++i) {
      sigma[r * S + i] = normal(gen);
      depth[r * S + i] = d;
      d += T(0.05) * unit(gen);
    }
  }
  for (T& x : rgb) x = unit(gen);
  for (T& x : g_rgb) x = normal(gen);
  for (T& x : g_depth) x = normal(gen);
  for (T& x : g_w) x = normal(gen);
  std::vector<T> out_rgb(M * C), out_depth(M), out_w(M * (S - 1)), g_sigma(M * S), g_c(M * S * C);
  composite_forward_cpu<T>(M, S, C, sigma.data(), rgb.data(), depth.data(), out_rgb.data(), out_depth.data(),
                           out_w.data());
  std::printf("%d %d %d %zu fwd %llx %llx %llx\n", M, S, C, sizeof(T), (unsigned long long)fnv(out_rgb),
              (unsigned long long)fnv(out_depth), (unsigned long long)fnv(out_w));
  for (const T* gw : {static_cast<const T*>(g_w.data()), static_cast<const T*>(nullptr)}) {
    composite_backward_cpu<T>(M, S, C, sigma.data(), rgb.data(), depth.data(), g_rgb.data(), g_depth.data(), gw,
                              g_sigma.data(), g_c.data());
    std::printf("%d %d %d %zu bwd %llx %llx\n", M, S, C, sizeof(T), (unsigned long long)fnv(g_sigma),
                (unsigned long long)fnv(g_c));
  }
}

template <typename T>
void run_triplane(int P, int NT, int H, int W, int C, std::mt19937& gen) {
  std::normal_distribution<T> normal(T(0), T(1));
  std::uniform_real_distribution<T> box(T(-0.65), T(0.65));  // some points outside the planes
  std::vector<T> planes(NT * 3 * H * W * C), xyz(P * 3), g_out(P * C);
  std::vector<int64_t> plane_of(P);
  for (T& x : planes) x = normal(gen);
  for (T& x : xyz) x = box(gen);
  for (T& x : g_out) x = normal(gen);
  for (int n = 0; n < P; ++n) plane_of[n] = static_cast<int64_t>(gen() % NT);
  const int axes[6] = {0, 1, 0, 2, 2, 0};
  std::vector<T> out(P * C), g_planes(planes.size()), g_xyz(P * 3);
  triplane_sample_forward_cpu<T>(P, H, W, C, planes.data(), xyz.data(), plane_of.data(), axes, T(2), out.data());
  triplane_sample_backward_cpu<T>(P, NT, H, W, C, planes.data(), xyz.data(), plane_of.data(), axes, T(2),
                                  g_out.data(), g_planes.data(), g_xyz.data());
  std::printf("triplane %d %d %zu %llx %llx %llx\n", P, C, sizeof(T), (unsigned long long)fnv(out),
              (unsigned long long)fnv(g_planes), (unsigned long long)fnv(g_xyz));
}

template <typename T>
void run_bias_act(int outer, int C, int inner, std::mt19937& gen) {
  std::normal_distribution<T> normal(T(0), T(1));
  const size_t n = size_t(outer) * C * inner;
  std::vector<T> x(n), bias(C), g(n), y(n), gx(n);
  for (T& v : x) v = normal(gen);
  for (T& v : bias) v = normal(gen);
  for (T& v : g) v = normal(gen);
  for (int flags = 0; flags < 8; ++flags) {  // bias, linear, clamp: every combination
    const BiasAct<T> a{T(0.2), T(1.41421356), T(0.8), (flags & 2) != 0, (flags & 4) != 0};
    bias_act_forward_cpu<T>(outer, C, inner, x.data(), (flags & 1) ? bias.data() : nullptr, a, y.data());
    bias_act_backward_cpu<T>(static_cast<int64_t>(n), y.data(), g.data(), a, gx.data());
    std::printf("bias_act %d %d %d %zu %d %llx %llx\n", outer, C, inner, sizeof(T), flags,
                (unsigned long long)fnv(y), (unsigned long long)fnv(gx));
  }
}

int main() {
  std::mt19937 gen(0);
  for (int S : {2, 7, 33, 96}) {
    for (int C : {0, 1, 3, 32, 37}) {
      run<float>(13, S, C, gen);
      run<double>(5, S, C, gen);
    }
  }
  for (int C : {1, 3, 8, 16, 37}) {
    run_triplane<float>(301, 3, 7, 9, C, gen);
    run_triplane<double>(101, 2, 5, 4, C, gen);
  }
  for (int inner : {1, 13, 64}) {
    run_bias_act<float>(37, 19, inner, gen);
    run_bias_act<double>(11, 5, inner, gen);
  }
  return 0;
}
"""


@pytest.mark.skipif(CXX is None or platform.machine() != "x86_64" or platform.system() != "Linux",
                    reason="needs g++ on x86-64 Linux")
@pytest.mark.skipif(not _has_avx2(), reason="this CPU has no AVX2: both builds run the baseline code")
def test_avx2_clone_gives_the_baseline_bits(tmp_path):
    driver = tmp_path / "clones.cpp"
    driver.write_text(PROGRAM)

    def build(name: str, *defines: str) -> Path:
        binary = tmp_path / name
        # CMake's flags for this file (Release, GNU dialect: contraction allowed, -fno-trapping-math, OpenMP)
        cmd = [CXX, "-std=gnu++17", "-O3", "-DNDEBUG", "-fno-trapping-math", "-fopenmp", *defines, f"-I{CSRC}",
               str(driver), str(CSRC / "composite_cpu.cpp"), str(CSRC / "triplane_cpu.cpp"),
               str(CSRC / "bias_act_cpu.cpp"), "-o", str(binary)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return binary

    with ThreadPoolExecutor(2) as pool:
        cloned, baseline = pool.map(lambda args: build(*args), [("cloned",), ("baseline", "-DTRI3D_NO_CPU_CLONES")])
    assert b"ymm" in subprocess.run(["objdump", "-d", str(cloned)], capture_output=True, check=True).stdout, \
        "the normal build has no AVX2 code"
    runs = [subprocess.run([str(b)], capture_output=True, text=True, check=True).stdout.splitlines()
            for b in (cloned, baseline)]
    assert len(runs[0]) == 4 * 5 * 2 * 3 + 5 * 2 + 3 * 2 * 8
    differing = [(a, b) for a, b in zip(*runs) if a != b]
    assert not differing, f"{len(differing)} of {len(runs[0])} outputs differ, e.g. {differing[:3]}"
