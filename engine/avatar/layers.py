"""The avatar's render mesh: support rings, mouth interior, eyeballs and the face surface.

Each vertex is a small linear combination of rig landmarks plus an offset (see
``engine.avatar.asset``), so the render mesh follows every blendshape with one
gather per frame. Layers, in draw order (later on top):

* ``support``: rings of vertices around the face oval out past the image border
  (hair, ears, neck, background); expression and head pose fade out ring by ring
  (slowest upward for hair), and head pose by height below the jaw line (the neck
  blends into the static torso);

Every vertex also has a *pose depth* offset (``vertex_pose_dz``): the head rotation sees
the face's steep outline lifted to a slope-limited surface that the support continues
toward the pivot's depth, so turning the head is one continuous field across the outline
(see ``_face_pose_dz`` and docs/avatar.md, "Seams at the outline").
* ``mouth``: oral cavity with tongue, lower teeth on the jaw, upper teeth on the
  upper lip; seen through the mouth opening (a hole of the face surface);
* ``eyes``: sclera (rigid with the head) and a textured iris disk that follows
  the iris landmarks (gaze); seen through the eye openings;
* ``face``: mediapipe's face surface, depth-sorted per frame by the renderer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.avatar import textures
from engine.avatar.landmarks import LEFT_IRIS, RIGHT_IRIS, FaceTopology, face_triangles

K = 3  # anchors per vertex

# Geometry constants (face units) -----------------------------------------------------------
RING_SCALES = (1.0, 1.05, 1.1, 1.16, 1.23, 1.31, 1.4, 1.5, 1.62, 1.76, 1.92, 2.1, 2.5, 3.0, 3.7, 4.6,
               6.0, 8.0, 11.0, 16.0)
POSE_EXTENT_SIDE, POSE_EXTENT_UP = 1.6, 1.95  # ring scale where head pose fades to 0 (ears, hair)
SUPPORT_SUBDIV = 2           # support ring vertices per face-oval segment
NECK_LENGTH = 0.35           # face units below the jaw line where head pose has faded to 0 (torso)
JAW_LINE_FROM = 0.3          # the jaw line: the oval's points this far below its centre and lower
POSE_DEPTH_SLOPE = 2.0       # max depth slope (per face unit) across the outline under head pose
POSE_DEPTH_BAND = 0.3        # face units inside the outline over which that limit fades out
EXPR_FALLOFF = 0.3           # ring-scale width over which expression (jaw) motion fades
SCLERA_RING = 1.7            # outer ring of the sclera disk, relative to the eye contour
IRIS_RIM = 1.18              # iris disk radius relative to the iris landmark radius
IRIS_SEGMENTS = 20
UPPER_TEETH, LOWER_TEETH = 0.10, 0.05    # visible teeth heights (upper: closed-lip photos only)
OPEN_LIPS_GAP = 0.05         # neutral lip gap above which the photo's own teeth are used
MAX_PHOTO_TEETH = 0.18       # at most this much of the photo's opening hangs from the upper lip
LOWER_TEETH_SHADE = 0.88     # lower teeth sit in the upper lip's shadow
SYNTH_TOOTH = np.array([205, 198, 182], np.float32)  # enamel at a typical face brightness
GUTTER = 96                  # atlas pixels of replicated photo border before the extras


@dataclass
class MeshBuilder:
    anchors: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    offsets: list = field(default_factory=list)
    pose: list = field(default_factory=list)
    uv: list = field(default_factory=list)
    pose_dz: list = field(default_factory=list)
    count: int = 0

    def add(self, anchors, weights, offsets, pose, uv, pose_dz=0.0) -> np.ndarray:
        n = len(offsets)
        a = np.zeros((n, K), np.int32)
        w = np.zeros((n, K), np.float32)
        anchors = np.asarray(anchors).reshape(n, -1)
        weights = np.asarray(weights, np.float32).reshape(n, -1)
        a[:, :anchors.shape[1]] = anchors
        w[:, :weights.shape[1]] = weights
        self.anchors.append(a)
        self.weights.append(w)
        self.offsets.append(np.asarray(offsets, np.float32).reshape(n, 3))
        self.pose.append(np.broadcast_to(np.asarray(pose, np.float32), (n,)).copy())
        self.uv.append(np.asarray(uv, np.float32).reshape(n, 2))
        self.pose_dz.append(np.broadcast_to(np.asarray(pose_dz, np.float32), (n,)).copy())
        idx = np.arange(self.count, self.count + n)
        self.count += n
        return idx

    def arrays(self):
        return (np.concatenate(self.anchors), np.concatenate(self.weights),
                np.concatenate(self.offsets), np.concatenate(self.pose), np.concatenate(self.uv),
                np.concatenate(self.pose_dz))


class AtlasPacker:
    """Packs texture patches into columns to the right of the photo (after a gutter)."""

    def __init__(self, image: np.ndarray):
        self.h, self.w = image.shape[:2]
        self.columns: list[list] = []   # [x, width, y_next, patches]
        self.x_next = self.w + GUTTER

    def place(self, patch: np.ndarray) -> np.ndarray:
        ph, pw = patch.shape[:2]
        if ph + 2 > self.h:
            raise ValueError("texture patch taller than the avatar image")
        for col in self.columns:
            if col[2] + ph + 2 <= self.h and pw <= col[1]:
                break
        else:
            col = [self.x_next, max(pw, 64), 1, []]
            self.columns.append(col)
            self.x_next += col[1] + 2
        origin = np.array([col[0], col[2]], np.float32)
        col[3].append((origin, patch))
        col[2] += ph + 2
        return origin

    def extra(self, image: np.ndarray) -> np.ndarray:
        width = self.x_next - self.w
        out = np.zeros((self.h, width, 3), np.uint8)
        out[:, :GUTTER] = image[:, -1:]
        for col in self.columns:
            for origin, patch in col[3]:
                x, y = int(origin[0]) - self.w, int(origin[1])
                ph, pw = patch.shape[:2]
                out[y:y + ph, x:x + pw] = patch
                out[y:y + ph, x + pw:x + pw + 1] = patch[:, -1:]   # bleed one pixel
                out[y + ph:y + ph + 1, x:x + pw] = patch[-1:]
        return out


def build_layers(image: np.ndarray, landmarks: np.ndarray, neutral: np.ndarray,
                 topo: FaceTopology, to_image, pivot_z: float) -> dict:
    """Render mesh + atlas extras for one avatar; ``to_image`` maps face space to pixels,
    ``pivot_z`` is the depth of the head pivot (the support's pose depth falls toward it)."""
    mb = MeshBuilder()
    packer = AtlasPacker(image)
    n = len(neutral)
    face_dz = _face_pose_dz(neutral, topo)
    face_idx = mb.add(np.arange(n), np.ones(n), np.zeros((n, 3)), 1.0, landmarks[:, :2], face_dz)
    layers, tris = {}, []

    def layer(name, t):
        start = sum(len(x) for x in tris)
        tris.append(np.asarray(t, np.int32).reshape(-1, 3))
        layers[name] = (start, start + len(tris[-1]))

    layer("support", _support(mb, neutral, topo, to_image, image.shape, pivot_z, face_dz))
    inner_first = mb.count
    layer("mouth", _mouth(mb, image, landmarks, neutral, topo, to_image, packer))
    layer("eyes", _eyes(mb, image, landmarks, neutral, topo, to_image, packer))
    layer("face", face_idx[face_triangles()])
    anchors, weights, offsets, pose, uv, pose_dz = mb.arrays()
    # mouth and eye layers turn like the face surface in front of them
    rest = (weights[inner_first:, :, None] * neutral[anchors[inner_first:]]).sum(1) + offsets[inner_first:]
    pose_dz[inner_first:] = _surface_value(neutral, pose_dz[:n], rest)
    extra = packer.extra(image)
    return dict(vertex_anchors=anchors, vertex_weights=weights, vertex_offsets=offsets,
                vertex_pose_weight=pose, vertex_pose_dz=pose_dz, vertex_uv=uv,
                triangles=np.concatenate(tris),
                layers=layers, atlas=np.ascontiguousarray(np.concatenate([image, extra], 1)))


def _strip_triangles(a: np.ndarray, b: np.ndarray, closed: bool = False) -> np.ndarray:
    """Quads between two equally long vertex rows, two triangles each."""
    m = len(a)
    out = []
    for j in range(m if closed else m - 1):
        k = (j + 1) % m
        out += [(a[j], b[j], b[k]), (a[j], b[k], a[k])]
    return np.array(out, np.int32)


def _face_pose_dz(neutral: np.ndarray, topo: FaceTopology) -> np.ndarray:
    """Per landmark, the depth change seen by the head pose only (``vertex_pose_dz``).

    mediapipe's outline sits at the bottom of a cliff: the first row inside it rises ~0.6
    units over ~0.08 (the cheek side, seen edge-on). Rotated, that row smears a band of edge
    pixels (near side) or folds over the outline (far side), and the support outside, at
    the outline's depth, does not follow the face. So near the outline the depth is lifted
    to the slope-limited upper envelope ``max_u z_u - POSE_DEPTH_SLOPE * |u - v|`` (a
    ``POSE_DEPTH_SLOPE``-Lipschitz surface over the face), faded in over ``POSE_DEPTH_BAND``
    from the outline; interior depths are unchanged."""
    oval = neutral[list(topo.face_oval)]
    contour = oval[:, :2].astype(np.float32).reshape(-1, 1, 2)
    inside = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True)
                       for x, y in neutral[:, :2]], np.float32)
    dist = np.linalg.norm(neutral[:, None, :2] - neutral[None, :, :2], axis=-1)
    envelope = (neutral[None, :, 2] - POSE_DEPTH_SLOPE * dist).max(1)
    t = np.clip(1 - np.maximum(inside, 0) / POSE_DEPTH_BAND, 0, 1)
    return ((envelope - neutral[:, 2]) * t * t * (3 - 2 * t)).astype(np.float32)


