"""The constants of the Gaussian-splat rasterizer rules, shared by every backend (no torch here:
the CPU path must not load it). The rules themselves: ``kernels.reference.splat``."""
NEAR = 0.01            # camera-space depth below which a Gaussian is dropped
LOWPASS = 0.3          # pixels^2 added to the 2D covariance (anti-aliasing)
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4           # a pixel stops before the Gaussian that would take its transmittance to this
