"""A photo with a wide-open mouth: put its lips where they are before the rest pose closes them.

On a photo with the mouth wide open, the face mesh's lower lip sits short of the real one (the
tracker's lips are thinner than a wide-open mouth's, measured ~10-15 px high on a 512² crop of
portrait_expressive_2), so the ring between the inner and the outer lip contours, the lips'
texture, holds a band of the dark mouth inside. The closed rest (``mouth_rest``) brings the inner
contours together, and that band stayed in view as an open mouth (a face tracker read the
"closed" render of that photo as 0.12 face heights open). Two steps, in ``avatar create`` for a
photo whose lips are more than ``mouth_rest.WIDE_OPEN_PHOTO_GAP`` apart:

* ``lower_lip_shift`` looks down each column of the lower inner lip contour for where the dark
  inside ends (lightness past the midpoint between the inside's median and the lips' upper
  quartile), and ``move_lower_lip`` moves the lower lip's landmarks down by that much, the skin
  below following and fading out over ``SKIN_REACH`` times the shift (no fold);
* ``fill_lip_ring`` repaints the ring pixels that are still as dark as the inside from the lips
  and skin around them (OpenCV inpainting with the inside masked out, so it is not a source);
  the inside, which the renderer's mouth layer samples, is left as it is.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.avatar.landmarks import FaceTopology, lip_bodies
from engine.avatar.mouth_rest import LOWER_INNER, UPPER_INNER

DARK_SPLIT = 0.5        # a pixel counts as the inside when its lightness is below this point
                        # between the inside's median lightness and the lips' upper quartile
INPAINT_RADIUS = 5
SEARCH_OF_GAP = 0.6     # the real lower lip is looked for this far below the tracked one (x the gap 13-14)
SKIN_REACH = 3.0        # the skin below the lower lip follows its shift, fading over this many shifts


def _polygon_mask(shape, pts: np.ndarray) -> np.ndarray:
    # whole-pixel vertices: textures.polygon_mask's quarter-pixel ones moved portrait_expressive_2's
    # tracked rest gap 0.032 -> 0.034 and put a dip in its aperture sweep (the measured version stays)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(pts[:, :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def _inside_split(image: np.ndarray, landmarks: np.ndarray, topo: FaceTopology):
    """(inside mask, lip ring mask, lightness image, lightness split) or None when the photo has
    no lip ring and inside to tell apart."""
    inner = _polygon_mask(image.shape, landmarks[list(topo.lips_inner.loop)])
    ring = _polygon_mask(image.shape, landmarks[list(topo.lips_outer.loop)]) & ~inner
    if inner.sum() < 10 or ring.sum() < 10:
        return None
    light = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    inside, lips = float(np.median(light[inner])), float(np.percentile(light[ring], 75))
    if lips <= inside:
        return None
    return inner, ring, light, inside + DARK_SPLIT * (lips - inside)


def lower_lip_shift(image: np.ndarray, landmarks: np.ndarray, topo: FaceTopology) -> np.ndarray:
    """Per lower inner-lip landmark (``topo.lips_inner.lower``; the corners 0): how many pixels the
    dark inside reaches below it down its image column, i.e. how far the tracker's lower lip sits
    above the real one. A column that runs on into a shadow is capped at twice the median shift."""
    lower = list(topo.lips_inner.lower)
    out = np.zeros(len(lower), np.float32)
    split = _inside_split(image, landmarks, topo)
    if split is None or len(lower) < 3:
        return out
    _, _, light, thr = split
    gap = float(np.linalg.norm(landmarks[LOWER_INNER, :2] - landmarks[UPPER_INNER, :2]))
    h, w = light.shape
    for k, i in enumerate(lower[1:-1], start=1):
        x, y = landmarks[i, :2]
        x0, x1 = int(np.clip(round(x) - 1, 0, w - 1)), int(np.clip(round(x) + 2, 1, w))
        ys = np.arange(int(round(y)), min(h, int(round(y + SEARCH_OF_GAP * gap)) + 1))
        if len(ys) < 2:
            continue
        col = light[ys, x0:x1].mean(1)
        lip = np.nonzero(col >= thr)[0]
        out[k] = float(lip[0]) if len(lip) else 0.0      # 0: on lip already, or no lip found
    return np.minimum(out, 2 * np.median(out[1:-1]) + 1)


def move_lower_lip(landmarks: np.ndarray, topo: FaceTopology, shift: np.ndarray) -> np.ndarray:
    """Landmarks with the lower lip (``lip_bodies`` lower) moved down by ``shift`` (interpolated
    across the mouth by x from the lower inner contour) and the skin below it following, fading
    out over ``SKIN_REACH`` x the largest shift (so nothing folds); nothing else moves."""
    if not np.any(shift > 0):
        return landmarks
    xs = landmarks[list(topo.lips_inner.lower), 0]
    order = np.argsort(xs)

    def shift_at(x):
        return np.interp(x, xs[order], shift[order], left=0.0, right=0.0)

    out = landmarks.copy()
    body = np.array(lip_bodies()[1])
    out[body, 1] += shift_at(landmarks[body, 0])
    outer = list(topo.lips_outer.lower)
    ox, oy = landmarks[outer, 0], landmarks[outer, 1]
    oo = np.argsort(ox)
    rest = np.setdiff1d(np.arange(len(landmarks)), body)
    lx, ly = landmarks[rest, 0], landmarks[rest, 1]
    below = ly - np.interp(lx, ox[oo], oy[oo])
    under_lip = (lx > ox.min()) & (lx < ox.max()) & (below > 0)
    reach = SKIN_REACH * float(shift.max())
    out[rest, 1] += shift_at(lx) * np.where(under_lip, np.clip(1.0 - below / reach, 0.0, 1.0), 0.0)
    return out


def fill_lip_ring(image: np.ndarray, landmarks: np.ndarray, topo: FaceTopology) -> tuple[np.ndarray, int]:
    """(the image with the lip ring's pixels as dark as the inside repainted, how many)."""
    split = _inside_split(image, landmarks, topo)
    if split is None:
        return image, 0
    inner, ring, light, thr = split
    dark = ring & (light < thr)
    if not dark.any():
        return image, 0
    painted = cv2.inpaint(image, ((dark | inner) * 255).astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    out = image.copy()
    out[dark] = painted[dark]
    return out, int(dark.sum())
