"""Mutants of the native CPU kernels: does each native test file fail when one line of the
C++ is wrong?

Usage: python tools/native_mutants.py [--only TEXT ...] [--list]

DESIGN.md: a gradient test is trusted only once it has been seen to fail. The Triton
kernels' mutants run in the test suite (``tests/ops``, under the interpreter); the native
kernels need a rebuild per mutant (about 10-30 s each), so their check is this tool. It
copies ``csrc/`` and ``CMakeLists.txt`` into a temporary folder, builds the extension
there (CPU only), and for each mutant (one line of the C++ changed: a gradient write
scaled by 1.5, a comparison made inclusive, a term dropped) rebuilds it and runs the
mutant's tests against that build: a copy of the package whose ``tri3d._C`` is the
mutant, first on ``PYTHONPATH`` (``python -P``, so the checkout's own package is not
imported instead). The shared ``HOST_DEVICE`` cores (``composite.h``, ``bias_act.h``) are
what the CUDA kernels run too. Nothing in the checkout is changed; the temporary folder
is removed at the end.

Prints one line per mutant; exit status 1 when a mutant survives (its tests pass), when the
unchanged build fails its tests, or when a mutant's text no longer occurs exactly once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tri3d.testing import replace_once

ROOT = Path(__file__).resolve().parent.parent
COMPOSITE_TESTS = ("tests/csrc/test_composite_native.py",)
TRIPLANE_TESTS = ("tests/csrc/test_triplane_native.py",)
BIAS_ACT_TESTS = ("tests/csrc/test_bias_act_native.py",)
IMPORTANCE_TESTS = ("tests/csrc/test_importance_native.py",)


@dataclass(frozen=True)
class Mutant:
    name: str  # what is wrong
    file: str  # under csrc/
    old: str  # text that occurs exactly once in the file
    new: str  # its replacement
    tests: tuple[str, ...]  # test files that must fail


# Left out as equivalent: dropping the 1e-10 from the backward's transmittance (results move by
# ~1e-10) and passing the depth gradient at the clamp's bounds (a ray's depth, an average of
# interval midpoints, equals its first or last depth only by rounding); both survived. The
# compositor's channels-in-registers versions (kSlots > 0) are CUDA's only: the CPU build
# cannot run a mutant of them (the GPU tests compare them with the reference).
MUTANTS = (
    Mutant("compositor: weight gradient's rgb term x1.5", "composite.h",
           "(p_k + p_next) * T(0.5);", "(p_k + p_next) * T(0.75);", COMPOSITE_TESTS),
    Mutant("compositor: weight gradient's depth term x1.5", "composite.h",
           "G += gdepth * (", "G += T(1.5) * gdepth * (", COMPOSITE_TESTS),
    Mutant("compositor: sigma gradient x1.5", "composite.h",
           "grad_sigma[k + 1] = (gm + gm_next) * T(0.5);", "grad_sigma[k + 1] = (gm + gm_next) * T(0.75);",
           COMPOSITE_TESTS),
    Mutant("compositor: first sample's sigma gradient x1.5", "composite.h",
           "grad_sigma[0] = gm_next * T(0.5);", "grad_sigma[0] = gm_next * T(0.75);", COMPOSITE_TESTS),
    Mutant("compositor: rgb gradient of the first row x1.5", "composite.h",
           "write_row(0, w_next * T(0.5));", "write_row(0, w_next * T(0.75));", COMPOSITE_TESTS),
    Mutant("compositor: rgb gradient of the other rows x1.5", "composite.h",
           "write_row(k + 1, (w + w_next) * T(0.5));", "write_row(k + 1, (w + w_next) * T(0.75));",
           COMPOSITE_TESTS),
    Mutant("compositor: forward rgb x1.5", "composite.h",
           "out_rgb[c] += v * rgb[row * C + c];", "out_rgb[c] += T(1.5) * v * rgb[row * C + c];", COMPOSITE_TESTS),
    Mutant("triplane sampling: plane gradient x1.5", "triplane_cpu.cpp",
           "r[c] += w * grad_out[c];", "r[c] += T(1.5) * w * grad_out[c];", TRIPLANE_TESTS),
    Mutant("triplane sampling: point gradient along x x1.5", "triplane_cpu.cpp",
           "grad_point[L.axes[2 * p]] += gx / T(3)", "grad_point[L.axes[2 * p]] += gx / T(2)", TRIPLANE_TESTS),
    Mutant("triplane sampling: point gradient along y x1.5", "triplane_cpu.cpp",
           "grad_point[L.axes[2 * p + 1]] += gy / T(3)", "grad_point[L.axes[2 * p + 1]] += gy / T(2)",
           TRIPLANE_TESTS),
    Mutant("triplane sampling: forward read x1.5", "triplane_cpu.cpp",
           "out[c] += w * r[c];", "out[c] += T(1.5) * w * r[c];", TRIPLANE_TESTS),
    Mutant("bias_act: gradient x1.5", "bias_act.h",
           "const T scaled = grad * a.gain;", "const T scaled = grad * a.gain * T(1.5);", BIAS_ACT_TESTS),
    Mutant("bias_act: leaky slope dropped from the gradient", "bias_act.h",
           "y > T(0) ? scaled : scaled * a.alpha;", "y > T(0) ? scaled : scaled;", BIAS_ACT_TESTS),
    Mutant("bias_act: the clamp's bound passes its gradient", "bias_act.h",
           "(y < a.clamp) & (y > -a.clamp)", "(y <= a.clamp) & (y >= -a.clamp)", BIAS_ACT_TESTS),
    Mutant("importance merge: ties take the fine depth first", "importance.h",
           "coarse[i] <= vals[j]", "coarse[i] < vals[j]", IMPORTANCE_TESTS),
)


def cmake_executable() -> str:
    found = shutil.which("cmake")
    if found:
        return found
    import cmake as cmake_pkg  # the pip wheel setup.py also falls back to

    return str(Path(cmake_pkg.CMAKE_BIN_DIR) / "cmake")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class Sandbox:
    """A CPU-only build of the extension from a copy of csrc/, and a copy of the package
    (``pkg/tri3d``, ``kernels/`` as ``tri3d/kernels``) that loads it."""

    def __init__(self, root: Path):
        self.src, self.build, self.pkg = root / "src", root / "build", root / "pkg"
        shutil.copytree(ROOT / "csrc", self.src / "csrc")
        shutil.copy(ROOT / "CMakeLists.txt", self.src)
        ignore = shutil.ignore_patterns("*.so", "__pycache__")
        shutil.copytree(ROOT / "tri3d", self.pkg / "tri3d", ignore=ignore)
        shutil.copytree(ROOT / "kernels", self.pkg / "tri3d" / "kernels", ignore=ignore)
        import pybind11

        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        done = run([cmake_executable(), "-S", str(self.src), "-B", str(self.build), *generator, "-DTRI3D_CUDA=OFF",
                    f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={self.pkg / 'tri3d'}", f"-DPython_EXECUTABLE={sys.executable}",
                    f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"])
        if done.returncode:
            raise RuntimeError(f"cmake configure failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        self.env = dict(os.environ, PYTHONPATH=str(self.pkg), TRI3D_REQUIRE_NATIVE="1")

    def compile(self) -> None:
        done = run([cmake_executable(), "--build", str(self.build)])
        if done.returncode:
            raise RuntimeError(f"build failed:\n{done.stdout[-3000:]}")

    def loaded_extension(self) -> str:
        """Where ``tri3d._C`` is imported from under the tests' environment."""
        done = run([sys.executable, "-P", "-c", "import tri3d._C as c; print(c.__file__)"], cwd=ROOT, env=self.env)
        return done.stdout.strip() or done.stderr.strip()

    def tests_pass(self, tests: tuple[str, ...]) -> tuple[bool, str]:
        done = run([sys.executable, "-P", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=ROOT,
                   env=self.env)
        lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
        return done.returncode == 0, lines[-1] if lines else ""

    def mutate(self, mutant: Mutant) -> str:
        """Apply ``mutant``; returns the file's original text."""
        path = self.src / "csrc" / mutant.file
        text = path.read_text()
        path.write_text(mutated_text(mutant, text))
        return text


def mutated_text(mutant: Mutant, text: str) -> str:
    """``text`` (of ``csrc/<mutant.file>``) with the mutant's line changed."""
    return replace_once(text, mutant.old, mutant.new, f"{mutant.name} (csrc/{mutant.file})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="run the mutants whose name contains one of these texts (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only is None or any(t in m.name for t in args.only)]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name}  (csrc/{m.file}; {', '.join(m.tests)})")
        return 0 if chosen else 2
    with tempfile.TemporaryDirectory(prefix="tri3d-mutants-") as tmp:
        box = Sandbox(Path(tmp))
        box.compile()
        where = box.loaded_extension()
        if not where.startswith(tmp):
            print(f"the tests would not load the sandbox's build (tri3d._C from {where})", file=sys.stderr)
            return 1
        for tests in sorted({m.tests for m in chosen}):
            ok, summary = box.tests_pass(tests)
            if not ok:
                print(f"the unchanged build fails {', '.join(tests)}: {summary}", file=sys.stderr)
                return 1
        survived = 0
        for m in chosen:
            t0 = time.perf_counter()
            original = box.mutate(m)
            try:
                box.compile()
                ok, summary = box.tests_pass(m.tests)
            finally:
                (box.src / "csrc" / m.file).write_text(original)
            survived += ok
            verdict = "SURVIVED" if ok else "killed"
            print(f"{verdict:8s} {m.name} ({time.perf_counter() - t0:.0f} s): {summary}", flush=True)
    print(f"{len(chosen) - survived} of {len(chosen)} mutants killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
