"""The renderer contract: a MotionFrame in, an RGB frame out."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from engine.motion.space import MotionFrame


@runtime_checkable
class Renderer(Protocol):
    """Turns motion into pixels. Implementations: ``engine.render.warp.WarpRenderer``."""

    width: int
    height: int

    def render(self, motion: MotionFrame) -> np.ndarray:
        """Return an (height, width, 3) uint8 RGB image (C-contiguous)."""
        ...
