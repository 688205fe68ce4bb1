"""Bounded least-squares fit of the 52 ARKit weights against an avatar's rig.

Given a landmark residual ``e`` (478, 3) in the avatar's normalized face space
(tracked face minus its neutral), find ``w`` in [0, 1]^52 minimizing

    sum_j W_j || sum_k w_k D[k, j] - e_j ||^2  +  ridge ||w||^2  +  sparsity sum_k w_k

with ``D = avatar.rig_deltas`` and per-landmark weights ``W``. The normal
equations ``G = D^T W D + ridge I`` are built once; each frame costs one
(52 x 1434) mat-vec plus a few projected-Newton steps on 52 unknowns.
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import NUM_BLENDSHAPES

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
    """Precomputed normal equations of one avatar's rig; ``fit(residual)`` -> 52 weights."""

    def __init__(self, rig_deltas: np.ndarray, ridge: float = 0.002, sparsity: float = 0.002,
                 eye_weight: float = 4.0, iterations: int = 12) -> None:
        deltas = np.asarray(rig_deltas, np.float64)
        if deltas.ndim != 3 or deltas.shape[0] != NUM_BLENDSHAPES or deltas.shape[2] != 3:
            raise ValueError(f"rig_deltas must be ({NUM_BLENDSHAPES}, N, 3), got {deltas.shape}")
        n_points = deltas.shape[1]
        point_w = np.ones(n_points)
        point_w[[i for i in EYE_POINTS if i < n_points]] = eye_weight
        self.n_points = n_points
        # weighted design matrix, (3N, 52); rows of points no shape moves are dropped
        rows = np.repeat(np.sqrt(point_w), 3)
        design = deltas.reshape(NUM_BLENDSHAPES, -1).T * rows[:, None]
        used = np.abs(design).max(axis=1) > 0
        self._rows = np.flatnonzero(used)
        self._design_t = np.ascontiguousarray(design[used].T * rows[used])  # D^T W, (52, R)
        self.gram = design[used].T @ design[used] + ridge * np.eye(NUM_BLENDSHAPES)
        self._gradient_step = 1.0 / float(np.linalg.eigvalsh(self.gram)[-1])
        self.sparsity = float(sparsity)
        self.iterations = int(iterations)

    def fit(self, residual: np.ndarray, w0: np.ndarray | None = None) -> np.ndarray:
        """Weights in [0, 1] for a (N, 3) residual in face space (IOD units)."""
        r = np.asarray(residual, np.float64).reshape(-1)
        if r.shape[0] != 3 * self.n_points:
            raise ValueError(f"residual must be ({self.n_points}, 3), got {np.shape(residual)}")
        c = self._design_t @ r[self._rows] - self.sparsity
        return solve_box_qp(self.gram, c, w0, self.iterations, gradient_step=self._gradient_step)
