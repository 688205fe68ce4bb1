"""Lip contact: the lips never pass through each other.

The rig is linear (``rig_neutral + w @ rig_deltas``), and ``mouthClose`` undoes part of
``jawOpen`` on the lips (ARKit: lips closed over an open jaw), so with the jaw closed, or
with ``mouthClose`` + ``mouthRollLower`` + ``mouthPress`` together, the lower inner lip
contour can end up above the upper one. After the blend, wherever it does, the lower lip
is pushed back down (the lower lip body in that column: its inner contour fully, its
outer one by ``LIP_OUTER_FOLLOW``, as the lips move when they meet, and the chin skin
below it fading over ``CHIN_REACH``) until the inner contours touch. Lips that are apart are untouched, so this never changes an
open mouth, and it is exact where the contours do not cross.
"""
from __future__ import annotations

import numpy as np

from engine.avatar.blendshapes import LIP_OUTER_FOLLOW
from engine.avatar.landmarks import face_topology, lip_bodies
from engine.motion.space import INDEX


CHIN_REACH = 0.12   # face units below the lower lip over which the push fades (Gaussian)
# ARKit's mouthPress shapes exist only with the lips in contact. On a photo whose neutral lips
# are parted (a smile showing teeth), the linear rig would press lips that never meet, so a
# press also seals the lips: effective mouthClose >= PRESS_SEAL_GAIN * mean(mouthPress L/R).
# The teacher's bilabials carry press 0.5, silence 0.05: m/b/p seal fully, rest barely moves.
PRESS_SEAL_GAIN = 2.0


def seal_pressed_lips(weights: np.ndarray) -> np.ndarray:
    """Blendshape weights (52,) in [0, 1] with mouthClose raised where the lips are pressed."""
    press = 0.5 * (weights[INDEX["mouthPressLeft"]] + weights[INDEX["mouthPressRight"]])
    sealed = min(1.0, PRESS_SEAL_GAIN * float(press))
    if sealed <= weights[INDEX["mouthClose"]]:
        return weights
    out = weights.copy()
    out[INDEX["mouthClose"]] = sealed
    return out


def corners_of(topo) -> tuple[int, int]:
    return topo.lips_outer.upper[0], topo.lips_outer.upper[-1]


class LipContact:
    """Resolves crossed lips on (478, 3) face-space landmark sets of one avatar."""

    def __init__(self, neutral: np.ndarray):
        topo = face_topology(neutral)
        # column pairs of the inner contour, without the corners (they are shared)
        self.up = np.array(topo.lips_inner.upper[1:-1])
        self.lo = np.array(topo.lips_inner.lower[1:-1])
        _, lower, _ = lip_bodies()
        lower = np.array(lower)
        # the lower lip and the skin below it (fading over CHIN_REACH under the outer contour)
        y_lip = _curve_at(neutral, topo.lips_outer.lower, neutral[:, 0])
        below = neutral[:, 1] - y_lip
        x_in = (neutral[:, 0] > neutral[corners_of(topo)[0], 0]) & (neutral[:, 0] < neutral[corners_of(topo)[1], 0])
        chin = np.flatnonzero((below > 0) & x_in & ~np.isin(np.arange(len(neutral)), lower))
        chin = chin[np.exp(-0.5 * (below[chin] / CHIN_REACH) ** 2) > 0.02]
        self.body = np.concatenate([lower, chin])
        # each lower-lip point takes the overlap of its column: linear interpolation over
        # the pairs' neutral x (hat functions), falling to 0 at the corners
        corners = [topo.lips_inner.upper[0], topo.lips_inner.upper[-1]]
        px = np.concatenate([[neutral[corners[0], 0]], neutral[self.lo, 0],
                             [neutral[corners[1], 0]]])
        order = np.argsort(px)
        eye = np.eye(len(px))[:, 1:-1]   # basis of the pairs (corners have no overlap)
        x = neutral[self.body, 0]
        hat = np.stack([np.interp(x, px[order], eye[order, k]) for k in range(len(self.up))], 1)
        # across the lip: the inner contour takes all of it, the outer LIP_OUTER_FOLLOW (as the
        # lips move when they meet), so an over-closed lip is pressed back into its shape
        y_in = _curve_at(neutral, topo.lips_inner.lower, x)
        y_out = _curve_at(neutral, topo.lips_outer.lower, x)
        across = np.clip((neutral[self.body, 1] - y_in) / np.maximum(y_out - y_in, 1e-4), 0, 1)
        follow = 1 - (1 - LIP_OUTER_FOLLOW) * across
        n_lip = len(lower)
        follow[n_lip:] = LIP_OUTER_FOLLOW * np.exp(-0.5 * (below[chin] / CHIN_REACH) ** 2)
        self.spread = (hat * follow[:, None]).astype(np.float32)

    def __call__(self, expr: np.ndarray) -> np.ndarray:
        """``expr`` (478, 3) with the crossed lips separated to touching (in place; returned)."""
        overlap = expr[self.up, 1] - expr[self.lo, 1]
        if overlap.max() <= 0:
            return expr
        expr[self.body, 1] += self.spread @ np.maximum(overlap, 0)
        return expr


def _curve_at(pts: np.ndarray, idx, x: np.ndarray) -> np.ndarray:
    order = np.argsort(pts[list(idx), 0])
    return np.interp(x, pts[list(idx), 0][order], pts[list(idx), 1][order])
