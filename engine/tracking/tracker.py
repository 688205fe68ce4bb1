"""Face tracking for webcam driving: mediapipe 0.10.21's bundled face mesh.

``FaceTracker.track(rgb)`` returns the 478 landmarks (468 mesh points + 10 iris
points) of the one face in the frame, in image pixels: x right, y down, z toward
the camera-negative as mediapipe scales it (z in the same pixel units as x), or
``None`` when there is no face. Video mode: the face found in one frame seeds
the search in the next, so a stream of frames costs ~6-8 ms each on one core.
"""
from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 478


def check_rgb_frame(rgb: object) -> np.ndarray:
    """Return ``rgb`` as a C-contiguous (H, W, 3) uint8 array, or raise ValueError."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected an RGB frame as a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB frame of dtype uint8, got {rgb.dtype}")
    if rgb.shape[0] < 32 or rgb.shape[1] < 32:
        raise ValueError(f"frame of {rgb.shape[1]}x{rgb.shape[0]} pixels is too small to track a face")
    return np.ascontiguousarray(rgb)


class FaceTracker:
    """One face's 478 landmarks per frame from a video stream (not thread-safe)."""

    def __init__(self, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, static_image_mode: bool = False) -> None:
        import mediapipe as mp  # heavy import (~1 s): only when a tracker is made

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode, refine_landmarks=True, max_num_faces=1,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)

    def track(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) float32 landmarks in pixels, or None when no face is found."""
        if self._mesh is None:
            raise RuntimeError("FaceTracker is closed")
        rgb = check_rgb_frame(rgb)
        h, w = rgb.shape[:2]
        result = self._mesh.process(rgb)
        faces = result.multi_face_landmarks
        if not faces:
            return None
        lm = faces[0].landmark
        out = np.array([(p.x, p.y, p.z) for p in lm], np.float32)
        if out.shape[0] != NUM_LANDMARKS:
            raise RuntimeError(f"face mesh returned {out.shape[0]} landmarks, expected {NUM_LANDMARKS}")
        out *= np.array([w, h, w], np.float32)
        return out

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
