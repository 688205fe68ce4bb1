"""A mouth that rests closed and opens in proportion to the commanded jawOpen, on every photo.

ARKit's neutral face has closed lips. A portrait usually does not (a smile shows teeth), and
a rig built on the photo's own lips rests with them apart: silence looks like speech, and the
first part of every opening only moves lips that are already apart. So:

* **Closed rest.** ``closed_rest_delta`` moves the photo's inner lip contours together across
  their gap (the same lip-meeting field mouthClose uses: the lower lip comes up with the jaw,
  the upper lip down a little, the red stretches, the corners stay). ``rig_neutral`` is the
  photo's landmarks plus that delta; the render mesh keeps its texture coordinates on the photo,
  so the rest pose warps the photo's lips shut, and jawOpen opens them again.
* **Aperture calibration.** The visible gap of a rig is not linear in jawOpen (a closed photo's
  lips overlap a little and stay shut until the jaw has moved; the lip contact and the jaw's
  weight field bend the curve). ``calibrate_aperture`` sweeps jawOpen, measures the inner-lip
  gap (landmarks 13/14 over the face height 10/152, as a face tracker measures a real mouth)
  and returns the inverse map: the jawOpen to render for a commanded opening ``c`` so that the
  gap is ``c`` times the gap at jawOpen 1. ``photo_jaw_open`` is the commanded opening that
  reproduces the photo's own lips.
"""
from __future__ import annotations

import numpy as np

from engine.avatar.blendshapes import CLOSE_OVER_JAW, BlendshapeBuilder
from engine.avatar.landmarks import FaceTopology
from engine.avatar.lip_contact import PRESS_SEAL_GAIN, LipContact, seal_pressed_lips
from engine.motion.space import INDEX

APERTURE_POINTS = 41          # samples of the jawOpen sweep (and of the stored map)
UPPER_INNER, LOWER_INNER = 13, 14
FOREHEAD, CHIN = 10, 152
JAW = INDEX["jawOpen"]
CLOSE = INDEX["mouthClose"]
PRESS_L, PRESS_R = INDEX["mouthPressLeft"], INDEX["mouthPressRight"]
# a photo whose lips are this far apart (face heights) cannot be closed convincingly by a warp:
# the lip texture around a wide-open mouth includes the mouth's inside
WIDE_OPEN_PHOTO_GAP = 0.08


def closed_rest_delta(photo_neutral: np.ndarray, topo: FaceTopology) -> np.ndarray:
    """(478, 3) displacement that closes the photo's lips (zero where they already touch)."""
    return BlendshapeBuilder(photo_neutral, topo).lips_meet().astype(np.float32)


def lip_gap(landmarks: np.ndarray) -> float:
    """Inner-lip opening in face heights (13→14 over 10→152), clipped at closed."""
    face_h = float(np.linalg.norm(landmarks[CHIN, :2] - landmarks[FOREHEAD, :2]))
    return max(0.0, float(landmarks[LOWER_INNER, 1] - landmarks[UPPER_INNER, 1])) / max(face_h, 1e-6)


def rig_expression(neutral: np.ndarray, deltas: np.ndarray, weights: np.ndarray,
                   contact: LipContact) -> np.ndarray:
    """The rig's (478, 3) expression for raw rig weights (blend, then lip contact)."""
    w = np.clip(weights, 0.0, 1.0)
    return contact((neutral.reshape(-1) + w @ deltas.reshape(52, -1)).reshape(-1, 3))


def calibrate_aperture(neutral: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(commanded opening grid, jawOpen to render at each) — monotonic, from 0 to 1."""
    jaw = np.linspace(0.0, 1.0, APERTURE_POINTS)
    return invert_sweep(jaw, jaw_sweep_gaps(neutral, deltas, jaw), "this rig's lips")


def jaw_sweep_gaps(neutral: np.ndarray, deltas: np.ndarray, jaws) -> np.ndarray:
    """The rig's lip gap (face heights) at each raw jawOpen of ``jaws``, everything else at rest."""
    contact = LipContact(neutral)
    gaps = []
    for j in jaws:
        w = np.zeros(52, np.float32)
        w[JAW] = j
        gaps.append(lip_gap(rig_expression(neutral, deltas, w, contact)))
    return np.asarray(gaps)


def invert_sweep(jaws: np.ndarray, gaps: np.ndarray, what: str, min_rise: float = 1e-6):
    """(commanded opening grid, jawOpen at each) from a jawOpen sweep and the gap it opened: the
    jawOpen whose gap is ``c`` of the way from the closed to the full gap (the gap curve made
    monotonic; flat stretches skipped: the smallest jawOpen that reaches each gap)."""
    gaps = np.maximum.accumulate(np.asarray(gaps, np.float64))
    if gaps[-1] <= gaps[0] + min_rise:
        raise ValueError(f"jawOpen does not open {what}: cannot calibrate its mouth")
    command = np.linspace(0.0, 1.0, APERTURE_POINTS)
    target = gaps[0] + command * (gaps[-1] - gaps[0])
    rising = np.concatenate([[True], np.diff(gaps) > 1e-9])
    jaw_for = np.maximum.accumulate(np.interp(target, gaps[rising], np.asarray(jaws)[rising]))
    jaw_for[0] = 0.0
    return command.astype(np.float32), jaw_for.astype(np.float32)


def photo_opening(photo_neutral: np.ndarray, neutral: np.ndarray, deltas: np.ndarray,
                  command: np.ndarray, jaw_for: np.ndarray) -> float:
    """The commanded opening whose gap is the photo's own (0 for a closed-lip photo)."""
    gaps = np.maximum.accumulate(jaw_sweep_gaps(neutral, deltas, jaw_for))
    return float(np.interp(lip_gap(photo_neutral), gaps, command))


def mouth_weights(weights: np.ndarray, command: np.ndarray | None, jaw_for: np.ndarray | None) -> np.ndarray:
    """The blendshape weights the rig is deformed with, from the motion's (clipped to [0, 1]).

    An avatar with a closed rest (it carries an aperture calibration), in ARKit's convention:
    mouthClose is lip closure *over the open jaw*, so mouthClose / jawOpen is the share of the
    jaw's lip opening that the lips close (mouthClose = jawOpen: lips shut); a lip press implies
    contact, gradually (share >= ``PRESS_SEAL_GAIN`` x press: the teacher's b/p/m press 0.5 seals
    fully, silence's 0.05 barely). jawOpen goes through the calibration, and the rig's mouthClose
    shape (which undoes ``CLOSE_OVER_JAW`` of a full jaw on the lips) gets the weight that undoes
    that share of the rendered jaw. Older avatars rest with the photo's lips: only the press
    seal of round 1 applies."""
    w = np.clip(weights, 0.0, 1.0)
    if command is None or jaw_for is None:
        return seal_pressed_lips(w)
    w = w.copy()
    jaw = float(w[JAW])
    press = 0.5 * (w[PRESS_L] + w[PRESS_R])
    share = max(min(1.0, float(w[CLOSE]) / jaw) if jaw > 1e-6 else 0.0, min(1.0, PRESS_SEAL_GAIN * float(press)))
    w[JAW] = np.interp(jaw, command, jaw_for)
    w[CLOSE] = share * w[JAW] / CLOSE_OVER_JAW
    return w
