"""Face-mesh landmarks for avatar creation (mediapipe 0.10.21's bundled models).

``detect_landmarks(rgb)`` finds every face, picks the largest and returns its
478 landmarks (468 mesh points + 10 iris points) in image pixels: x right,
y down, z as mediapipe scales it (same pixel units as x, smaller = nearer).

The topology helpers below turn mediapipe's connection sets into ordered
contours (eyes, lips, face oval, brows) and the face-surface triangles.
"""
from __future__ import annotations

import collections
import functools
from dataclasses import dataclass

import numpy as np

NUM_LANDMARKS = 478
RIGHT_IRIS = (468, 469, 470, 471, 472)  # subject's right eye = image left; 468 = centre
LEFT_IRIS = (473, 474, 475, 476, 477)   # subject's left eye = image right; 473 = centre


@dataclass(frozen=True)
class FaceDetection:
    landmarks: np.ndarray  # (478, 3) float32, image pixels
    num_faces: int         # faces seen in the image (the largest is returned)


def detect_landmarks(rgb: np.ndarray, max_faces: int = 4) -> FaceDetection | None:
    """The largest face's landmarks, or ``None`` if the image shows no face.

    The full-range face detector counts the faces and picks the largest; the face mesh
    then runs on a square crop around it (its own detector only finds large faces).
    """
    import mediapipe as mp  # heavy import: only when an avatar is made

    h, w = rgb.shape[:2]
    with mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                   min_detection_confidence=0.5) as det:
        found = det.process(rgb).detections or []
    boxes = []
    for d in found:
        b = d.location_data.relative_bounding_box
        boxes.append((b.xmin * w, b.ymin * h, b.width * w, b.height * h))
    boxes.sort(key=lambda b: -b[2] * b[3])
    regions = [(0, 0, w, h)]
    if boxes:
        x, y, bw, bh = boxes[0]
        side = int(min(max(bw, bh) * 3.0, max(h, w)))
        cx, cy = x + bw / 2, y + bh / 2
        x0 = int(np.clip(cx - side / 2, 0, max(w - side, 0)))
        y0 = int(np.clip(cy - side / 2, 0, max(h - side, 0)))
        regions.insert(0, (x0, y0, min(x0 + side, w), min(y0 + side, h)))
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                         max_num_faces=max_faces,
                                         min_detection_confidence=0.5) as mesh:
        for x0, y0, x1, y1 in regions:
            crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            faces = mesh.process(crop).multi_face_landmarks or []
            if faces:
                break
    if not faces:
        return None
    scale = np.array([x1 - x0, y1 - y0, x1 - x0], np.float32)
    shift = np.array([x0, y0, 0], np.float32)
    candidates = [np.array([(p.x, p.y, p.z) for p in f.landmark], np.float32) * scale + shift
                  for f in faces]
    areas = [float(np.ptp(c[:, 0]) * np.ptp(c[:, 1])) for c in candidates]
    best = candidates[int(np.argmax(areas))]
    if best.shape[0] != NUM_LANDMARKS:
        raise RuntimeError(f"face mesh returned {best.shape[0]} landmarks, expected {NUM_LANDMARKS}")
    return FaceDetection(best, max(len(found), len(faces)))


# --- topology ------------------------------------------------------------------------------

def _connections():
    from mediapipe.python.solutions import face_mesh_connections as c  # light module
    return c


def _loops(edges) -> list[list[int]]:
    """Closed loops (ordered vertex lists) formed by an undirected edge set."""
    adj = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, loops = set(), []
    for start in sorted(adj):
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in sorted(adj[cur]) if n != prev and (n not in seen or n == start)]
            if not nxt or nxt[0] == start:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    return loops


def _chain(edges) -> list[int]:
    """Ordered vertex list of an open chain (brows)."""
    adj = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    ends = sorted(v for v in adj if len(adj[v]) == 1)
    order, prev, cur = [ends[0]], None, ends[0]
    while True:
        nxt = [n for n in adj[cur] if n != prev]
        if not nxt:
            return order
        prev, cur = cur, nxt[0]
        order.append(cur)


@dataclass(frozen=True)
class Contour:
    """A closed contour split at its left/right-most points into upper and lower halves,
    each ordered from the image-left corner to the image-right corner (corners included)."""
    loop: tuple[int, ...]
    upper: tuple[int, ...]
    lower: tuple[int, ...]


def split_contour(loop: list[int], pts: np.ndarray) -> Contour:
    xs = pts[loop, 0]
    i0, i1 = int(np.argmin(xs)), int(np.argmax(xs))
    n = len(loop)
    a = [loop[(i0 + k) % n] for k in range((i1 - i0) % n + 1)]
    b = [loop[(i0 - k) % n] for k in range((i0 - i1) % n + 1)]
    if pts[a[1:-1], 1].mean() > pts[b[1:-1], 1].mean():
        a, b = b, a
    return Contour(tuple(loop), tuple(a), tuple(b))


@dataclass(frozen=True)
class FaceTopology:
    right_eye: Contour      # subject's right = image left
    left_eye: Contour
    lips_outer: Contour
    lips_inner: Contour
    face_oval: tuple[int, ...]  # closed loop, ordered
    right_brow: tuple[int, ...]
    left_brow: tuple[int, ...]


def face_topology(pts: np.ndarray) -> FaceTopology:
    """Ordered contours for a neutral landmark set ``pts`` (478, >=2) in image pixels."""
    c = _connections()
    eyes = []
    for edges in (c.FACEMESH_RIGHT_EYE, c.FACEMESH_LEFT_EYE):
        eyes.append(split_contour(_loops(edges)[0], pts))
    lip_loops = sorted(_loops(c.FACEMESH_LIPS), key=lambda l: -np.ptp(pts[l, 1]))
    outer, inner = (split_contour(l, pts) for l in lip_loops[:2])
    oval = _loops(c.FACEMESH_FACE_OVAL)[0]
    brows = [_chain(e) for e in (c.FACEMESH_RIGHT_EYEBROW, c.FACEMESH_LEFT_EYEBROW)]
    right_eye, left_eye = sorted(eyes, key=lambda e: pts[list(e.loop), 0].mean())
    rb, lb = sorted(brows, key=lambda b: pts[b, 0].mean())
    return FaceTopology(right_eye, left_eye, outer, inner, tuple(oval), tuple(rb), tuple(lb))


@functools.lru_cache(maxsize=1)
def _tessellation_cliques() -> np.ndarray:
    c = _connections()
    edges = {frozenset(e) for e in c.FACEMESH_TESSELATION}
    adj = collections.defaultdict(set)
    for e in edges:
        a, b = tuple(e)
        adj[a].add(b)
        adj[b].add(a)
    tris = set()
    for e in edges:
        a, b = tuple(e)
        for k in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, k))))
    return np.array(sorted(tris), np.int32)


def face_triangles() -> np.ndarray:
    """(852, 3) int32 triangles of mediapipe's face surface (eye and mouth openings are holes).

    The tessellation ships as edges; its triangles are the edge 3-cliques minus the two
    cliques (one per side of the nose) whose three edges all border two real faces already.
    """
    tris = _tessellation_cliques()
    count = collections.Counter()
    for a, b, c in tris:
        count.update(((a, b), (b, c), (a, c)))
    keep = [t for t in tris
            if not all(count[e] > 2 for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])))]
    return np.array(keep, np.int32)
