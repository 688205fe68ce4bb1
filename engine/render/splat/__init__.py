"""Gaussian-splat renderer: Gaussians bound to the rig mesh -> camera -> kernels.render_gaussians."""
from engine.render.splat.renderer import SplatRenderer

__all__ = ["SplatRenderer"]
