"""Tracked face landmarks -> head pose + 52 ARKit weights on an avatar's rig.

Per frame (``Retargeter.retarget``), for 478 landmarks in image pixels:
1. camera space: pixels -> units of the person's inter-ocular distance (IOD) at
   calibration, origin at their eye mid-point then, z flipped to point at the viewer
   (the avatar's face-space axes: x right, y down, z toward the viewer);
2. head pose: alignment (rotation, on-screen scale, depth scale, translation) of the
   rigid points (those no shape of the avatar's rig moves: forehead, temples,
   cheekbones, nose bridge) onto the person's calibrated neutral face, which lives
   in the avatar's face space;
3. expression: the aligned landmarks minus that neutral, fitted with bounded least
   squares against ``avatar.rig_deltas`` (``engine.tracking.rig_fit``).
The neutral is the median face of the first ``calibration_s`` seconds, each frame
aligned onto ``avatar.rig_neutral``: the person's neutral maps to the avatar's.
Filtering and lost-face policy live in ``engine.tracking.webcam``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.avatar.rig import CAMERA_DISTANCE
from engine.motion.pose import euler_from_matrix
from engine.tracking.rig_fit import RigFitter
from engine.motion.space import INDEX, MotionFrame
from engine.tracking.tracker import NUM_LANDMARKS

MESH_POINTS = 468  # face-mesh points; 468..477 are the irises


def rigid_points(rig_deltas: np.ndarray, max_motion: float, min_count: int,
                 exclude: tuple[str, ...] = ()) -> np.ndarray:
    """Face-mesh points that no (fitted) shape of the rig moves more than ``max_motion``
    (face units): forehead, temples, cheekbones, nose bridge in a typical rig. The head
    pose is aligned on these. At least ``min_count`` points: the least-moving ones."""
    motion = np.linalg.norm(np.asarray(rig_deltas, np.float64)[:, :MESH_POINTS], axis=2)
    motion[[INDEX[n] for n in exclude]] = 0.0
    motion = motion.max(axis=0)
    still = np.flatnonzero(motion <= max_motion)
    return still if len(still) >= min_count else np.sort(np.argsort(motion)[:min_count])


# iris centres (subject's right, left): camera-space origin and unit, as in the avatar's face space
_IRIS_CENTRES = (468, 473)
# mediapipe's z points away from the viewer; the avatar's face space points toward it
_CAMERA_AXES = np.array([1.0, 1.0, -1.0])


@dataclass(frozen=True)
class Alignment:
    """``dst ~= scale * rotation @ src + translation`` (Umeyama)."""
    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation


def similarity_align(src: np.ndarray, dst: np.ndarray) -> Alignment:
    """Least-squares similarity transform taking the (K, 3) ``src`` points onto ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(xd.T @ xs)
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rotation = (u * sign) @ vt
    scale = float((sv * sign).sum() / max((xs ** 2).sum(), 1e-12))
    return Alignment(scale, rotation, mu_d - scale * rotation @ mu_s)


@dataclass(frozen=True)
class HeadPose:
    """``camera ~= position + [s_xy, s_xy, s_z] * (rotation @ face)``: the renderer's weak
    perspective (on-screen size from x, y; mediapipe's depth scale fitted on its own)."""
    rotation: np.ndarray  # camera <- face
    position: np.ndarray  # camera position of the face-space origin
    scale_xy: float
    scale_z: float

    def to_face(self, camera: np.ndarray) -> np.ndarray:
        scales = np.array([self.scale_xy, self.scale_xy, self.scale_z])
        return ((camera - self.position) / scales) @ self.rotation


def check_landmarks(landmarks: object) -> np.ndarray:
    """(478, 3) finite float landmarks as float64, or ValueError."""
    if not isinstance(landmarks, np.ndarray):
        raise ValueError(f"expected landmarks as a numpy array, got {type(landmarks).__name__}")
    if landmarks.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected ({NUM_LANDMARKS}, 3) landmarks, got {landmarks.shape}")
    if not np.issubdtype(landmarks.dtype, np.floating):
        raise ValueError(f"expected float landmarks, got dtype {landmarks.dtype}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or inf")
    return landmarks.astype(np.float64)


def _eye_frame(lm_px: np.ndarray) -> tuple[np.ndarray, float]:
    """Eye mid-point (pixels) and inter-ocular distance (pixels) of one face."""
    right, left = lm_px[_IRIS_CENTRES[0]], lm_px[_IRIS_CENTRES[1]]
    return (right + left) / 2, float(np.linalg.norm((left - right)[:2]))


