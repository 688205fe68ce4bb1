"""Cameras of the splat renderer: face space -> OpenCV camera space -> output pixels.

Face space (``engine.avatar.asset``): x right, y down, z toward the viewer, unit = inter-ocular
distance. The camera looks at the avatar from ``distance`` units in front of the eye line; its
focal length makes the plane z = 0 land exactly where the warp renderer puts the photo (photo
scaled to cover the view, centred), so at rest the two renderers agree on that plane and things
nearer the camera (the nose) are a little larger, as in any perspective view.

Stereo: two parallel eyes ``ipd`` apart along the camera's x axis, each with its principal
point shifted so that both converge on the plane z = 0 (off-axis projection, the screen plane
of a VR viewer at the avatar's eye line); each eye gets half the frame width, side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.avatar.asset import Avatar

FACE_UNIT_MM = 63.0   # an inter-ocular distance in millimetres (to turn an IPD in mm into face units)


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rotation: np.ndarray      # (3, 3) face space -> camera
    translation: np.ndarray   # (3,)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.rotation.T + self.translation


def view_camera(avatar: Avatar, width: int, height: int, distance: float, eye_offset: float = 0.0) -> Camera:
    """The camera of a ``width`` x ``height`` view; ``eye_offset`` (face units) moves it along x."""
    if distance <= 1.0:
        raise ValueError(f"camera distance must be more than 1 face unit, got {distance}")
    scale = max(width / avatar.width, height / avatar.height)          # photo pixels -> view pixels
    shift = np.array([(width - scale * avatar.width) / 2, (height - scale * avatar.height) / 2])
    origin = (avatar.face_origin + 0.5) * scale + shift                 # continuous pixel coords
    f = scale * avatar.face_scale * distance
    c, s = np.cos(avatar.face_roll), np.sin(avatar.face_roll)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]], np.float32)
    return Camera(int(width), int(height), float(f), float(f), float(origin[0] + f * eye_offset / distance),
                  float(origin[1]), rot, np.array([-eye_offset, 0.0, distance], np.float32))


def stereo_cameras(avatar: Avatar, width: int, height: int, distance: float, ipd_mm: float) -> list[Camera]:
    """(left eye, right eye) cameras, each ``width // 2`` wide."""
    half = ipd_mm / FACE_UNIT_MM / 2
    return [view_camera(avatar, width // 2, height, distance, -half),
            view_camera(avatar, width - width // 2, height, distance, +half)]


def background_view(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 3) float32 in [0, 1]: the static back plane as a view shows it (cover, centred)."""
    import cv2
    h, w = background.shape[:2]
    scale = max(width / w, height / h)
    shift = ((width - scale * w) / 2, (height - scale * h) / 2)
    m = np.array([[scale, 0, shift[0] + 0.5 * scale - 0.5], [0, scale, shift[1] + 0.5 * scale - 0.5]], np.float32)
    out = cv2.warpAffine(background, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32) / 255.0
