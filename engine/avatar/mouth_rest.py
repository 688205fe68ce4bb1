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
* **The opening convention** (``MouthMap``). Every mouth shape changes the inner-lip gap its own
  way (a pucker built on the photo's lips, a funnel that parts them, the lips' openers); the
  model is trained on one convention for the opening (``engine.motion.opening``). At render
  time the jaw or the lip seal makes up the difference, so the rig's gap is the gap the
  calibrated jaw alone shows for the motion's opening, whatever shapes command it.
"""
from __future__ import annotations

import numpy as np

from engine.avatar.blendshapes import CLOSE_OVER_JAW, BlendshapeBuilder
from engine.avatar.landmarks import FaceTopology
from engine.avatar.lip_contact import PRESS_SEAL_GAIN, LipContact, seal_pressed_lips
from engine.motion.opening import mouth_opening
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
GAP_TOLERANCE = 1e-6        # face units: a rig gap this close to its target is left alone


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


class MouthMap:
    """A calibrated avatar's mouth rule: the motion's weights -> the weights its rig is deformed
    with, so that the rig's lip gap is the one the motion's opening asks for, on every avatar.

    The commanded opening is ``engine.motion.opening.mouth_opening`` (the convention the model
    is trained on: jaw, lip seal and press, the lips' openers, funnel parting and pucker
    narrowing the gap), times ``1 - PRESS_SEAL_GAIN x press`` (ARKit's press implies contact:
    the teacher's b/p/m press 0.5 seals, silence's 0.05 barely moves). The target gap is the
    gap jawOpen alone opens at the calibrated jaw for that opening (``command`` -> ``jaw_for``:
    on the rendered image, proportional to the opening). The rig renders every shape at the
    motion's weight (rounding keeps its look: lips pushed forward, narrowed), jawOpen through
    the calibration and mouthClose as the share of it the lips close (ARKit: mouthClose over an
    open jaw); then whatever gap the other shapes add or take away is made up by the jaw (the
    gap is short) or by mouthClose (the gap is too wide). The inner-lip gap 13-14 and the face
    height 10-152 are linear in the weights before the lip contact, so this is exact for them.
    """

    def __init__(self, gap0: float, gap_rows: np.ndarray, height0: float, height_rows: np.ndarray,
                 command: np.ndarray, jaw_for: np.ndarray):
        """``gap0 + w @ gap_rows``: the rig's inner-lip gap 13-14 (face units, down) for rig weights
        ``w``; ``height0 + w @ height_rows``: its face height 10-152; ``command`` -> ``jaw_for``:
        the aperture calibration."""
        self.gap0, self.gap_rows = float(gap0), np.asarray(gap_rows, np.float64)
        self.height0, self.height_rows = float(height0), np.asarray(height_rows, np.float64)
        if self.gap_rows.shape != (52,) or self.height_rows.shape != (52,):
            raise ValueError("a mouth map needs 52 gap and 52 face-height rows")
        if self.gap_rows[JAW] <= 0 or self.gap_rows[CLOSE] >= 0:
            raise ValueError("this rig's jawOpen does not open its lips or mouthClose does not close them")
        self.command = np.asarray(command, np.float64)
        self.jaw_for = np.asarray(jaw_for, np.float64)
        jaw_only = np.zeros((len(self.jaw_for), 52))
        jaw_only[:, JAW] = self.jaw_for
        # the gap jawOpen alone opens at the calibrated jaw of each command: what that opening shows
        self.target = np.maximum.accumulate([self.ratio(w) for w in jaw_only])
        # the jaw must widen and mouthClose narrow the gap-to-height ratio at every target
        t = np.array([0.0, self.target[-1]])
        if (np.any(self.gap_rows[JAW] - t * self.height_rows[JAW] <= 0)
                or np.any(self.gap_rows[CLOSE] - t * self.height_rows[CLOSE] >= 0)):
            raise ValueError("this rig's jawOpen / mouthClose do not open / close its lips against its face height")

    @classmethod
    def from_rig(cls, neutral: np.ndarray, deltas: np.ndarray, command: np.ndarray, jaw_for: np.ndarray) -> "MouthMap":
        n = np.asarray(neutral, np.float64).reshape(-1, 3)
        d = np.asarray(deltas, np.float64).reshape(52, -1, 3)
        return cls(n[LOWER_INNER, 1] - n[UPPER_INNER, 1], d[:, LOWER_INNER, 1] - d[:, UPPER_INNER, 1],
                   n[CHIN, 1] - n[FOREHEAD, 1], d[:, CHIN, 1] - d[:, FOREHEAD, 1], command, jaw_for)

    @classmethod
    def of(cls, avatar) -> "MouthMap | None":
        """The avatar's mouth map (None for an avatar without an aperture calibration)."""
        if avatar.aperture_command is None:
            return None
        return cls.from_rig(avatar.rig_neutral, avatar.rig_deltas, avatar.aperture_command, avatar.aperture_jaw)

    def to_dict(self) -> dict:
        """The map as plain lists (the glTF export carries it for clients; ``from_dict`` reads it)."""
        return {"aperture_command": self.command.tolist(), "aperture_jaw": self.jaw_for.tolist(),
                "gap0": self.gap0, "gap_rows": self.gap_rows.tolist(), "height0": self.height0,
                "height_rows": self.height_rows.tolist(), "target_gap": self.target.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "MouthMap":
        return cls(d["gap0"], d["gap_rows"], d["height0"], d["height_rows"], d["aperture_command"], d["aperture_jaw"])

    def ratio(self, w: np.ndarray) -> float:
        """The rig's lip gap over its face height for rig weights ``w`` (closed: 0)."""
        return max(self.gap0 + float(w @ self.gap_rows), 0.0) / (self.height0 + float(w @ self.height_rows))

    def target_gap(self, weights: np.ndarray) -> float:
        """The gap (face heights) the motion's clipped weights ask for."""
        press = 0.5 * (weights[PRESS_L] + weights[PRESS_R])
        opening = float(mouth_opening(weights)) * max(0.0, 1.0 - PRESS_SEAL_GAIN * float(press))
        return float(np.interp(min(opening, 1.0), self.command, self.target))

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        w = np.clip(np.asarray(weights, np.float64), 0.0, 1.0)
        target = self.target_gap(w)
        jaw = float(w[JAW])
        share = min(1.0, float(w[CLOSE]) / jaw) if jaw > 1e-6 else 0.0
        w[JAW] = np.interp(jaw, self.command, self.jaw_for)
        w[CLOSE] = share * w[JAW] / CLOSE_OVER_JAW
        gap, height = self.gap0 + float(w @ self.gap_rows), self.height0 + float(w @ self.height_rows)
        if max(gap, 0.0) < target * height - GAP_TOLERANCE:      # short: the jaw opens it further
            w[JAW] = min(1.0, w[JAW] + (target * height - gap) / (self.gap_rows[JAW] - target * self.height_rows[JAW]))
        elif gap > target * height + GAP_TOLERANCE:                # too wide: the lips close it
            w[CLOSE] += (target * height - gap) / (self.gap_rows[CLOSE] - target * self.height_rows[CLOSE])
        return w.astype(np.float32)


def mouth_weights(weights: np.ndarray, mouth: MouthMap | None) -> np.ndarray:
    """The blendshape weights the rig is deformed with, from the motion's (clipped to [0, 1]):
    through the avatar's ``MouthMap``; an older avatar without a calibration rests with the
    photo's lips, and only the press seal of round 1 applies."""
    if mouth is None:
        return seal_pressed_lips(np.clip(weights, 0.0, 1.0))
    return mouth(weights)
