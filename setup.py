"""Build script: installs `tri3d` and maps the top-level `kernels/` folder to `tri3d.kernels`."""
from setuptools import find_packages, setup

packages = find_packages(include=["tri3d", "tri3d.*"]) + ["tri3d.kernels"]

setup(
    packages=packages,
    package_dir={"tri3d.kernels": "kernels"},
)