def _surface_value(neutral: np.ndarray, values: np.ndarray, pts: np.ndarray, spread: float = 0.06):
    """``values`` of the landmarks interpolated at face-space points (Gaussian in x, y)."""
    d2 = ((pts[:, None, :2] - neutral[None, :, :2]) ** 2).sum(-1)
    g = np.exp(-(d2 - d2.min(1, keepdims=True)) / spread ** 2)
    return ((g * values[None]).sum(1) / g.sum(1)).astype(np.float32)


def _support(mb, neutral, topo, to_image, shape, pivot_z, face_dz) -> np.ndarray:
    h, w = shape[:2]
    oval = np.array(topo.face_oval)
    m = len(oval)
    p0 = neutral[oval]
    c = p0[:, :2].mean(0)
    # the rings past the outline have SUPPORT_SUBDIV vertices per oval segment: the pose fade
    # below the jaw varies along each ring, and a coarse ring turns it into visible kinks
    # (a jagged collar line when the head pitches); ring vertex j sits between oval points
    # i = j // SUPPORT_SUBDIV and i + 1, and follows them with weights (1 - f, f)
    j = np.arange(m * SUPPORT_SUBDIV)
    i0, f = j // SUPPORT_SUBDIV, (j % SUPPORT_SUBDIV) / SUPPORT_SUBDIV
    i1 = (i0 + 1) % m
    p = (1 - f)[:, None] * p0[i0] + f[:, None] * p0[i1]
    oval_dz = (1 - f) * face_dz[oval[i0]] + f * face_dz[oval[i1]]
    n = len(p)
    dirs = (p[:, :2] - c) / np.linalg.norm(p[:, :2] - c, axis=1, keepdims=True)
    extent = POSE_EXTENT_SIDE + (POSE_EXTENT_UP - POSE_EXTENT_SIDE) * np.maximum(-dirs[:, 1], 0)
    lower = p0[:, 1] > c[1] + JAW_LINE_FROM
    jaw_x, jaw_y = p0[lower, 0], p0[lower, 1]
    jaw_y = jaw_y[np.argsort(jaw_x)]
    jaw_x = np.sort(jaw_x)
    chin_y = p0[:, 1].max()
    # expression anchors: the oval's smoothing stencil (0.25, 0.5, 0.25) at oval points, the
    # two segment ends in between (K = 3 anchors per vertex)
    on_point = f == 0
    nbr = np.where(on_point[:, None],
                   np.stack([oval[(i0 - 1) % m], oval[i0], oval[i1]], 1),
                   np.stack([oval[i0], oval[i1], oval[i1]], 1))
    nbr_w = np.where(on_point[:, None], np.array([0.25, 0.5, 0.25]),
                     np.stack([1 - f, f, np.zeros_like(f)], 1))
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float32)
    prev, out = oval, []
    for s in RING_SCALES[1:]:
        q = np.empty((n, 3), np.float32)
        q[:, :2] = c + s * (p[:, :2] - c)
        q[:, 2] = p[:, 2]   # at the depth of the face edge: hair and ears turn with it
        # pose depth: continues the face's lifted edge slope outward, falling toward the
        # pivot's depth (where a yaw/pitch barely moves a point), so the pose displacement is
        # one continuous field across the outline that decays into the background
        depth = np.maximum(p[:, 2] + oval_dz - pivot_z, 1e-3)
        dist = (s - 1) * np.linalg.norm(p[:, :2] - c, axis=1)
        pose_dz = pivot_z + depth * np.exp(-POSE_DEPTH_SLOPE * dist / depth) - q[:, 2]
        alpha = np.exp(-((s - 1) / EXPR_FALLOFF) ** 2)
        alpha = alpha if alpha > 1e-3 else 0.0   # outer rings: static, skipped by the renderer
        weights = nbr_w * alpha
        offsets = q - (weights[:, :, None] * neutral[nbr]).sum(1)
        # head pose fades by ring outward (hair, ears) and, below the jaw, from the jaw line
        # (or the vertex's own oval point where the jaw line rises steeply toward the ears,
        # so the fade starts at 0 at the outline) down to one horizontal line NECK_LENGTH
        # under the chin: the neck stretches by height alone, so a collar keeps its shape
        # (a fade that followed the U of the jaw bent a straight collar line into kinks)
        top = np.maximum(np.interp(q[:, 0], jaw_x, jaw_y), p[:, 1])
        below_jaw = (q[:, 1] - top) / (chin_y + NECK_LENGTH - top)
        t = np.maximum(np.clip((s - 1) / (extent - 1), 0, 1), np.clip(below_jaw, 0, 1))
        pose = 1 - t * t * (3 - 2 * t)
        uv = to_image(q)
        ring = mb.add(nbr, weights, offsets, pose, uv, pose_dz)
        out.append(_fan_strip(prev, ring) if len(prev) < len(ring) else
                   _strip_triangles(prev, ring, closed=True))
        prev = ring
        poly = uv.astype(np.float32).reshape(-1, 1, 2)
        if all(cv2.pointPolygonTest(poly, tuple(map(float, cc)), True) > 8 for cc in corners):
            break
    return np.concatenate(out)


