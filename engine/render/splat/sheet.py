"""Warp vs splat side by side over head yaw -30 deg ... +30 deg (``facecast avatar preview --splat``):
row 1 the warp renderer, row 2 the splat renderer, row 3 the splat with the mouth open."""
from __future__ import annotations

import cv2
import numpy as np

from engine.motion.space import MotionFrame

YAWS_DEG = (-30, -15, 0, 15, 30)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.rectangle(img, (0, 0), (img.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(img, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def yaw_sheet(warp, splat, yaws_deg=YAWS_DEG) -> np.ndarray:
    """RGB uint8 sheet: columns = yaw angles; rows = warp, splat, splat + jawOpen 0.8."""
    rows = []
    for name, renderer, weights in (("warp", warp, {}), ("splat", splat, {}), ("splat jaw .8", splat, {"jawOpen": 0.8})):
        tiles = [_label(renderer.render(MotionFrame.from_weights(weights, yaw=float(np.radians(d)))),
                        f"{name} yaw {d:+d}") for d in yaws_deg]
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def renderers_yaw_sheet(renderers: dict, yaws_deg=YAWS_DEG) -> np.ndarray:
    """RGB uint8 sheet: columns = yaw angles (neutral expression); one row per named renderer."""
    return np.concatenate([np.concatenate([_label(r.render(MotionFrame.from_weights({}, yaw=float(np.radians(d)))),
                                                  f"{name} yaw {d:+d}") for d in yaws_deg], 1)
                           for name, r in renderers.items()], 0)
