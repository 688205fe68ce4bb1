"""Initial Gaussians of an avatar, from its warp render mesh and atlas (no fitting).

Every triangle that can move (head pose or expression) gets an even lattice of Gaussians,
about ``count`` in all in proportion to its area in the photo (its area with the mouth open,
so the collapsed mouth interior of the closed-lip rest still gets some); colours are sampled
from the atlas at the Gaussians' texture coordinates (the photo for the face, hair and neck,
the synthesized textures for the mouth interior, teeth, sclera and irises). The mouth and eye
layers sit a little behind the face surface (``SET_OFFSETS``), so the lids and lips cover
them as the warp's draw order does. The static background is the photo with the region the
moving head covers at rest filled in from its surroundings (``fill_holes``).
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.avatar.asset import Avatar
from engine.avatar.gaussians import SET, GaussianAvatar
from engine.avatar.layers import IRIS_SEGMENTS
from engine.motion.space import INDEX

DEFAULT_COUNT = 20000
IN_PLANE_SIGMA = 0.6       # std-dev along the surface, in lattice spacings
THICKNESS = 0.15           # std-dev along the normal, relative to the in-plane one
INIT_OPACITY = 0.95
SET_OFFSETS = {"sclera": -0.05, "iris": -0.03, "hair": -0.01, "neck": -0.01, "side": -0.01}
SET_DENSITY = {"iris": 6.0, "sclera": 3.0, "teeth": 3.0, "mouth_interior": 2.0}   # x Gaussians per area
FILL_POSE_WEIGHT = 0.3     # background is filled where the head (pose weight above this) covers it
FILL_DILATE_PX = 4


def mesh_vertices(avatar: Avatar, weights: dict[str, float] | None = None) -> np.ndarray:
    """(V, 3) face-space render-mesh vertices of an expression (no head pose)."""
    expr = avatar.rig_neutral.astype(np.float32).copy()
    for name, w in (weights or {}).items():
        expr += w * avatar.rig_deltas[INDEX[name]]
    return (avatar.vertex_weights[:, :, None] * expr[avatar.vertex_anchors]).sum(1) + avatar.vertex_offsets


def triangle_sets(avatar: Avatar) -> np.ndarray:
    """(T,) uint8 set id of every render-mesh triangle (``engine.avatar.gaussians.SET_NAMES``)."""
    out = np.full(len(avatar.triangles), SET["face"], np.uint8)
    s0, s1 = avatar.layers["support"]
    m0, m1 = avatar.layers["mouth"]
    e0, e1 = avatar.layers["eyes"]
    # support: hair above the face, neck below the jaw, the sides (ears) between
    v = mesh_vertices(avatar)
    centre = v[avatar.triangles[s0:s1]].mean(1)
    face_y = avatar.rig_neutral[:, 1]
    top, chin = float(face_y.min()), float(face_y.max())
    mid = 0.5 * (top + chin)
    out[s0:s1] = np.where(centre[:, 1] < top + 0.25 * (chin - top), SET["hair"],
                          np.where(centre[:, 1] > mid + 0.35 * (chin - top), SET["neck"], SET["side"]))
    # mouth: the cavity's two rows first, then the lower and the upper teeth strips (layers._mouth)
    half = (m1 - m0) // 2
    out[m0:m0 + half] = SET["mouth_interior"]
    out[m0 + half:m1] = SET["teeth"]
    # eyes: per eye a sclera fan + ring, then the iris disk (layers._eyes)
    per_eye = (e1 - e0) // 2
    for first in (e0, e0 + per_eye):
        out[first:first + per_eye - IRIS_SEGMENTS] = SET["sclera"]
        out[first + per_eye - IRIS_SEGMENTS:first + per_eye] = SET["iris"]
    return out


def moving_triangles(avatar: Avatar) -> np.ndarray:
    """Indices of the triangles head pose or an expression can move (the rest is background)."""
    moving = (avatar.vertex_pose_weight > 0) | (np.abs(avatar.vertex_weights).sum(1) > 0)
    return np.nonzero(moving[avatar.triangles].any(1))[0]


def lattice(level: int) -> np.ndarray:
    """(level^2, 3) barycentric centres of the level x level subdivision of a triangle."""
    pts = []
    for i in range(level):
        for j in range(level - i):
            pts.append(((i + 1 / 3) / level, (j + 1 / 3) / level))
            if i + j <= level - 2:
                pts.append(((i + 2 / 3) / level, (j + 2 / 3) / level))
    b = np.array(pts, np.float32)
    return np.stack([1 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], 1)


def _areas(avatar: Avatar, v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    px = avatar.face_to_image(v)
    a, b, c = px[tris[:, 0]], px[tris[:, 1]], px[tris[:, 2]]
    return 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def fill_holes(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` with the ``hole`` pixels filled smoothly from the rest (push-pull pyramid)."""
    img = image.astype(np.float32) * (~hole)[..., None]
    w = (~hole).astype(np.float32)
    levels = [(img, w)]
    while min(img.shape[:2]) > 4:
        img, w = cv2.pyrDown(img), cv2.pyrDown(w)
        levels.append((img, w))
    filled = levels[-1][0] / np.maximum(levels[-1][1], 1e-6)[..., None]
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = img / np.maximum(w, 1e-6)[..., None]
        t = np.clip(w * 4, 0, 1)[..., None]           # trust a level's own value where it has data
        filled = t * own + (1 - t) * up
    out = np.where(hole[..., None], filled, image.astype(np.float32))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def background_plane(avatar: Avatar) -> np.ndarray:
    """The photo with the region under the moving head filled in (what a turned head uncovers)."""
    v = mesh_vertices(avatar)
    px = avatar.face_to_image(v)
    heavy = avatar.vertex_pose_weight > FILL_POSE_WEIGHT
    mask = np.zeros(avatar.image.shape[:2], np.uint8)
    for t in avatar.triangles[heavy[avatar.triangles].all(1)]:
        cv2.fillConvexPoly(mask, np.round(px[t] * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    mask = cv2.dilate(mask, np.ones((2 * FILL_DILATE_PX + 1,) * 2, np.uint8)).astype(bool)
    return fill_holes(avatar.image, mask)


def init_gaussians(avatar: Avatar, count: int = DEFAULT_COUNT, seed: int = 0) -> GaussianAvatar:
    """About ``count`` Gaussians on the avatar's moving render-mesh triangles."""
    if count < 100:
        raise ValueError(f"a splat avatar needs at least 100 Gaussians, asked for {count}")
    rng = np.random.default_rng(seed)
    tri_ids = moving_triangles(avatar)
    tris = avatar.triangles[tri_ids]
    rest = mesh_vertices(avatar)
    opened = mesh_vertices(avatar, {"jawOpen": 1.0})
    area = np.maximum(_areas(avatar, rest, tris), _areas(avatar, opened, tris))
    h, w = avatar.image.shape[:2]
    uv = avatar.vertex_uv[tris]
    px = avatar.face_to_image(rest)[tris]                       # (T, 3, 2): skip triangles off the photo
    inside = ~((px < -2).all(1).any(1) | (px > [w + 2, h + 2]).all(1).any(1))
    tri_ids, tris, area, uv = tri_ids[inside], tris[inside], area[inside], uv[inside]
    sets_all = triangle_sets(avatar)
    density = np.ones(len(tri_ids))
    for name, d in SET_DENSITY.items():
        density[sets_all[tri_ids] == SET[name]] = d
    levels = np.maximum(1, np.round(np.sqrt(count * area * density / (area * density).sum()))).astype(int)
    parts = {k: [] for k in ("triangle", "bary")}
    for lv in np.unique(levels):
        sel = np.nonzero(levels == lv)[0]
        b = lattice(int(lv))
        parts["triangle"].append(np.repeat(sel, len(b)))
        parts["bary"].append(np.tile(b, (len(sel), 1)))
    local = np.concatenate(parts["triangle"])
    bary = np.concatenate(parts["bary"]).astype(np.float32)
    n = len(local)
    sets = sets_all[tri_ids[local]]
    # colour: the atlas (lightly blurred to the lattice spacing) at each Gaussian's texture point
    g_uv = (bary[:, :, None] * uv[local]).sum(1).astype(np.float32)
    atlas = cv2.GaussianBlur(avatar.atlas, (0, 0), 0.7)
    color = cv2.remap(atlas, g_uv[:, None, 0], g_uv[:, None, 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)[:, 0].astype(np.float32) / 255.0
    sigma = IN_PLANE_SIGMA / levels[local].astype(np.float32)
    scale = np.stack([sigma, sigma, THICKNESS * sigma], 1).astype(np.float32)
    angle = rng.uniform(0, np.pi, n)          # in-plane orientation: irrelevant for round ones
    rotation = np.stack([np.cos(angle / 2), np.zeros(n), np.zeros(n), np.sin(angle / 2)], 1).astype(np.float32)
    offset = np.zeros(n, np.float32)
    for name, off in SET_OFFSETS.items():
        offset[sets == SET[name]] = off
    g = GaussianAvatar(triangle=tri_ids[local].astype(np.int32), bary=bary, offset=offset, rotation=rotation,
                       scale=scale, color=color, opacity=np.full(n, INIT_OPACITY, np.float32),
                       set_id=sets.astype(np.uint8), background=background_plane(avatar))
    g.validate(len(avatar.triangles))
    return g
