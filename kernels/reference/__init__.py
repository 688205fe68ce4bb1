"""NumPy reference implementations of the kernels (the ground truth for parity tests)."""
