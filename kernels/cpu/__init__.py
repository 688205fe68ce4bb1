"""CPU fast paths (numba, OpenCV); same contracts as kernels.reference."""
