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


# mediapipe's corner landmarks: (image-left corner, image-right corner) of each contour
CORNERS = {"right_eye": (33, 133), "left_eye": (362, 263), "lips_outer": (61, 291), "lips_inner": (78, 308)}
# a landmark on the upper half of each contour (mid upper lid / lip)
UPPER_MARK = {"right_eye": 159, "left_eye": 386, "lips_outer": 0, "lips_inner": 13}


def split_contour(loop: list[int], name: str) -> Contour:
    """Split a closed loop at its two corner landmarks into upper and lower halves
    (by topology, so a closed mouth or eye splits the same way as an open one)."""
    corners = CORNERS[name]
    n = len(loop)
    i0, i1 = loop.index(corners[0]), loop.index(corners[1])
    a = [loop[(i0 + k) % n] for k in range((i1 - i0) % n + 1)]
    b = [loop[(i0 - k) % n] for k in range((i0 - i1) % n + 1)]
    if UPPER_MARK[name] not in a:
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
    """Ordered contours for a neutral landmark set ``pts`` (478, >=2), y pointing down."""
    c = _connections()
    right_eye = split_contour(_loops(c.FACEMESH_RIGHT_EYE)[0], "right_eye")
    left_eye = split_contour(_loops(c.FACEMESH_LEFT_EYE)[0], "left_eye")
    loops = _loops(c.FACEMESH_LIPS)
    outer = next(l for l in loops if CORNERS["lips_outer"][0] in l)
    inner = next(l for l in loops if CORNERS["lips_inner"][0] in l)
    oval = _loops(c.FACEMESH_FACE_OVAL)[0]
    brows = [_chain(e) for e in (c.FACEMESH_RIGHT_EYEBROW, c.FACEMESH_LEFT_EYEBROW)]
    rb, lb = sorted(brows, key=lambda b: pts[b, 0].mean())
    return FaceTopology(right_eye, left_eye, split_contour(outer, "lips_outer"),
                        split_contour(inner, "lips_inner"), tuple(oval), tuple(rb), tuple(lb))


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


@functools.lru_cache(maxsize=1)
def lip_bodies() -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(upper lip, lower lip, corner column) landmark indices, from the mesh topology.

    The lips are the mesh vertices between the inner and outer lip contours (a flood fill
    from the inner contour that stops at the outer one); each is upper or lower by its
    hop distance to the inner upper / lower contour; equal distances are the corners.
    """
    c = _connections()
    adj = collections.defaultdict(set)
    for a, b in c.FACEMESH_TESSELATION:
        adj[a].add(b)
        adj[b].add(a)
    loops = _loops(c.FACEMESH_LIPS)
    outer = set(next(l for l in loops if CORNERS["lips_outer"][0] in l))
    inner = next(l for l in loops if CORNERS["lips_inner"][0] in l)
    region, todo = set(inner), list(inner)
    while todo:
        v = todo.pop()
        if v in outer:
            continue
        for n in adj[v]:
            if n not in region:
                region.add(n)
                todo.append(n)
    # the corner columns (shortest paths inner corner -> outer corner) cut the lip ring in two
    cut = set()
    for a, b in ((CORNERS["lips_inner"][0], CORNERS["lips_outer"][0]),
                 (CORNERS["lips_inner"][1], CORNERS["lips_outer"][1])):
        cut.update(_shortest_path(adj, region, a, b))
    parts, seen = [], set(cut)
    for v in sorted(region - cut):
        if v in seen:
            continue
        comp, todo = {v}, [v]
        seen.add(v)
        while todo:
            x = todo.pop()
            for w in adj[x]:
                if w in region and w not in seen:
                    seen.add(w)
                    comp.add(w)
                    todo.append(w)
        parts.append(comp)
    upper = next(p for p in parts if 13 in p)   # 13: upper inner lip centre
    lower = next(p for p in parts if 14 in p)   # 14: lower inner lip centre
    return tuple(sorted(upper)), tuple(sorted(lower)), tuple(sorted(cut))


def _shortest_path(adj, allowed: set, a: int, b: int) -> list[int]:
    prev, frontier = {a: None}, [a]
    while frontier and b not in prev:
        nxt = []
        for v in frontier:
            for w in sorted(adj[v]):
                if w in allowed and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    path, v = [], b
    while v is not None:
        path.append(v)
        v = prev[v]
    return path
