"""Small shared helpers (profiling ranges, ...)."""
