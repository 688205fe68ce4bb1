"""A labelled contact sheet of an avatar's expressions (``facecast avatar preview``)."""
from __future__ import annotations

import cv2
import numpy as np

from engine.motion.space import MotionFrame

DEG = np.pi / 180


def sheet_motions() -> list[tuple[str, MotionFrame]]:
    both = lambda name, w=1.0: {f"{name}Left": w, f"{name}Right": w}  # noqa: E731
    return [
        ("neutral", MotionFrame.neutral()),
        ("jawOpen 0.5", MotionFrame.from_weights({"jawOpen": 0.5})),
        ("jawOpen 1", MotionFrame.from_weights({"jawOpen": 1.0})),
        ("smile", MotionFrame.from_weights(both("mouthSmile"))),
        ("pucker", MotionFrame.from_weights({"mouthPucker": 1.0})),
        ("funnel", MotionFrame.from_weights({"mouthFunnel": 1.0, "jawOpen": 0.15})),
        ("blink", MotionFrame.from_weights(both("eyeBlink"))),
        ("brows up", MotionFrame.from_weights({"browInnerUp": 1.0, **both("browOuterUp")})),
        ("yaw -20", MotionFrame.from_weights(yaw=-20 * DEG)),
        ("yaw +20", MotionFrame.from_weights(yaw=20 * DEG)),
        ("pitch -15", MotionFrame.from_weights(pitch=-15 * DEG)),
        ("pitch +15", MotionFrame.from_weights(pitch=15 * DEG)),
        ("gaze left", MotionFrame.from_weights({"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0})),
        ("gaze right", MotionFrame.from_weights({"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0})),
        ("jaw 1 + yaw 25", MotionFrame.from_weights({"jawOpen": 1.0}, yaw=25 * DEG)),
        ("frown + brows down", MotionFrame.from_weights({**both("mouthFrown"), **both("browDown")})),
    ]


def contact_sheet(renderer, motions, columns: int = 4, crop_face: bool = True) -> np.ndarray:
    """Render each (label, motion) and tile them with labels; returns RGB uint8."""
    tiles = []
    box = _face_box(renderer) if crop_face else None
    for label, motion in motions:
        img = renderer.render(motion)
        if box is not None:
            x0, y0, x1, y1 = box
            img = np.ascontiguousarray(img[y0:y1, x0:x1])
        img = img.copy()
        cv2.rectangle(img, (0, 0), (img.shape[1], 22), (0, 0, 0), -1)
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def _face_box(renderer) -> tuple[int, int, int, int]:
    """A square around the face (with hair and chin) in output pixels."""
    xy, _ = renderer.deformer.vertices(MotionFrame.neutral())
    lm = (xy[:478] + 0.5) * renderer.scale - 0.5 + renderer.shift
    c = (lm.min(0) + lm.max(0)) / 2
    side = 1.7 * float(np.ptp(lm[:, 1]))
    x0 = int(np.clip(c[0] - side / 2, 0, max(renderer.width - side, 0)))
    y0 = int(np.clip(c[1] - side / 2, 0, max(renderer.height - side, 0)))
    s = int(min(side, renderer.width, renderer.height))
    return x0, y0, x0 + s, y0 + s
