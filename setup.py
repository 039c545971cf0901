"""Build script: installs `tri3d`, maps the top-level `kernels/` folder to `tri3d.kernels`,
and builds the native extension `tri3d._C` with CMake.

The extension is optional: when CMake, pybind11 or a compiler is missing, or the build
fails, the package installs without it (the reference paths still work) and says so.
Environment: TRI3D_CUDA=AUTO|ON|OFF (CUDA kernels), CMAKE_CUDA_ARCHITECTURES (default
"80;90"), TRI3D_NO_NATIVE=1 (skip the extension).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configure and build with CMake; never fail the install because of the extension."""

    def build_extension(self, ext: Extension) -> None:
        if os.environ.get("TRI3D_NO_NATIVE") == "1":
            print("tri3d: TRI3D_NO_NATIVE=1, skipping the native extension", file=sys.stderr)
            return
        try:
            self._cmake_build(ext)
        except Exception as err:  # the reference path works without the extension
            print(f"tri3d: WARNING: native extension not built ({err}); using reference paths", file=sys.stderr)

    def _cmake_build(self, ext: Extension) -> None:
        cmake = shutil.which("cmake")
        if cmake is None:
            try:
                import cmake as cmake_pkg

                cmake = str(Path(cmake_pkg.CMAKE_BIN_DIR) / "cmake")
            except ImportError as err:
                raise RuntimeError("cmake not found") from err
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DTRI3D_CUDA={os.environ.get('TRI3D_CUDA', 'AUTO')}",
        ]
        if os.environ.get("CMAKE_CUDA_ARCHITECTURES"):
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={os.environ['CMAKE_CUDA_ARCHITECTURES']}")
        if shutil.which("ninja"):
            args.append("-GNinja")
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = str(max(1, os.cpu_count() or 1))
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)

    def copy_extensions_to_source(self) -> None:
        # Editable installs copy the built module next to the sources; skip when it failed.
        try:
            super().copy_extensions_to_source()
        except Exception as err:  # distutils raises its own error types for missing files
            print(f"tri3d: WARNING: native extension not installed ({err})", file=sys.stderr)

    def get_outputs(self) -> list:
        return [p for p in super().get_outputs() if Path(p).exists()]


packages = find_packages(include=["tri3d", "tri3d.*"]) + ["tri3d.kernels"]

setup(
    packages=packages,
    package_dir={"tri3d.kernels": "kernels"},
    ext_modules=[CMakeExtension("tri3d._C")],
    cmdclass={"build_ext": CMakeBuild},
)