def _fan_strip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A closed strip from a ring of m vertices to one of m * k (vertex a[i] sits over b[i * k])."""
    m, k = len(a), len(b) // len(a)
    out = []
    for i in range(m):
        i1 = (i + 1) % m
        for t in range(k):
            j, j1 = i * k + t, (i * k + t + 1) % len(b)
            out.append((a[i], b[j], b[j1]))
        out.append((a[i], b[(i1 * k) % len(b)], a[i1]))
    return np.array(out, np.int32)


def _mouth(mb, image, landmarks, neutral, topo, to_image, packer) -> np.ndarray:
    up, lo = np.array(topo.lips_inner.upper), np.array(topo.lips_inner.lower)
    m = len(up)
    gap0 = np.maximum(neutral[lo, 1] - neutral[up, 1], 0)
    u = np.linspace(-1, 1, m)
    round_ = np.clip(1 - u ** 2, 0.0, 1.0) ** 0.5
    open_photo = gap0.max() > OPEN_LIPS_GAP
    lip_px = landmarks[list(topo.lips_outer.loop), :2]
    lip_mask = textures.polygon_mask(image.shape[:2], lip_px)
    lip_rgb = image[lip_mask].mean(0) if lip_mask.any() else np.array([170, 90, 90])
    skin = image[int(landmarks[1, 1]) - 2:int(landmarks[1, 1]) + 3,
                 int(landmarks[1, 0]) - 2:int(landmarks[1, 0]) + 3].reshape(-1, 3).mean(0)
    brightness = float(np.clip(skin.mean() / 170.0, 0.35, 1.3))

    def row(anchor_idx, dy, dz=-0.08):
        off = np.zeros((m, 3), np.float32)
        off[:, 1], off[:, 2] = dy, dz
        return anchor_idx, np.ones(m), off

    def photo_uv(anchor_idx, off):
        return to_image(neutral[anchor_idx] + off)

    def tex_uv(origin, size, v):
        th, tw = size
        return np.stack([origin[0] + (u + 1) / 2 * (tw - 1), np.full(m, origin[1] + v * (th - 1))], 1)

    # cavity: three rows (upper lip, middle, lower lip)
    cav_size = (40, 72)
    cav_origin = packer.place(textures.mouth_cavity(cav_size, lip_rgb, brightness))
    a0, w0, o0 = row(up, -0.02)
    a2, w2, o2 = row(lo, 0.02)
    mid_a = np.stack([up, lo], 1)
    mid_o = 0.5 * (o0 + o2)
    r0 = mb.add(a0, w0, o0, 1.0, tex_uv(cav_origin, cav_size, 0.0))
    r1 = mb.add(mid_a, np.full((m, 2), 0.5), mid_o, 1.0, tex_uv(cav_origin, cav_size, 0.5))
    r2 = mb.add(a2, w2, o2, 1.0, tex_uv(cav_origin, cav_size, 1.0))
    tris = [_strip_triangles(r0, r1), _strip_triangles(r1, r2)]

    # teeth: lower strip on the jaw (lower lip), upper strip under the upper lip
    # lips apart in the photo: the upper strip is the photo's own opening (upper teeth),
    # so the neutral render is the photo; the lower teeth are synthesized in its colours
    h_up = np.minimum(gap0, MAX_PHOTO_TEETH) if open_photo else UPPER_TEETH * round_
    h_lo = LOWER_TEETH * round_
    tooth = _teeth_colour(image, landmarks, topo) if open_photo else None
    if tooth is None:   # enamel lit like the face: a neutral white tinted by the skin
        tint = np.sqrt(skin / max(float(skin.mean()), 1.0))
        tooth = textures.in_photo_colours(SYNTH_TOOTH * tint * brightness, skin)
        tooth = np.clip(tooth, 0, 255).astype(np.float32)
    gum = np.asarray(lip_rgb, np.float32) * 0.8
    for anchors, sign, hgt, upper in ((lo, -1.0, h_lo, False), (up, 1.0, h_up, True)):
        ga, gw, go = row(anchors, -sign * 0.02, -0.05)
        ta, tw_, to = row(anchors, 0.0, -0.05)
        to[:, 1] = sign * hgt
        if open_photo and upper:
            g_uv, t_uv = photo_uv(anchors, go), photo_uv(anchors, to)
        else:
            size = (22, 96) if upper else (16, 96)
            shade = 1.0 if upper else LOWER_TEETH_SHADE
            origin = packer.place(textures.teeth_strip(size, tooth * shade, upper, gum))
            g_uv, t_uv = tex_uv(origin, size, 0.0), tex_uv(origin, size, 1.0)
        g = mb.add(ga, gw, go, 1.0, g_uv)
        t = mb.add(ta, tw_, to, 1.0, t_uv)
        tris.append(_strip_triangles(g, t))
    return np.concatenate(tris)


def _teeth_colour(image, landmarks, topo) -> np.ndarray | None:
    """Mean of the brightest pixels inside the photo's lip opening (its visible teeth)."""
    inner = landmarks[list(topo.lips_inner.loop), :2]
    mask = textures.polygon_mask(image.shape[:2], inner)
    pix = image[mask].astype(np.float32)
    if len(pix) < 20:
        return None
    lum = pix.mean(1)
    top = pix[lum >= np.percentile(lum, 88)]
    return top.mean(0) if top.mean() > 90 else None


