"""Calibrate an avatar's mouth on its rendered image: the visible lip gap a face tracker sees.

``engine.avatar.mouth_rest.calibrate_aperture`` inverts the rig's own lip gap; what a viewer
(and ``facecast eval lipsync``) sees is the rendered image, where teeth, the lip texture and
anti-aliasing bend that curve a little. ``calibrate_visible_aperture`` renders a jawOpen sweep,
tracks each frame with the face mesh (landmarks 13/14 over 10/152, as for a real mouth) and
stores the inverse map in the avatar, so the *visible* gap grows in proportion to the
commanded opening. ``visible_aperture_curve`` is the same measurement through the stored map.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.avatar.asset import Avatar
from engine.avatar.mouth_rest import CHIN, FOREHEAD, LOWER_INNER, UPPER_INNER, invert_sweep
from engine.motion.space import MotionFrame

CALIBRATION_SIZE = 384      # render side for the sweep (the tracker's accuracy, not speed, matters)
SWEEP_POINTS = 21


def tracked_gap(landmarks: np.ndarray | None) -> float:
    """Inner-lip opening in face heights from tracked landmarks (NaN without a face)."""
    if landmarks is None:
        return float("nan")
    face_h = float(np.linalg.norm(landmarks[CHIN, :2] - landmarks[FOREHEAD, :2]))
    return float(landmarks[LOWER_INNER, 1] - landmarks[UPPER_INNER, 1]) / max(face_h, 1e-6)


def _gaps(avatar: Avatar, jaws: np.ndarray, tracker, size: int) -> np.ndarray:
    from engine.render.warp import WarpRenderer
    renderer = WarpRenderer(avatar, size, size, backend="cpu")
    return np.array([tracked_gap(tracker.track(renderer.render(MotionFrame.from_weights({"jawOpen": float(j)}))))
                     for j in jaws])


def visible_aperture_curve(avatar: Avatar, commands: np.ndarray, tracker=None,
                           size: int = CALIBRATION_SIZE) -> np.ndarray:
    """The tracked gap (face heights) of the avatar's render at each commanded opening."""
    from engine.tracking.tracker import FaceTracker
    own = tracker is None
    tracker = tracker or FaceTracker(static_image_mode=True)
    try:
        return _gaps(avatar, np.asarray(commands, np.float64), tracker, size)
    finally:
        if own:
            tracker.close()


def calibrate_visible_aperture(avatar: Avatar, size: int = CALIBRATION_SIZE) -> Avatar:
    """A copy of ``avatar`` whose aperture map makes the rendered gap proportional to jawOpen."""
    from engine.tracking.tracker import FaceTracker
    raw = dataclasses.replace(avatar, aperture_command=None, aperture_jaw=None)
    jaws = np.linspace(0.0, 1.0, SWEEP_POINTS)
    with FaceTracker(static_image_mode=True) as tracker:
        gaps = _gaps(raw, jaws, tracker, size)
        photo_gap = tracked_gap(tracker.track(avatar.image))
    ok = np.isfinite(gaps)
    if ok.sum() < SWEEP_POINTS // 2:
        raise ValueError("the face tracker lost the avatar's face in its own jawOpen sweep")
    gaps = np.maximum.accumulate(np.maximum(gaps[ok], 0.0))
    command, jaw_for = invert_sweep(jaws[ok], gaps, "the avatar's rendered lips", min_rise=1e-4)
    target = gaps[0] + command * (gaps[-1] - gaps[0])
    photo = float(np.interp(photo_gap, target, command)) if np.isfinite(photo_gap) else avatar.photo_jaw_open
    return dataclasses.replace(avatar, aperture_command=command, aperture_jaw=jaw_for, photo_jaw_open=photo)