class Retargeter:
    """Calibrates on the first ``calibration_s`` seconds, then maps landmarks to motion.

    ``retarget(landmarks_px, t)`` -> unfiltered ``MotionFrame``. Before calibration
    completes, the neutral so far (median of the frames seen) is used, so motion is
    available from the first frame.
    """

    _POSE_REFINEMENTS = 3
    MAX_CALIBRATION_FRAMES = 120  # ends calibration even if frame times do not advance

    def __init__(self, avatar, cfg) -> None:
        neutral = np.asarray(avatar.rig_neutral, np.float64)
        if neutral.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"avatar.rig_neutral must be ({NUM_LANDMARKS}, 3), got {neutral.shape}")
        self.rig_neutral = neutral
        self.head_pivot = np.asarray(avatar.head_pivot, np.float64).reshape(3)
        self.cfg = cfg
        self.fitter = RigFitter(avatar.rig_deltas, ridge=cfg.fit_ridge, sparsity=cfg.fit_sparsity,
                                eye_weight=cfg.eye_weight, iterations=cfg.fit_iterations,
                                exclude=tuple(cfg.fit_exclude), depth_weight=cfg.depth_weight,
                                primary=tuple(cfg.fit_primary), tracker_gain=cfg.tracker_gain,
                                secondary_sparsity=cfg.fit_sparsity_secondary)
        self._rigid = rigid_points(avatar.rig_deltas, cfg.rigid_max_motion, cfg.rigid_min_points,
                                   tuple(cfg.fit_exclude))
        self.recalibrate()

    # --- calibration --------------------------------------------------------------
    def recalibrate(self) -> None:
        """Forget the neutral: the next ``calibration_s`` seconds define it again."""
        self._t0: float | None = None
        self._origin = np.zeros(3)
        self._unit = 1.0
        self._cal_camera: list[np.ndarray] = []   # camera-space landmarks per frame
        self._cal_faces: list[np.ndarray] = []    # the same, aligned onto rig_neutral
        self.neutral: np.ndarray | None = None    # person's neutral in avatar face space
        self._ref_rotation = np.eye(3)            # head rotation (camera <- face) at calibration
        self._ref_position = np.zeros(3)
        self._ref_scale = 1.0
        self.calibrated = False
        self._weights = np.zeros(self.fitter.gram.shape[0])

    def _add_calibration_frame(self, camera: np.ndarray, last: bool) -> None:
        """Median neutral of the frames so far; the reference head pose is taken from the
        first frame until the last calibration frame, then from all of them (once)."""
        self._cal_camera.append(camera)
        self._cal_faces.append(self._fit_pose(camera, self.rig_neutral).to_face(camera))
        self.neutral = np.median(np.stack(self._cal_faces), axis=0)
        if len(self._cal_camera) > 1 and not last:
            return
        poses = [self._fit_pose(cam, self.neutral) for cam in self._cal_camera]
        u, _, vt = np.linalg.svd(np.mean([p.rotation for p in poses], axis=0))  # mean rotation
        self._ref_rotation = u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt
        self._ref_position = np.median([p.position for p in poses], axis=0)
        self._ref_scale = float(np.median([p.scale_xy for p in poses]))

    # --- per frame ----------------------------------------------------------------
    def _to_camera(self, lm_px: np.ndarray) -> np.ndarray:
        return (lm_px - self._origin) * _CAMERA_AXES / self._unit

    def _fit_pose(self, camera: np.ndarray, target: np.ndarray) -> HeadPose:
        """The pose that puts the face-space shape ``target`` where ``camera`` shows it."""
        seen, target = camera[self._rigid], target[self._rigid]
        seen_c = seen - seen.mean(0)
        scales = np.ones(3)
        for _ in range(self._POSE_REFINEMENTS):  # rotation, then depth vs on-screen scale, again
            rotation = similarity_align(seen_c / scales, target).rotation.T
            model = target @ rotation.T
            model_c = model - model.mean(0)
            scale_xy = float((seen_c[:, :2] * model_c[:, :2]).sum() / (model_c[:, :2] ** 2).sum())
            scale_z = float((seen_c[:, 2] * model_c[:, 2]).sum() / max((model_c[:, 2] ** 2).sum(), 1e-12))
            scales = np.array([scale_xy, scale_xy, scale_z])
        return HeadPose(rotation, seen.mean(0) - scales * model.mean(0), scale_xy, scale_z)

    def retarget(self, landmarks_px: np.ndarray, t: float) -> MotionFrame:
        """Unfiltered motion of one frame's (478, 3) pixel landmarks taken at ``t`` seconds."""
        lm = check_landmarks(landmarks_px)
        if self._t0 is None:
            self._t0 = float(t)
            self._origin, self._unit = _eye_frame(lm)
            if self._unit < 1e-6:
                raise ValueError("degenerate landmarks: the eyes coincide")
        camera = self._to_camera(lm)
        if not self.calibrated:
            self.calibrated = (float(t) - self._t0 >= self.cfg.calibration_s
                               or len(self._cal_faces) + 1 >= self.MAX_CALIBRATION_FRAMES)
            self._add_calibration_frame(camera, last=self.calibrated)
        pose = self._fit_pose(camera, self.neutral)
        self._weights = self.fitter.fit(pose.to_face(camera) - self.neutral, self._weights)
        # relative to the calibration pose, in the head's own frame (H = H_ref @ R), as the
        # renderer turns the avatar's head in its face frame; else relative to the camera
        frame = self._ref_rotation if self.cfg.zero_pose_at_calibration else np.eye(3)
        rotation = frame.T @ pose.rotation
        return MotionFrame(self._weights.astype(np.float32), np.array(euler_from_matrix(rotation)),
                           self._translation(rotation, frame, pose.position, pose.scale_xy))

    def _translation(self, rotation: np.ndarray, frame: np.ndarray, position: np.ndarray,
                     scale: float) -> np.ndarray:
        """Inverts the renderer's ``apply_pose``: rotation about ``head_pivot``, then a weak-
        perspective scale ``D / (D - tz)`` about the face origin, then a shift in face space."""
        k = scale / self._ref_scale
        out = np.zeros(3)
        out[2] = CAMERA_DISTANCE * (1.0 - 1.0 / k)  # bigger on screen = closer to the viewer
        swing = (self.head_pivot - rotation @ self.head_pivot)[:2]  # the rotation moves the origin
        shift = frame.T @ (position - self._ref_position) / self._ref_scale
        out[:2] = shift[:2] - k * swing
        return out