def _eyes(mb, image, landmarks, neutral, topo, to_image, packer) -> np.ndarray:
    tris = []
    for eye, iris in ((topo.right_eye, RIGHT_IRIS), (topo.left_eye, LEFT_IRIS)):
        loop = np.array(eye.loop)
        ring = neutral[loop].copy()
        centre = ring.mean(0)
        outer = centre + SCLERA_RING * (ring - centre)
        iris_r = float(np.linalg.norm(neutral[list(iris[1:]), :2] - neutral[iris[0], :2], axis=1).mean())
        rim_r = IRIS_RIM * iris_r
        ang = np.linspace(0, 2 * np.pi, IRIS_SEGMENTS, endpoint=False)
        rim_off = np.stack([rim_r * np.cos(ang), rim_r * np.sin(ang), np.zeros_like(ang)], 1)
        iris_c_face = neutral[iris[0]]
        iris_c_px = landmarks[iris[0], :2]
        iris_r_px = iris_r * np.linalg.norm(to_image(np.array([[1.0, 0, 0]])) - to_image(np.zeros((1, 3))))
        # sclera patch: photo eye region with the iris and everything outside the opening repainted
        pts_px = to_image(np.concatenate([outer, iris_c_face + rim_off * 1.3]))
        rect = _rect(pts_px, 3)
        opening = textures.polygon_mask((rect[3] - rect[1], rect[2] - rect[0]), landmarks[loop, :2],
                                        origin=rect[:2])
        inner = cv2.erode(opening.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        sclera = textures.eye_sclera_patch(image, rect, iris_c_px, rim_r / iris_r * iris_r_px, inner)
        bgr = cv2.cvtColor(sclera, cv2.COLOR_RGB2BGR)
        repaint = (~inner).astype(np.uint8) * 255
        sclera = cv2.cvtColor(cv2.inpaint(bgr, repaint, 3, cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)
        sclera[inner] = np.where(_disk(rect, iris_c_px, rim_r / iris_r * iris_r_px)[inner][:, None],
                                 sclera[inner], textures.crop(image, rect)[inner])
        s_origin = packer.place(sclera)
        # sclera mesh: centre + eye contour + outer ring, rigid with the head
        verts = np.concatenate([centre[None], ring, outer])
        uv = to_image(verts) - rect[:2] + s_origin
        idx = mb.add(np.zeros(len(verts), int), np.zeros(len(verts)), verts, 1.0, uv)
        c, r, o = idx[0], idx[1:1 + len(loop)], idx[1 + len(loop):]
        tris.append([(c, r[j], r[(j + 1) % len(r)]) for j in range(len(r))])
        tris.append(_strip_triangles(r, o, closed=True))
        # iris disk: follows the iris centre landmark (gaze)
        rim_px = to_image(iris_c_face + rim_off)
        irect = _rect(np.concatenate([rim_px, [iris_c_px]]), 2)
        visible = textures.polygon_mask((irect[3] - irect[1], irect[2] - irect[0]), landmarks[loop, :2],
                                        origin=irect[:2])
        sprite = textures.iris_sprite(image, irect, iris_c_px, iris_r_px, visible)
        i_origin = packer.place(sprite)
        anchors, weights, offsets = _iris_rim_anchors(neutral, iris, iris_c_face + rim_off)
        uv = np.concatenate([[iris_c_px], rim_px]) - irect[:2] + i_origin
        idx = mb.add(np.concatenate([[[iris[0], iris[0], iris[0]]], anchors]),
                     np.concatenate([[[1.0, 0, 0]], weights]),
                     np.concatenate([np.zeros((1, 3)), offsets]), 1.0, uv)
        tris.append([(idx[0], idx[1 + j], idx[1 + (j + 1) % IRIS_SEGMENTS]) for j in range(IRIS_SEGMENTS)])
    return np.concatenate([np.asarray(t, np.int32).reshape(-1, 3) for t in tris])


def _iris_rim_anchors(neutral: np.ndarray, iris: tuple, rim: np.ndarray):
    """Each iris-rim vertex as (1 - a - b) * centre + a * p_i + b * p_j of the iris centre and
    the two iris-contour landmarks around its angle (+ an offset exact at neutral), so the
    disk deforms with the iris landmarks (foreshortening as the eye turns)."""
    c = neutral[iris[0]]
    ring = np.array(iris[1:])
    ang = np.arctan2(neutral[ring, 1] - c[1], neutral[ring, 0] - c[0])
    order = ring[np.argsort(ang)]
    ang = np.sort(ang)
    anchors, weights, offsets = [], [], []
    for v in rim:
        a = np.arctan2(v[1] - c[1], v[0] - c[0])
        k = int(np.searchsorted(ang, a)) % len(order)
        i, j = order[k - 1], order[k]
        basis = np.stack([neutral[i, :2] - c[:2], neutral[j, :2] - c[:2]], 1)
        ab = np.linalg.lstsq(basis, v[:2] - c[:2], rcond=None)[0]
        w = np.array([1 - ab.sum(), ab[0], ab[1]])
        anchors.append([iris[0], i, j])
        weights.append(w)
        offsets.append(v - w @ neutral[[iris[0], i, j]])
    return np.array(anchors), np.array(weights, np.float32), np.array(offsets, np.float32)


def _rect(pts: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    lo = np.floor(pts.min(0)).astype(int) - margin
    hi = np.ceil(pts.max(0)).astype(int) + margin + 1
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _disk(rect, c, r) -> np.ndarray:
    x0, y0, x1, y1 = rect
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return np.hypot(xx - c[0], yy - c[1]) <= r + 0.5
