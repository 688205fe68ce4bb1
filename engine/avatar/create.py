"""Make an avatar from one portrait photo: landmarks -> rig -> layered render mesh."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np

from engine.avatar.asset import Avatar, AvatarError
from engine.avatar.blendshapes import build_blendshapes
from engine.avatar.landmarks import detect_landmarks, face_topology
from engine.avatar.layers import build_layers
from engine.avatar.open_mouth import fill_lip_ring, lower_lip_shift, move_lower_lip
from engine.avatar.mouth_rest import (WIDE_OPEN_PHOTO_GAP, calibrate_aperture, closed_rest_delta, lip_gap,
                                      photo_opening)
from engine.avatar.rig import face_frame, to_face_space
from engine.config import AvatarConfig

log = logging.getLogger(__name__)
HEAD_PIVOT = (0.0, 0.5, -1.2)  # face units: centre of head rotation (behind the nose, a 2.5D compromise
#                               between the real neck pivot and keeping the face in place)


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 pixels of an image file, or ``AvatarError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"photo {path} does not exist")
    data = np.fromfile(path, np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise AvatarError(f"{path} is not an image (could not decode it as JPEG/PNG/...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_image(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise AvatarError(f"expected an RGB image as a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise AvatarError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and 0 <= image.min() and image.max() <= 1:
            image = (image * 255 + 0.5).astype(np.uint8)
        else:
            raise AvatarError(f"expected a uint8 image (or float in [0, 1]), got {image.dtype}")
    return np.ascontiguousarray(image[..., :3])


def create_avatar(image_rgb: np.ndarray, name: str = "avatar",
                  config: AvatarConfig | None = None) -> Avatar:
    """Build a rigged avatar from a portrait; raises ``AvatarError`` naming the problem."""
    cfg = config or AvatarConfig()
    image = check_image(image_rgb)
    notes: list[str] = []
    h, w = image.shape[:2]
    if min(h, w) < cfg.min_image_side:
        raise AvatarError(f"image of {w}x{h} pixels is too small for an avatar "
                          f"(the shorter side must be at least {cfg.min_image_side} pixels)")
    if max(h, w) > cfg.max_image_side:
        f = cfg.max_image_side / max(h, w)
        image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        notes.append(f"downscaled the {w}x{h} photo to {image.shape[1]}x{image.shape[0]}")
    found = detect_landmarks(image)
    if found is None:
        raise AvatarError("no face found in the photo: use a frontal portrait with the whole face visible")
    if found.num_faces > 1:
        msg = f"{found.num_faces} faces in the photo; using the largest one"
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    _, iod_photo, _, _ = face_frame(found.landmarks)
    if iod_photo < cfg.min_face_pixels:
        raise AvatarError(f"the face is too small ({iod_photo:.0f} px between the eyes, "
                          f"need {cfg.min_face_pixels:.0f}); use a closer or larger portrait")
    image, landmarks = _crop_to_face(image, found.landmarks, cfg)
    again = detect_landmarks(image)
    if again is not None and _iou(again.landmarks, landmarks) > 0.5:
        landmarks = again.landmarks
    origin, iod, roll, z0 = face_frame(landmarks)
    photo_neutral = to_face_space(landmarks, origin, iod, roll, z0)
    topo = face_topology(photo_neutral)   # contours split in the de-rolled face frame
    photo_gap = lip_gap(photo_neutral)
    if photo_gap > WIDE_OPEN_PHOTO_GAP:
        # the tracker's lower lip sits above a wide-open mouth's real one, so the lip texture holds
        # part of the mouth's inside, which a closed rest would show (engine.avatar.open_mouth): move
        # the lower lip onto the real one, then repaint what is left of the inside in the lips
        shift = lower_lip_shift(image, landmarks, topo)
        landmarks = move_lower_lip(landmarks, topo, shift)
        image, n_filled = fill_lip_ring(image, landmarks, topo)
        photo_neutral = to_face_space(landmarks, origin, iod, roll, z0)
        notes.append(f"the photo's mouth is wide open ({photo_gap:.2f} face heights): its lower lip "
                     f"was moved down by up to {float(shift.max()):.0f} px onto the real one and {n_filled} px of the "
                     "mouth's inside left in the lips repainted; a photo with closed or slightly parted lips "
                     "still works best")
    # the rig rests with closed lips (ARKit's neutral); the photo's opening becomes a jawOpen weight
    neutral = photo_neutral + closed_rest_delta(photo_neutral, topo)
    deltas = build_blendshapes(neutral, topo)
    command, jaw_for = calibrate_aperture(neutral, deltas)
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, -s], [s, c]], np.float32)

    def to_image(pts: np.ndarray) -> np.ndarray:
        return origin + iod * (np.asarray(pts, np.float32)[:, :2] @ rot.T)

    # the render mesh and its texture coordinates stay on the photo's own geometry
    layers = build_layers(image, landmarks, photo_neutral, topo, to_image, pivot_z=HEAD_PIVOT[2])
    avatar = Avatar(image=image, landmarks=landmarks.astype(np.float32), rig_neutral=neutral,
                    rig_deltas=deltas, face_origin=origin, face_scale=iod, face_roll=roll,
                    head_pivot=np.array(HEAD_PIVOT, np.float32), name=name, notes=notes,
                    aperture_command=command, aperture_jaw=jaw_for,
                    photo_jaw_open=photo_opening(photo_neutral, neutral, deltas, command, jaw_for), **layers)
    avatar.validate()
    return avatar


def _crop_to_face(image: np.ndarray, lm: np.ndarray, cfg: AvatarConfig):
    """A square crop around the face (``crop_face_heights`` tall), resized to ``cfg.size``."""
    h, w = image.shape[:2]
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    face_h = float(hi[1] - lo[1])
    side = min(int(round(cfg.crop_face_heights * face_h)), h, w)
    cx = (lo[0] + hi[0]) / 2
    cy = (lo[1] + hi[1]) / 2 - 0.05 * face_h   # a little more room for hair than for neck
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    crop = image[y0:y0 + side, x0:x0 + side]
    f = cfg.size / side
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    out = cv2.resize(crop, (cfg.size, cfg.size), interpolation=interp)
    moved = lm.copy()
    moved[:, 0] = (lm[:, 0] - x0 + 0.5) * f - 0.5
    moved[:, 1] = (lm[:, 1] - y0 + 0.5) * f - 0.5
    moved[:, 2] = lm[:, 2] * f
    return np.ascontiguousarray(out), moved


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    la, ha = a[:, :2].min(0), a[:, :2].max(0)
    lb, hb = b[:, :2].min(0), b[:, :2].max(0)
    inter = np.clip(np.minimum(ha, hb) - np.maximum(la, lb), 0, None).prod()
    union = (ha - la).prod() + (hb - lb).prod() - inter
    return float(inter / max(union, 1e-6))
