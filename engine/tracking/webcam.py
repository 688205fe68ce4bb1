"""Webcam frames -> filtered ``MotionFrame``s for the streaming engine's ``webcam`` mode.

    retargeter = WebcamRetargeter(avatar, config)       # config: Config or WebcamConfig
    motion = retargeter.push_frame(rgb, t)             # None until a face was seen

Each frame: face mesh (``FaceTracker``) -> rig fit (``Retargeter``) -> one-euro
filter. When the face is lost, the last motion is held for ``lost_face_hold_s``,
then eased back to neutral over ``lost_face_ease_s``; when it comes back, the
filter restarts from what was shown, so there is no jump. A change of frame size
(a new camera mode) starts a new calibration.

What is shown stays inside what the warp renderer can show: head yaw/pitch/roll are
clamped to ``webcam.max_yaw_deg`` / ``max_pitch_deg`` / ``max_roll_deg`` (past them the
hair and jaw smear; docs/retargeting.md). With ``webcam.mirror`` the avatar moves like the
user's mirror image: left/right shapes swap, yaw, roll and sideways shift change sign.
"""
from __future__ import annotations

import math

import numpy as np

from engine.tracking.one_euro import OneEuroFilter
from engine.tracking.retarget import Retargeter
from engine.motion.space import ARKIT_NAMES, INDEX, MotionFrame, NUM_BLENDSHAPES, POSE_DIM
from engine.tracking.tracker import FaceTracker, check_rgb_frame


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _mirror_name(name: str) -> str:
    if "Left" in name:
        return name.replace("Left", "Right")
    return name.replace("Right", "Left")


# blendshape i of a mirrored frame is blendshape MIRROR_INDEX[i] of the original
MIRROR_INDEX = np.array([INDEX[_mirror_name(n)] for n in ARKIT_NAMES])


def mirror_motion(motion: MotionFrame) -> MotionFrame:
    """The mirror image (in the face's vertical mid-plane): left/right shapes swapped (jawLeft
    <-> jawRight, eyeBlinkLeft <-> eyeBlinkRight, ...), yaw, roll and x shift negated."""
    yaw, pitch, roll = motion.head_rotation
    tx, ty, tz = motion.head_translation
    return MotionFrame(motion.blendshapes[MIRROR_INDEX], np.array([-yaw, pitch, -roll]), np.array([-tx, ty, tz]))


def clamp_head(motion: MotionFrame, max_yaw_deg: float, max_pitch_deg: float, max_roll_deg: float) -> MotionFrame:
    """``motion`` with yaw, pitch, roll (radians) each clamped to +-its limit (degrees)."""
    limits = np.radians([max_yaw_deg, max_pitch_deg, max_roll_deg]).astype(np.float32)
    return MotionFrame(motion.blendshapes, np.clip(motion.head_rotation, -limits, limits), motion.head_translation)


class WebcamRetargeter:
    """One webcam stream driving one avatar (not thread-safe; one per session)."""

    def __init__(self, avatar, config, tracker: FaceTracker | None = None) -> None:
        cfg = getattr(config, "webcam", config)
        self.cfg = cfg
        self.retargeter = Retargeter(avatar, cfg)
        self.tracker = tracker or FaceTracker(cfg.min_detection_confidence, cfg.min_tracking_confidence)
        n = NUM_BLENDSHAPES
        min_cutoff = np.r_[np.full(n, cfg.shape_filter_min_cutoff), np.full(POSE_DIM, cfg.pose_filter_min_cutoff)]
        beta = np.r_[np.full(n, cfg.shape_filter_beta), np.full(POSE_DIM, cfg.pose_filter_beta)]
        self.filter = OneEuroFilter(min_cutoff, beta, cfg.filter_d_cutoff)
        self._shown: MotionFrame | None = None    # last motion returned
        self._shown_t = 0.0
        self._tracked: MotionFrame | None = None  # last motion from a tracked face
        self._seen_t = 0.0
        self._lost = False
        self._frame_shape: tuple[int, ...] | None = None
        # the last tracked motion before the head clamp (filtered, mirrored as shown): what the
        # tracker measured, for tools that need poses past what the warp can show
        self.unclamped: MotionFrame | None = None

    def push_frame(self, rgb: np.ndarray, t: float) -> MotionFrame | None:
        """Track one RGB uint8 (H, W, 3) frame taken at ``t`` seconds."""
        rgb = check_rgb_frame(rgb)
        if self._frame_shape is not None and rgb.shape != self._frame_shape:
            self.retargeter.recalibrate()  # a new camera mode: pixels no longer compare
        self._frame_shape = rgb.shape
        return self.push_landmarks(self.tracker.track(rgb), t)

    def push_landmarks(self, landmarks: np.ndarray | None, t: float) -> MotionFrame | None:
        """Same as ``push_frame`` for already-tracked (478, 3) pixel landmarks (None = no face)."""
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t}")
        if landmarks is None:
            return self._face_lost(t)
        raw = self.retargeter.retarget(landmarks, t)
        if self._lost and self._shown is not None:  # restart the filter from what is on screen
            self.filter.reset()
            self.filter(self._shown.to_vector(), self._shown_t)
        self._lost = False
        v = self.filter(raw.to_vector(), t)
        v[:NUM_BLENDSHAPES] = np.clip(v[:NUM_BLENDSHAPES], 0.0, 1.0)
        motion = MotionFrame.from_vector(v)
        if getattr(self.cfg, "mirror", False):
            motion = mirror_motion(motion)
        self.unclamped = motion.copy()
        if hasattr(self.cfg, "max_yaw_deg"):
            motion = clamp_head(motion, self.cfg.max_yaw_deg, self.cfg.max_pitch_deg, self.cfg.max_roll_deg)
        self._tracked, self._seen_t = motion, t
        return self._show(motion, t)

    def _face_lost(self, t: float) -> MotionFrame | None:
        if self._tracked is None:
            return None
        self._lost = True
        since = t - self._seen_t - self.cfg.lost_face_hold_s
        if since <= 0.0:
            return self._show(self._tracked.copy(), t)
        ease = self.cfg.lost_face_ease_s
        keep = 0.0 if ease <= 0.0 else 1.0 - _smoothstep(since / ease)
        return self._show(MotionFrame.from_vector(self._tracked.to_vector() * keep), t)

    def _show(self, motion: MotionFrame, t: float) -> MotionFrame:
        self._shown, self._shown_t = motion, t
        return motion.copy()

    def recalibrate(self) -> None:
        """Take the next ``calibration_s`` seconds as the person's neutral face."""
        self.retargeter.recalibrate()

    def close(self) -> None:
        self.tracker.close()

    def __enter__(self) -> "WebcamRetargeter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
