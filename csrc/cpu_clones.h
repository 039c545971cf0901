// Per-ISA clones of the CPU loops: with GCC on x86-64 Linux a function marked
// TRI3D_CPU_CLONES is compiled for AVX2 and for the baseline ISA and the loader picks one
// per machine (target_clones, an ifunc), so vector loops run 8 floats wide instead of 4.
// AVX2 does not enable FMA, so no multiply-add is contracted and both clones give the same
// bits (-DTRI3D_NO_CPU_CLONES builds the baseline only; tests/csrc/test_cpu_clones.py).
// Helpers called from a clone are marked TRI3D_INLINE_INTO_CLONES so that they are
// compiled into each clone, not once for the baseline.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(TRI3D_NO_CPU_CLONES)
#define TRI3D_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#define TRI3D_INLINE_INTO_CLONES __attribute__((always_inline)) inline
#else
#define TRI3D_CPU_CLONES
#define TRI3D_INLINE_INTO_CLONES inline
#endif
