"""The CUDA compositor's shared interval terms and register channels, checked on the host.

``TermsSharedByLanes`` (csrc/composite.h): each of 32 lanes computes one interval's terms
per chunk, every lane reads them. The same cores run with the chunk held in an array
(``ArrayLanes``, exactly what a warp's shuffles return: lane j's terms of interval
i0 + j) and must give bitwise the results of every lane computing every interval
(``TermsFromInputs``, whose backward also recomputes them in its reverse scan), forward
and parked backward, at sample counts around the chunk size.

Register channels (``kSlots``): a lane's channels held in registers must give bitwise the
results of the memory loops, forward with the channels split over 1, 2 and 4 emulated
lanes (lanes run one after another: the forward shares nothing between them but the
terms), backward on one lane with a slot left unused. Needs a C++17 compiler, not a GPU."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CXX = shutil.which("c++") or shutil.which("g++")
CSRC = Path(__file__).parents[2] / "csrc"

PROGRAM = r"""
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "composite.h"

using namespace tri3d;

struct NoSync {
  void operator()() const {}
};
struct OneLane {
  float operator()(float x) const { return x; }
};

template <int kSlots = 0, typename Terms>
void forward(int S, int C, const std::vector<float>& rgb, const std::vector<float>& depth, const Terms& terms,
             std::vector<float>& out, int lanes = 1) {
  out.assign(C + 1 + (S - 1), 0.0f);
  for (int lane = 0; lane < lanes; ++lane) {
    composite_forward_ray<float, kSlots>(S, C, rgb.data(), depth.data(), out.data(), out.data() + C,
                                         out.data() + C + 1, lane, lanes, terms);
  }
}

template <int kSlots = 0, typename Terms>
void backward(int S, int C, const std::vector<float>& rgb, const std::vector<float>& depth,
              const std::vector<float>& g_rgb, const std::vector<float>& g_depth, const std::vector<float>& g_w,
              const Terms& terms, std::vector<float>& out) {
  out.assign(S + S * C, 0.0f);
  composite_backward_ray<float, kSlots>(S, C, rgb.data(), depth.data(), g_rgb.data(), g_depth.data(), g_w.data(),
                                        out.data(), out.data() + S, 0, 1, terms, NoSync(), OneLane());
}

int main() {
  std::mt19937 gen(0);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<float> step(0.01f, 0.3f);
  int mismatches = 0, cases = 0;
  for (int S : {1, 2, 5, 32, 33, 34, 64, 65, 97}) {
    const int C = 3;
    std::vector<float> sigma(S), depth(S), rgb(S * C), g_rgb(C), g_depth(1), g_w(S > 1 ? S - 1 : 1);
    float d = 1.0f;
    for (int i = 0; i < S; ++i) {
      sigma[i] = normal(gen);
      depth[i] = d;
      d += step(gen);
    }
    for (float& x : rgb) x = normal(gen);
    for (float& x : g_rgb) x = normal(gen);
    for (float& x : g_w) x = normal(gen);
    g_depth[0] = normal(gen);
    const int64_t K = S - 1;
    std::vector<float> a, b;
    auto differs = [&]() {
      ++cases;
      mismatches += std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0;
    };
    const TermsFromInputs<float> every_lane{sigma.data(), depth.data()};
    const TermsSharedByLanes<float, false, ArrayLanes<float>> shared{sigma.data(), depth.data(), K, {}};
    const TermsSharedByLanes<float, true, ArrayLanes<float>> parked{sigma.data(), depth.data(), K, {}};
    forward(S, C, rgb, depth, every_lane, a);
    forward(S, C, rgb, depth, shared, b);
    differs();
    forward<1>(S, C, rgb, depth, shared, b, 4);  // one channel per lane, the fourth lane idle
    differs();
    forward<2>(S, C, rgb, depth, shared, b, 2);  // two slots per lane, the second lane's second unused
    differs();
    backward(S, C, rgb, depth, g_rgb, g_depth, g_w, every_lane, a);
    backward(S, C, rgb, depth, g_rgb, g_depth, g_w, parked, b);
    differs();
    backward<4>(S, C, rgb, depth, g_rgb, g_depth, g_w, parked, b);
    differs();
    backward<4>(S, C, rgb, depth, g_rgb, g_depth, g_w, every_lane, b);
    differs();
  }
  std::printf("%d %d\n", cases, mismatches);
  return 0;
}
"""


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_shared_terms_equal_every_lane_computing_them(tmp_path):
    source = tmp_path / "shared_terms.cpp"
    source.write_text(PROGRAM)
    binary = tmp_path / "shared_terms"
    # AddressSanitizer: a lane reading past the ray (an interval k >= K) is an error too
    build = subprocess.run([CXX, "-std=c++17", "-O1", "-fsanitize=address", f"-I{CSRC}", str(source), "-o", str(binary)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    cases, mismatches = map(int, subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split())
    assert cases == 54 and mismatches == 0, f"{mismatches} of {cases} results differ"
