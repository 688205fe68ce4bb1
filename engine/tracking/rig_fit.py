"""Bounded least-squares fit of the 52 ARKit weights against an avatar's rig.

Given a landmark residual ``e`` (478, 3) in the avatar's normalized face space
(tracked face minus its neutral), find ``w`` in [0, 1]^52 minimizing

    sum_j W_j || sum_k w_k g_k D[k, j] - e_j ||^2  +  ridge ||w||^2  +  sparsity sum_k w_k

with ``D = avatar.rig_deltas``, per-coordinate weights ``W`` (eyelid/iris points up,
depth down) and per-shape tracker gains ``g_k`` (the fraction of a shape's motion the
face mesh reports). The normal equations ``G = D^T W D + ridge I`` are built once;
each frame costs one (52 x 1434) mat-vec plus a few projected-Newton steps on 52
unknowns, in two stages (primary shapes, then the rest on what is left).
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import INDEX, NUM_BLENDSHAPES

# face-mesh points of the eyelid contours and irises (both eyes): small displacements
# that the fit should not drown in the mouth's large ones.
EYE_POINTS: tuple[int, ...] = (
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)


def solve_box_qp(G: np.ndarray, c: np.ndarray, w0: np.ndarray | None = None,
                 iterations: int = 12, tol: float = 1e-7,
                 gradient_step: float | None = None) -> np.ndarray:
    """argmin_w 0.5 w^T G w - c^T w subject to 0 <= w <= 1 (G symmetric positive definite).

    Projected Newton (Bertsekas 1982): Newton steps on the variables not pinned to a
    bound, projected back into the box, with a backtracking line search; a projected
    gradient step is the fallback when the projected Newton step does not descend.
    """
    n = c.shape[0]
    w = np.zeros(n) if w0 is None else np.clip(np.asarray(w0, np.float64), 0.0, 1.0)
    step_pg = gradient_step or 1.0 / float(np.linalg.eigvalsh(G)[-1])

    def objective(v: np.ndarray) -> float:
        return 0.5 * float(v @ (G @ v)) - float(c @ v)

    f = objective(w)
    for _ in range(iterations):
        g = G @ w - c
        pinned = ((w <= 0.0) & (g > 0.0)) | ((w >= 1.0) & (g < 0.0))
        free = ~pinned
        if not free.any():
            break
        d = np.zeros(n)
        d[free] = np.linalg.solve(G[np.ix_(free, free)], -g[free])
        alpha, accepted = 1.0, False
        while alpha > 1e-4:
            cand = np.clip(w + alpha * d, 0.0, 1.0)
            fc = objective(cand)
            if fc < f - 1e-12:
                accepted = True
                break
            alpha *= 0.5
        if not accepted:  # fallback: projected gradient
            cand = np.clip(w - step_pg * g, 0.0, 1.0)
            fc = objective(cand)
            if fc >= f - 1e-12:
                break
        moved = float(np.abs(cand - w).max())
        w, f = cand, fc
        if moved < tol:
            break
    return w


class RigFitter:
    """Precomputed normal equations of one avatar's rig; ``fit(residual)`` -> 52 weights.

    The fit runs in stages: the ``primary`` shapes (jaw, blinks, smile, ...) first explain
    what they can, then the remaining shapes fit what is left. Without it the many small
    "detail" shapes (mouthLowerDown, mouthFrown, ...) of a procedural rig can mimic a jaw
    opening more cheaply than jawOpen, whose chin motion never quite matches a real chin.
    """

    def __init__(self, rig_deltas: np.ndarray, ridge: float = 0.002, sparsity: float = 0.002,
                 eye_weight: float = 4.0, iterations: int = 12, exclude: tuple[str, ...] = (),
                 depth_weight: float = 1.0, primary: tuple[str, ...] = (),
                 tracker_gain: dict[str, float] | None = None, secondary_sparsity: float | None = None) -> None:
        deltas = np.array(rig_deltas, np.float64)
        if deltas.ndim != 3 or deltas.shape[0] != NUM_BLENDSHAPES or deltas.shape[2] != 3:
            raise ValueError(f"rig_deltas must be ({NUM_BLENDSHAPES}, N, 3), got {deltas.shape}")
        gains = dict(tracker_gain or {})
        unknown = [n for n in (*exclude, *primary, *gains) if n not in INDEX]
        if unknown:
            raise ValueError(f"unknown ARKit shape name(s) in the fit settings: {unknown}")
        if any(not 0.0 < float(g) <= 10.0 for g in gains.values()):
            raise ValueError(f"tracker gains must be in (0, 10], got {gains}")
        deltas[[INDEX[n] for n in exclude]] = 0.0  # no delta + ridge = weight stays 0
        for name, g in gains.items():  # the face mesh reports this fraction of the shape's motion
            deltas[INDEX[name]] *= float(g)
        n_points = deltas.shape[1]
        point_w = np.ones(n_points)
        point_w[[i for i in EYE_POINTS if i < n_points]] = eye_weight
        self.n_points = n_points
        # weighted design matrix, (3N, 52); rows of points no shape moves are dropped
        rows = np.sqrt(point_w[:, None] * np.array([1.0, 1.0, depth_weight])).reshape(-1)
        design = deltas.reshape(NUM_BLENDSHAPES, -1).T * rows[:, None]
        used = np.abs(design).max(axis=1) > 0
        self._rows = np.flatnonzero(used)
        self._design_t = np.ascontiguousarray(design[used].T * rows[used])  # D^T W, (52, R)
        ridge = max(float(ridge), 1e-9)  # jawLeft = -jawRight etc.: the Gram matrix needs it
        self.gram = design[used].T @ design[used] + ridge * np.eye(NUM_BLENDSHAPES)
        idle = np.flatnonzero(np.diag(self.gram) <= ridge)  # shapes that move nothing: pinned to 0
        self.gram[idle, idle] += 1.0
        first = sorted(INDEX[n] for n in primary)
        rest = [k for k in range(NUM_BLENDSHAPES) if k not in first]
        self._stages = []  # (shape indices, their gram, coupling to earlier stages, earlier indices, step)
        done: list[int] = []
        for idx in (first, rest):
            if not idx:
                continue
            g = self.gram[np.ix_(idx, idx)]
            penalty = sparsity if not done or secondary_sparsity is None else secondary_sparsity
            self._stages.append((np.array(idx), g, self.gram[np.ix_(idx, done)], np.array(done, int),
                                 1.0 / float(np.linalg.eigvalsh(g)[-1]), float(penalty)))
            done = done + idx
        self.iterations = int(iterations)

    def fit(self, residual: np.ndarray, w0: np.ndarray | None = None) -> np.ndarray:
        """Weights in [0, 1] for a (N, 3) residual in face space (IOD units)."""
        r = np.asarray(residual, np.float64).reshape(-1)
        if r.shape[0] != 3 * self.n_points:
            raise ValueError(f"residual must be ({self.n_points}, 3), got {np.shape(residual)}")
        c_all = self._design_t @ r[self._rows]
        w = np.zeros(NUM_BLENDSHAPES)
        for idx, gram, coupling, done, step, penalty in self._stages:
            c = c_all[idx] - penalty - (coupling @ w[done] if len(done) else 0.0)
            w[idx] = solve_box_qp(gram, c, None if w0 is None else w0[idx], self.iterations,
                                  gradient_step=step)
        return w
