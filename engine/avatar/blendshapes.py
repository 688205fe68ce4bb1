"""The 52 ARKit blendshape targets of the rig, built procedurally on the neutral landmarks.

Every shape is a displacement field in normalized face space (unit = inter-ocular
distance, x right / subject's left, y down, z toward the viewer). "Left" shapes act
on the subject's left = image right (+x). Amplitudes are weight-1 values; see
docs/avatar.md for the anatomy behind each one.
"""
from __future__ import annotations

import numpy as np

from engine.avatar.landmarks import LEFT_IRIS, RIGHT_IRIS, FaceTopology, lip_bodies
from engine.motion.space import ARKIT_NAMES, INDEX

# Amplitudes (face units / radians). Tuned by eye on contact sheets.
JAW_OPEN_ANGLE = 0.34        # rad about the jaw hinge
JAW_HINGE_YZ = (0.30, -1.45)  # hinge below/behind the eye line (y, z)
JAW_CORNER = 0.3             # share of the jaw motion the mouth corners take
JAW_CORNER_IN = 0.04         # the corners draw in as the jaw opens
LID_REACH_UP, LID_REACH_DOWN = 0.16, 0.10  # how far the lid skin follows the lid margin
LID_OVERLAP = 0.006          # closed lids overlap by this much (no sclera line)
GAZE_X, GAZE_Y = 0.11, 0.07   # iris travel for eyeLook* at weight 1
IRIS_FORESHORTEN = 0.18       # iris narrows by this fraction along the gaze at weight 1
BROW_RAISE = 0.13
BROW_LID_BAND = (-0.02, 0.24)  # -y range over which brow motion fades in above the eyes
SMILE = (0.09, -0.11, -0.04)  # corner dx (outward), dy, dz
# Lip closure on photos with parted lips (the photo's gap between the inner lip contours):
LIP_MEET_UPPER = 0.45        # share of the gap the upper lip covers when the lips meet
LIP_MEET_JAW = 0.6           # share of the lower lip's way that the jaw closes (chin follows)
LIP_MAX_STRETCH = 0.05       # ... but the lower lip stretches at most this far; the jaw does the rest
LIP_JAW_CLOSE_MAX = 0.6     # ... up to this much of jawOpen, reversed (more folds the lower face)
LIP_OUTER_FOLLOW = 0.5       # the outer lip contour moves this share of the inner one (the red stretches)
LIP_THIN_MAX = 0.04          # the most a press or roll thins a lip's red (face units)
LIP_CORNER_TAPER = 0.06      # lip motion fades to 0 over this distance from the corner columns
LIP_SKIN_SPREAD = 0.06       # Gaussian reach of lip motion into the skin around the lips
CLOSE_OVER_JAW = 0.3         # mouthClose 1 also undoes jawOpen up to this weight on the lips
PRESS_THIN = 0.3             # mouthPress: outer lip contours move this share toward the inner ones
ROLL_THIN = 0.55             # mouthRoll*: outer contour moves this share toward the inner one
ROLL_LOWER_RISE = 1.0        # mouthRollLower: lower lip rises by this share of the photo's gap
ROLL_UPPER_DROP = 0.4        # mouthRollUpper: upper lip drops by this share of the photo's gap
ROLL_MAX_WAY = 0.15          # ... a rolling lip moves at most this far (a wide-open photo stays open)
PURSE_CORNER_DOWN = 0.5      # funnel/pucker: raised corners come down this share toward mid-mouth
PRESS_MAX_WAY = 0.15         # the most a press lifts the lower lip (with mouthClose it over-closes by this)


