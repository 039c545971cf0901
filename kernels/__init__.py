"""Layer 0: raw Triton kernels and their launch functions (installed as `tri3d.kernels`).

Tensors in, tensors out: no autograd, no modules. Importing this package never compiles
anything; kernels compile on first launch.
"""
