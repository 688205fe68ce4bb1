"""Warp renderer: photo + rigged mesh + custom kernels -> frames."""
from engine.render.warp.renderer import WarpRenderer

__all__ = ["WarpRenderer"]