def smoothstep(x, a, b):
    t = np.clip((np.asarray(x, np.float64) - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def gauss(d, sigma):
    return np.exp(-0.5 * (np.asarray(d) / sigma) ** 2)


class BlendshapeBuilder:
    """Builds ``deltas`` (52, 478, 3) from neutral face-space landmarks."""

    def __init__(self, neutral: np.ndarray, topo: FaceTopology):
        self.p = neutral.astype(np.float64)
        self.t = topo
        self.deltas = np.zeros((52, len(neutral), 3), np.float64)
        self.irises = np.array(RIGHT_IRIS + LEFT_IRIS)
        t = topo
        upper, lower, corner_cols = lip_bodies()
        self.upper_lip, self.lower_lip = np.array(upper), np.array(lower)
        mid_x = self.p[[13, 14], 0].mean()
        self.corners = {"R": [i for i in corner_cols if self.p[i, 0] < mid_x],
                        "L": [i for i in corner_cols if self.p[i, 0] >= mid_x]}
        self.lips = np.concatenate([self.upper_lip, self.lower_lip, self.corners["R"], self.corners["L"]])
        self.mouth_c = self.p[[t.lips_inner.upper[5], t.lips_inner.lower[5]]].mean(0)
        self.mouth_half_w = 0.5 * abs(self.p[t.lips_outer.upper[-1], 0] - self.p[t.lips_outer.upper[0], 0])
        self.x, self.y, self.z = self.p[:, 0], self.p[:, 1], self.p[:, 2]
        self.side = {"L": smoothstep(self.x - self.mouth_c[0], -0.12, 0.12),
                     "R": 1 - smoothstep(self.x - self.mouth_c[0], -0.12, 0.12)}
        self.eyes = {"R": t.right_eye, "L": t.left_eye}
        self.brows = {"R": np.array(t.right_brow), "L": np.array(t.left_brow)}
        self.iris = {"R": np.array(RIGHT_IRIS), "L": np.array(LEFT_IRIS)}

    # --- helpers -----------------------------------------------------------------------
    def add(self, name: str, disp: np.ndarray) -> None:
        self.deltas[INDEX[name]] += disp

    def spread(self, src: np.ndarray, disp_src: np.ndarray, sigma: float,
               where: np.ndarray | None = None) -> np.ndarray:
        """Displacements at ``src`` landmarks carried smoothly to the others: a Gaussian-
        weighted average that fades where the sources are far (sum of weights < 1), times
        an optional mask ``where``. The irises never move with the skin."""
        d = np.linalg.norm(self.p[:, None, :2] - self.p[None, src, :2], axis=2)
        g = gauss(d, sigma)
        out = (g @ disp_src) / np.maximum(g.sum(1, keepdims=True), 1.0)
        if where is not None:
            out *= np.asarray(where, np.float64)[:, None]
        out[src] = disp_src
        out[self.irises] = 0
        return out

    def lip_gap_at(self, x: np.ndarray) -> np.ndarray:
        """The photo's vertical gap between the inner lip contours, interpolated at ``x``."""
        t, p = self.t, self.p
        up_in, lo_in = list(t.lips_inner.upper), list(t.lips_inner.lower)
        gx = (p[up_in, 0] + p[lo_in, 0]) / 2
        gap = np.maximum(p[lo_in, 1] - p[up_in, 1], 0)
        order = np.argsort(gx)
        return np.interp(x, gx[order], gap[order])

    def lip_field(self, up_inner: np.ndarray, lo_inner: np.ndarray, up_outer: np.ndarray | None = None,
                  lo_outer: np.ndarray | None = None) -> np.ndarray:
        """Vertical lip motion from per-landmark values (indexed like ``self.p``): the inner
        contour of each lip moves by ``*_inner``, its outer contour by ``*_outer`` (default
        ``LIP_OUTER_FOLLOW`` of the inner; the red of the lip stretches or thins), points
        between them by their place across the lip; the mouth corners stay and the skin
        around follows over ``LIP_SKIN_SPREAD``, so nothing tears."""
        t = self.t
        d = np.zeros_like(self.p)
        for body, inner, outer, dy_in, dy_out in (
                (self.upper_lip, t.lips_inner.upper, t.lips_outer.upper, up_inner, up_outer),
                (self.lower_lip, t.lips_inner.lower, t.lips_outer.lower, lo_inner, lo_outer)):
            dy_out = LIP_OUTER_FOLLOW * dy_in if dy_out is None else dy_out
            y_in = np.interp(self.x[body], *self._curve(inner))
            y_out = np.interp(self.x[body], *self._curve(outer))
            across = np.clip((self.y[body] - y_in) / np.where(np.abs(y_out - y_in) > 1e-4, y_out - y_in, 1e-4), 0, 1)
            d[body, 1] = (1 - across) * dy_in[body] + across * dy_out[body]
        corners = np.array(self.corners["R"] + self.corners["L"])
        # next to the (fixed) corner columns the lips move less, so the narrow corner
        # triangles keep their orientation
        near = np.linalg.norm(self.p[:, None, :2] - self.p[None, corners, :2], axis=2).min(1)
        d *= smoothstep(near, 0.0, LIP_CORNER_TAPER)[:, None]
        src = np.concatenate([self.upper_lip, self.lower_lip, corners])
        return self.spread(src, d[src], LIP_SKIN_SPREAD)

    def lips_meet(self, side: np.ndarray | None = None, up_share: float = LIP_MEET_UPPER,
                  lo_share: float = 1 - LIP_MEET_UPPER, up_thin: np.ndarray | float = 0.0,
                  lo_thin: np.ndarray | float = 0.0, follow: float = LIP_OUTER_FOLLOW,
                  max_way: float = np.inf) -> np.ndarray:
        """The inner lip contours move toward each other by ``up_share`` / ``lo_share`` of the
        photo's gap (by default they meet on one line, hiding the photo's teeth); the outer
        contours follow (``follow`` of the inner's way) and move a further ``*_thin`` toward the inner
        ones (thinner red); neither inner contour moves further than ``max_way``. The lower lip's way comes ``LIP_MEET_JAW`` from closing the jaw
        (chin and lower face follow: no stretched band under a wide-open photo mouth)."""
        gap = self.lip_gap_at(self.x)
        g = gap * (1.0 if side is None else side)
        up, lo = np.minimum(up_share * g, max_way), -np.minimum(lo_share * g, max_way)
        centre = self.t.lips_inner.lower[len(self.t.lips_inner.lower) // 2]
        jaw = self.jaw_rotation(JAW_OPEN_ANGLE)
        # (more of it on a wide-open photo mouth: the lip itself stretches at most LIP_MAX_STRETCH)
        lo_c = min(lo_share * gap[centre], max_way)
        share = float(np.clip(1 - LIP_MAX_STRETCH / max(lo_c, 1e-6), LIP_MEET_JAW, 0.9))
        jaw_part = -min(share * lo_c / max(jaw[centre, 1], 1e-3), LIP_JAW_CLOSE_MAX) * jaw
        if side is not None:
            jaw_part *= side[:, None]
        jaw_part[np.concatenate([self.upper_lip, self.corners["R"], self.corners["L"]])] = 0  # corners stay
        jy = jaw_part[:, 1]
        # the red stretches by (1 - follow) of its inner contour's way; across a wide-open photo
        # mouth that made a lip far taller than a closed one: the outer contour follows more, so
        # the red stretches at most LIP_MAX_STRETCH (a photo with lips a little apart is unchanged)
        up_follow = np.maximum(follow, 1 - LIP_MAX_STRETCH / np.maximum(np.abs(up), 1e-6))
        lo_follow = np.maximum(follow, 1 - LIP_MAX_STRETCH / np.maximum(np.abs(lo), 1e-6))
        return jaw_part + self.lip_field(up - jy, lo - jy, up_follow * up + up_thin - jy,
                                         lo_follow * lo - lo_thin - jy)

    def lip_thinning(self, upper: bool, frac: float) -> np.ndarray:
        """Per landmark: ``frac`` of the upper or lower lip's red height (outer to inner
        contour), at most ``LIP_THIN_MAX``: how far its outer contour moves in to thin it."""
        t = self.t
        inner = t.lips_inner.upper if upper else t.lips_inner.lower
        outer = t.lips_outer.upper if upper else t.lips_outer.lower
        h = np.abs(np.interp(self.x, *self._curve(outer)) - np.interp(self.x, *self._curve(inner)))
        return np.minimum(frac * h, LIP_THIN_MAX)

    def jaw_weight(self) -> np.ndarray:
        w = smoothstep(self.y, self.mouth_c[1] - 0.10, self.mouth_c[1] + 0.30)
        # the lower lip follows the jaw fully in the middle, less toward the corners, and
        # the upper lip a little near the corners: the opening is a rounded lens and the
        # corners stretch instead of tearing or folding
        u = np.clip((self.x - self.mouth_c[0]) / self.mouth_half_w, -1, 1)
        w[self.upper_lip] = JAW_CORNER * u[self.upper_lip] ** 4
        w[self.lower_lip] = np.maximum(w[self.lower_lip],
                                       JAW_CORNER + (1 - JAW_CORNER) * (1 - u[self.lower_lip] ** 2))
        w[self.corners["R"] + self.corners["L"]] = JAW_CORNER
        w[self.irises] = 0.0
        return w

    def jaw_rotation(self, angle: float) -> np.ndarray:
        hy, hz = JAW_HINGE_YZ
        dy, dz = self.y - hy, self.z - hz
        c, s = np.cos(angle), np.sin(angle)
        # opening: the chin swings down and back about the hinge (x axis)
        ny, nz = c * dy + s * dz, -s * dy + c * dz
        disp = np.zeros_like(self.p)
        disp[:, 1] = ny - dy
        disp[:, 2] = nz - dz
        return disp * self.jaw_weight()[:, None]

    def corner_field(self, side: str, d: tuple[float, float, float], sigma: float) -> np.ndarray:
        c = self.corners[side]
        sgn = 1.0 if side == "L" else -1.0
        disp = np.tile([sgn * d[0], d[1], d[2]], (len(c), 1))
        return self.spread(np.array(c), disp, sigma)

    def eye_gap(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(upper lid points, lower lid points, opening at each upper point, at each lower
        point): the vertical distance to the other lid's curve at the same x."""
        e = self.eyes[side]
        up, lo = np.array(e.upper[1:-1]), np.array(e.lower[1:-1])
        ux, uy = self._curve(e.upper)
        lx, ly = self._curve(e.lower)
        gap_up = np.interp(self.x[up], lx, ly) - self.y[up]
        gap_lo = self.y[lo] - np.interp(self.x[lo], ux, uy)
        return up, lo, np.maximum(gap_up, 0), np.maximum(gap_lo, 0)

    def _curve(self, idx) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.x[list(idx)], self.y[list(idx)]
        order = np.argsort(x)
        return x[order], y[order]

    def lid_field(self, side: str, up_dy: np.ndarray, lo_dy: np.ndarray,
                  skin: float = 0.6) -> np.ndarray:
        """Move the upper/lower lid contours by dy; the lid skin above (below) follows
        column by column, fading with the distance from the lid margin."""
        up, lo, _, _ = self.eye_gap(side)
        eye = self.eyes[side]
        out = np.zeros_like(self.p)
        corners = [eye.upper[0], eye.upper[-1]]
        for contour, dy, sign, reach in ((up, up_dy, -1.0, LID_REACH_UP), (lo, lo_dy, 1.0, LID_REACH_DOWN)):
            cx = np.concatenate([self.p[corners[:1], 0], self.p[contour, 0], self.p[corners[1:], 0]])
            cy = np.concatenate([self.p[corners[:1], 1], self.p[contour, 1], self.p[corners[1:], 1]])
            cd = np.concatenate([[0.0], dy, [0.0]])
            order = np.argsort(cx)
            cx, cy, cd = cx[order], cy[order], cd[order]
            x = self.x
            inside = (x > cx[0]) & (x < cx[-1])
            margin_y = np.interp(x, cx, cy)
            dist = (self.y - margin_y) * sign          # > 0 on this lid's side
            fade = skin * gauss(np.maximum(dist, 0), reach) * (dist > 0) * inside
            out[:, 1] += np.interp(x, cx, cd) * fade
            out[contour, 1] = dy
        out[self.irises] = 0
        return out

    # --- shapes ------------------------------------------------------------------------
    def build(self) -> np.ndarray:
        self.eye_shapes()
        self.jaw_shapes()
        self.mouth_shapes()
        self.brow_cheek_nose_shapes()
        return self.deltas.astype(np.float32)

    def eye_shapes(self) -> None:
        for s in ("L", "R"):
            up, lo, gap_up, gap_lo = self.eye_gap(s)
            # blink: both lids meet on one curve (78% of the way down), overlapping a hair
            # so no sclera shows between them
            self.add(f"eyeBlink{self._n(s)}", self.lid_field(s, 0.78 * gap_up + LID_OVERLAP,
                                                              -0.22 * gap_lo - LID_OVERLAP, skin=0.92))
            self.add(f"eyeSquint{self._n(s)}", self.lid_field(s, 0.12 * gap_up, -0.30 * gap_lo, skin=0.8))
            self.add(f"eyeWide{self._n(s)}", self.lid_field(s, -0.30 * gap_up, 0.06 * gap_lo, skin=0.8))
            iris = self.iris[s]
            out = 1.0 if s == "L" else -1.0   # looking out = away from the nose
            c = self.p[iris[0]]
            for look, (dx, dy), lid in (("Out", (out * GAZE_X, 0), 0.0), ("In", (-out * GAZE_X, 0), 0.0),
                                        ("Up", (0, -GAZE_Y), -0.35), ("Down", (0, GAZE_Y), 0.5)):
                disp = np.zeros_like(self.p)
                disp[iris, 0], disp[iris, 1] = dx, dy
                # the turning eyeball foreshortens the iris along the direction of gaze
                axis = 0 if dx else 1
                disp[iris, axis] -= IRIS_FORESHORTEN * (self.p[iris, axis] - c[axis])
                if lid:
                    f = self.lid_field(s, np.full(len(up), lid * GAZE_Y),
                                       np.full(len(lo), 0.3 * lid * GAZE_Y), skin=0.5)
                    disp += f
                    disp[iris] = 0
                    disp[iris, 0], disp[iris, 1] = dx, dy
                    disp[iris, axis] -= IRIS_FORESHORTEN * (self.p[iris, axis] - c[axis])
                self.add(f"eyeLook{look}{self._n(s)}", disp)

    def jaw_shapes(self) -> None:
        wj = self.jaw_weight()[:, None]
        # the jaw swings open and the mouth corners draw in a little
        self.add("jawOpen", self.jaw_rotation(JAW_OPEN_ANGLE)
                 + self.corner_field("L", (-JAW_CORNER_IN, 0, 0), 0.12)
                 + self.corner_field("R", (-JAW_CORNER_IN, 0, 0), 0.12))
        self.add("jawForward", wj * np.array([0.0, 0.02, 0.10]))
        self.add("jawLeft", wj * np.array([0.12, 0.0, 0.0]))
        self.add("jawRight", wj * np.array([-0.12, 0.0, 0.0]))

    def mouth_shapes(self) -> None:
        p, t = self.p, self.t
        below_nose = smoothstep(self.y, self.p[2, 1], self.p[2, 1] + 0.12)
        lip_region = self.spread(self.lips, np.ones((len(self.lips), 3)), 0.09)[:, 0] * below_nose
        u = np.clip((self.x - self.mouth_c[0]) / self.mouth_half_w, -1.2, 1.2)
        round_ = np.clip(1 - u ** 2, 0, 1)
        lo_out = np.array(t.lips_outer.lower[1:-1])

        # mouthClose: the inner lip contours meet across the photo's gap, and the lips undo
        # jawOpen up to CLOSE_OVER_JAW (lips closed over a slightly open jaw); more overlap
        # at jawOpen 0 is resolved at render time by the lip contact (engine/avatar/lip_contact.py)
        jaw_dy = -CLOSE_OVER_JAW * self.jaw_rotation(JAW_OPEN_ANGLE)[:, 1]
        self.add("mouthClose", self.lips_meet() + self.lip_field(jaw_dy, jaw_dy, jaw_dy, jaw_dy))

        def pursed(squeeze, fwd, open_up, open_lo, flare):
            d = np.zeros_like(p)
            d[:, 0] = -squeeze * (self.x - self.mouth_c[0]) * lip_region
            d[:, 2] = fwd * lip_region * round_
            # inner lips part, outer ones flare: whole lip bodies (rows between follow, no fold)
            d += self.lip_field(-open_up * round_, open_lo * round_, -flare * round_, flare * round_)
            # raised (smiling) corners come down toward the mouth's middle height: rounder
            for c in ("L", "R"):
                lift = self.mouth_c[1] - self.p[self.corners[c], 1].mean()
                if lift > 0:
                    d += self.corner_field(c, (0.0, PURSE_CORNER_DOWN * lift, 0.0), 0.12)
            d[self.irises] = 0
            return d
        self.add("mouthFunnel", pursed(0.26, 0.12, 0.05, 0.07, 0.03))
        pucker = pursed(0.30, 0.16, 0.0, 0.0, 0.02) + self.lips_meet()
        self.add("mouthPucker", pucker)

        mouth_area = self.spread(self.lips, np.ones((len(self.lips), 3)), 0.22)
        self.add("mouthLeft", mouth_area * [0.12, 0, 0])
        self.add("mouthRight", mouth_area * [-0.12, 0, 0])

        cheek_y = (self.y > 0.25) & (self.y < 0.75)
        for s in ("L", "R"):
            n = self._n(s)
            sgn = 1.0 if s == "L" else -1.0
            smile = self.corner_field(s, SMILE, 0.24)
            cheek_c = np.array([sgn * 0.55, 0.55])
            cheek = gauss(np.linalg.norm(p[:, :2] - cheek_c, axis=1), 0.22) * cheek_y
            smile[:, 1] += -0.045 * cheek
            self.add(f"mouthSmile{n}", smile)
            self.add(f"mouthFrown{n}", self.corner_field(s, (0.02, 0.09, 0.0), 0.2))
            self.add(f"mouthDimple{n}", self.corner_field(s, (0.05, 0.0, -0.04), 0.15))
            stretch = self.corner_field(s, (0.10, 0.03, -0.02), 0.25)
            stretch[lo_out, 1] += 0.03 * self.side[s][lo_out]
            self.add(f"mouthStretch{n}", stretch)
            # the lips meet on that side (the lower lip comes up: over-closed with mouthClose,
            # the lip contact takes it back, and the upper lip is not dragged down) and press:
            # the red of both lips thins
            side = self.side[s]
            press = self.lips_meet(side, up_share=0.0, lo_share=1.0, max_way=PRESS_MAX_WAY, up_thin=side * self.lip_thinning(True, PRESS_THIN),
                                   lo_thin=side * self.lip_thinning(False, PRESS_THIN))
            self.add(f"mouthPress{n}", press)
            # (never the upper lip: at a closed rest the inner contours coincide, and a spread by
            # distance alone moved the upper lip down with the lower one, so the gap never opened)
            lower = self.spread(self.lower_lip, np.tile([0, 0.08, 0], (len(self.lower_lip), 1)), 0.1,
                                where=~np.isin(np.arange(len(self.p)), self.upper_lip))
            self.add(f"mouthLowerDown{n}", lower * self.side[s][:, None])
            upper = self.spread(self.upper_lip, np.tile([0, -0.07, 0], (len(self.upper_lip), 1)), 0.1,
                                where=self.y < self.mouth_c[1])
            self.add(f"mouthUpperUp{n}", upper * self.side[s][:, None])

        # rolls: the lip turns in over the teeth: it moves toward the other lip across the
        # photo's gap (the lower lip up under the upper teeth for f/v) and its red thins
        roll_lo = self.lips_meet(up_share=0.0, lo_share=ROLL_LOWER_RISE,
                                 lo_thin=self.lip_thinning(False, ROLL_THIN), follow=1.0, max_way=ROLL_MAX_WAY)
        roll_lo[self.lower_lip, 2] -= 0.04
        self.add("mouthRollLower", roll_lo)
        roll_up = self.lips_meet(up_share=ROLL_UPPER_DROP, lo_share=0.0,
                                 up_thin=self.lip_thinning(True, ROLL_THIN), follow=1.0, max_way=ROLL_MAX_WAY)
        roll_up[self.upper_lip, 2] -= 0.04
        self.add("mouthRollUpper", roll_up)
        chin = self.spread(self.lower_lip, np.tile([0, -0.06, 0.02], (len(self.lower_lip), 1)), 0.25,
                           where=self.y > self.mouth_c[1])
        self.add("mouthShrugLower", chin)
        self.add("mouthShrugUpper", self.spread(self.upper_lip, np.tile([0, -0.04, 0.02], (len(self.upper_lip), 1)),
                                                0.1, where=self.y < self.mouth_c[1]))
        tongue = 0.35 * self.jaw_rotation(JAW_OPEN_ANGLE)
        tongue[lo_out, 1] += 0.03
        self.add("tongueOut", tongue)

    def brow_cheek_nose_shapes(self) -> None:
        p = self.p
        # brow motion reaches the lid crease but not the lid margins (the eyes keep their
        # opening): a smooth band between the eye line and above the lid crease
        above_lids = smoothstep(-self.y, BROW_LID_BAND[0], BROW_LID_BAND[1])
        for s in ("L", "R"):
            n = self._n(s)
            sgn = 1.0 if s == "L" else -1.0
            brow = self.brows[s]
            bx = np.abs(p[brow, 0])
            inner = 1 - smoothstep(bx, 0.2, 0.75)
            outer = smoothstep(bx, 0.35, 0.85)
            d = np.stack([-sgn * 0.03 * inner, 0.08 * np.ones(len(brow)), 0 * bx], 1)
            self.add(f"browDown{n}", self.spread(brow, d, 0.14, where=above_lids))
            d = np.stack([0 * bx, -BROW_RAISE * outer, 0 * bx], 1)
            self.add(f"browOuterUp{n}", self.spread(brow, d, 0.2, where=above_lids))
            cheek = gauss(np.linalg.norm(p[:, :2] - [sgn * 0.5, 0.45], axis=1), 0.2)
            sq = np.zeros_like(p)
            sq[:, 1] = -0.05 * cheek * (self.y > 0.1)
            self.add(f"cheekSquint{n}", sq)
            ala = gauss(np.linalg.norm(p[:, :2] - [sgn * 0.2, 0.55], axis=1), 0.13)
            sneer = np.zeros_like(p)
            sneer[:, 1] = -0.05 * ala
            sneer[:, 2] = 0.01 * ala
            self.add(f"noseSneer{n}", sneer)
        both = np.concatenate([self.brows["R"], self.brows["L"]])
        inner = 1 - smoothstep(np.abs(p[both, 0]), 0.15, 0.7)
        d = np.stack([0 * inner, -BROW_RAISE * inner, 0 * inner], 1)
        self.add("browInnerUp", self.spread(both, d, 0.2, where=above_lids))
        puff = np.zeros_like(p)
        for sgn in (-1.0, 1.0):
            c = gauss(np.linalg.norm(p[:, :2] - [sgn * 0.62, 0.85], axis=1), 0.3)
            puff[:, 0] += sgn * 0.08 * c
            puff[:, 2] += 0.05 * c
        puff[self.irises] = 0
        self.add("cheekPuff", puff)

    @staticmethod
    def _n(side: str) -> str:
        return "Left" if side == "L" else "Right"


def build_blendshapes(neutral: np.ndarray, topo: FaceTopology) -> np.ndarray:
    deltas = BlendshapeBuilder(neutral, topo).build()
    assert deltas.shape[0] == len(ARKIT_NAMES)
    return deltas
