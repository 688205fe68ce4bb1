"""An avatar as glTF 2.0 (binary .glb): the warp renderer's mesh, atlas and rig for client-side
rendering (three.js, game engines, any glTF viewer).

What is exported (positions in metres: face units × ``IOD_M``; glTF axes: x right, y up,
z toward the viewer, so face space's y is flipped):
- mesh ``head``: the render mesh's vertices at neutral (``vertex_weights · rig_neutral[anchors] +
  vertex_offsets``), its triangles in the renderer's neutral draw order (support, mouth
  interior, eyes, face sorted far → near), UVs into the atlas texture (photo | synthesized
  mouth interior and eyes), and the 52 ARKit blendshapes as **morph targets** (each rig delta
  carried through the vertex weights) named in ``mesh.extras.targetNames`` (ARKit names and
  order, as three.js reads them);
- skin: joints ``root`` (static background) → ``head_pose`` (head translation / weak-perspective
  scale) → ``head`` (rotation about the avatar's head pivot); each vertex follows ``head`` by its
  ``vertex_pose_weight`` (linear blend skinning = the renderer's pose blend). The vertices carry
  the renderer's pose depth (z + ``vertex_pose_dz``), which makes their on-screen motion under
  rotation the renderer's exactly (z itself is not seen by the orthographic photo camera);
- mesh ``background``: the photo as a quad behind the head (the renderer's static background);
- materials: unlit (``KHR_materials_unlit``), double-sided, linear filtering, clamp to edge;
- ``scene.extras.facecast``: what a client needs to match the Python renderer: the unit, the
  head pivot, the mouth rule (``mouth_weights``: the aperture calibration, the rig's lip-gap rows
  that the jaw or the lip seal keeps at the commanded opening, the opening convention), and the
  orthographic "photo camera" that frames the output like ``WarpRenderer`` does.

Not representable in glTF and left out (the bound of the PSNR check, docs/motion-client.md):
the lip-contact correction (``engine.avatar.lip_contact``: non-linear) and the per-frame depth
sort of the face triangles (painter's order; a client draws in the neutral order).
"""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np

from engine.avatar.asset import Avatar
from engine.avatar.blendshapes import CLOSE_OVER_JAW
from engine.avatar.lip_contact import PRESS_SEAL_GAIN
from engine.avatar.mouth_rest import MouthMap
from engine.avatar.rig import CAMERA_DISTANCE
from engine.motion.opening import OPENING_TERMS
from engine.motion.space import ARKIT_NAMES

IOD_M = 0.063          # metres per face unit (a typical inter-ocular distance)
BACKGROUND_DEPTH = -3.0   # face units: the photo quad sits this far behind the eye line
_FLIP = np.array([1.0, -1.0, 1.0], np.float32)   # face space (y down) → glTF (y up)

# glTF constants
_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _CLAMP = 9729, 33071


def neutral_vertices(avatar: Avatar) -> np.ndarray:
    """(V, 3) face-space render vertices of the neutral rig (no pose)."""
    return (avatar.vertex_weights[:, :, None] * avatar.rig_neutral[avatar.vertex_anchors]).sum(1) + avatar.vertex_offsets


def vertex_deltas(avatar: Avatar) -> np.ndarray:
    """(52, V, 3) face-space displacement of every render vertex per blendshape at weight 1."""
    w = avatar.vertex_weights[None, :, :, None]
    return (w * avatar.rig_deltas[:, avatar.vertex_anchors]).sum(2)


def draw_order(avatar: Avatar) -> np.ndarray:
    """(T, 3) triangles in the renderer's order at neutral: every layer but the face as stored,
    then the face sorted by depth far → near (``WarpRenderer.frame_geometry``)."""
    tris = avatar.triangles
    f0, f1 = avatar.layers["face"]
    z = neutral_vertices(avatar)[:, 2] + 0.0
    face = tris[f0:f1]
    order = np.argsort(z[face].sum(1), kind="stable")
    return np.concatenate([tris[:f0], tris[f1:], face[order]]).astype(np.uint32)


def photo_camera(avatar: Avatar, width: int, height: int) -> dict:
    """The orthographic camera (glTF metres) that shows the output frame of
    ``WarpRenderer(avatar, width, height)``: output pixel (px, py) ↔ photo pixel
    ((px + 0.5 - shift) / scale - 0.5), photo pixel ↔ face space via the avatar's face frame."""
    scale = max(width / avatar.width, height / avatar.height)
    shift = np.array([(width - scale * avatar.width) / 2, (height - scale * avatar.height) / 2])
    corners_px = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5]])   # output pixel edges
    photo = (corners_px + 0.5 - shift) / scale - 0.5
    face = _image_to_face(avatar, photo) * _FLIP[:2] * IOD_M
    right, down = face[1] - face[0], face[2] - face[0]
    return {"width": width, "height": height, "top_left": face[0].tolist(),
            "right": right.tolist(), "down": down.tolist(), "roll": float(avatar.face_roll)}


def _image_to_face(avatar: Avatar, xy: np.ndarray) -> np.ndarray:
    """Photo pixels (N, 2) → face-space xy (N, 2) (inverse of ``Avatar.face_to_image``)."""
    return ((np.asarray(xy, np.float64) - avatar.face_origin) / avatar.face_scale) @ avatar.face_roll_matrix().astype(np.float64)


def _png(rgb: np.ndarray) -> bytes:
    import cv2
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding of the atlas failed")
    return buf.tobytes()


class _Builder:
    """Accumulates buffer views / accessors of one GLB binary chunk."""

    def __init__(self) -> None:
        self.blob = io.BytesIO()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = (-self.blob.tell()) % 4
        self.blob.write(b"\0" * pad)
        v = {"buffer": 0, "byteOffset": self.blob.tell(), "byteLength": len(data)}
        if target is not None:
            v["target"] = target
        self.blob.write(data)
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, minmax: bool = False) -> int:
        ctype = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): _USHORT, np.dtype(np.uint32): _UINT}[array.dtype]
        acc = {"bufferView": self.view(np.ascontiguousarray(array).tobytes(), target), "componentType": ctype,
               "count": int(array.shape[0]) if kind != "SCALAR" else int(array.size), "type": kind}
        if minmax:
            acc["min"] = np.asarray(array).reshape(len(array), -1).min(0).astype(float).tolist()
            acc["max"] = np.asarray(array).reshape(len(array), -1).max(0).astype(float).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1


def avatar_to_glb(avatar: Avatar, render_size: tuple[int, int] = (512, 512)) -> bytes:
    """The avatar as one GLB file (bytes). See the module docstring for what it holds."""
    avatar.validate()
    if "face" not in avatar.layers:
        raise ValueError("avatar has no 'face' layer; re-create it with `facecast avatar create`")
    b = _Builder()
    aw, ah = avatar.atlas.shape[1], avatar.atlas.shape[0]
    lifted = neutral_vertices(avatar).astype(np.float32)
    lifted[:, 2] += avatar.vertex_pose_dz
    pos = (lifted * _FLIP * IOD_M).astype(np.float32)
    uv = ((avatar.vertex_uv + 0.5) / np.array([aw, ah], np.float32)).astype(np.float32)
    pose_w = np.clip(avatar.vertex_pose_weight, 0.0, 1.0).astype(np.float32)
    joints = np.zeros((len(pos), 4), np.uint16)
    joints[:, 0] = 2          # head
    weights = np.zeros((len(pos), 4), np.float32)
    weights[:, 0], weights[:, 1] = pose_w, 1.0 - pose_w   # (joint 0: root)
    deltas = (vertex_deltas(avatar) * _FLIP * IOD_M).astype(np.float32)
    tris = draw_order(avatar)

    head_prim = {
        "attributes": {"POSITION": b.accessor(pos, "VEC3", _ARRAY_BUFFER, True),
                       "TEXCOORD_0": b.accessor(uv, "VEC2", _ARRAY_BUFFER),
                       "JOINTS_0": b.accessor(joints, "VEC4", _ARRAY_BUFFER),
                       "WEIGHTS_0": b.accessor(weights, "VEC4", _ARRAY_BUFFER)},
        "indices": b.accessor(tris.reshape(-1), "SCALAR", _ELEMENT_ARRAY_BUFFER),
        "material": 0,
        "targets": [{"POSITION": b.accessor(d, "VEC3", _ARRAY_BUFFER, True)} for d in deltas],
    }
    # the photo behind the head: a quad over the photo's pixel edges, textured from the atlas
    corners = np.array([[-0.5, -0.5], [avatar.width - 0.5, -0.5], [avatar.width - 0.5, avatar.height - 0.5],
                        [-0.5, avatar.height - 0.5]], np.float64)
    qxy = _image_to_face(avatar, corners)
    qpos = (np.column_stack([qxy, np.full(4, BACKGROUND_DEPTH)]) * _FLIP * IOD_M).astype(np.float32)
    quv = ((corners + 0.5) / np.array([aw, ah])).astype(np.float32)
    bg_prim = {"attributes": {"POSITION": b.accessor(qpos, "VEC3", _ARRAY_BUFFER, True),
                              "TEXCOORD_0": b.accessor(quv, "VEC2", _ARRAY_BUFFER)},
               "indices": b.accessor(np.array([0, 2, 1, 0, 3, 2], np.uint32), "SCALAR", _ELEMENT_ARRAY_BUFFER),
               "material": 0}
    pivot = (avatar.head_pivot * _FLIP * IOD_M).astype(np.float32)
    ibm = np.stack([np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)])
    ibm[2, :3, 3] = -pivot          # T(-pivot); glTF stores matrices column-major (transposed below)
    ibm_acc = b.accessor(np.ascontiguousarray(ibm.transpose(0, 2, 1)).reshape(3, 16), "MAT4")
    image_view = b.view(_png(avatar.atlas))

    cam = photo_camera(avatar, *render_size)
    gltf = {
        "asset": {"version": "2.0", "generator": "facecast avatar export"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"name": avatar.name, "nodes": [0], "extras": {"facecast": {
            "format": 1, "unit_m": IOD_M, "head_pivot": pivot.tolist(),
            "camera_distance": CAMERA_DISTANCE * IOD_M,
            "mouth": _mouth_rule(avatar),
            "photo_camera": cam, "image_size": [avatar.width, avatar.height],
            "layers": {k: [int(a), int(e)] for k, (a, e) in avatar.layers.items()},
        }}}],
        "nodes": [
            {"name": "avatar", "children": [1, 2, 3]},
            {"name": "background", "mesh": 1},
            {"name": "head_mesh", "mesh": 0, "skin": 0},
            {"name": "root", "children": [4]},
            {"name": "head_pose", "children": [5]},
            {"name": "head", "translation": pivot.tolist()},
        ],
        "skins": [{"name": "head_pose", "joints": [3, 4, 5], "skeleton": 3, "inverseBindMatrices": ibm_acc}],
        "meshes": [
            {"name": "head", "primitives": [head_prim], "weights": [0.0] * len(ARKIT_NAMES),
             "extras": {"targetNames": list(ARKIT_NAMES)}},
            {"name": "background", "primitives": [bg_prim]},
        ],
        "materials": [{"name": "atlas", "doubleSided": True, "extensions": {"KHR_materials_unlit": {}},
                       "pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0,
                                                "roughnessFactor": 1.0}}],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": _LINEAR, "minFilter": _LINEAR, "wrapS": _CLAMP, "wrapT": _CLAMP}],
        "images": [{"bufferView": image_view, "mimeType": "image/png", "name": "atlas"}],
        "accessors": b.accessors, "bufferViews": b.views,
    }
    binary = b.blob.getvalue()
    binary += b"\0" * ((-len(binary)) % 4)
    gltf["buffers"] = [{"byteLength": len(binary)}]
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def _mouth_rule(avatar: Avatar) -> dict:
    """The renderer's mouth rule for clients (``engine.avatar.mouth_rest.mouth_weights``): the
    avatar's ``MouthMap`` (without a calibration: only the press seal), its constants and the
    opening convention it follows."""
    mouth = MouthMap.of(avatar)
    rule = {"aperture_command": None, "aperture_jaw": None} if mouth is None else mouth.to_dict()
    return {**rule, "close_over_jaw": CLOSE_OVER_JAW, "press_seal_gain": PRESS_SEAL_GAIN,
            "opening_terms": dict(OPENING_TERMS)}


def export_gltf(avatar: Avatar, out: str | Path, render_size: tuple[int, int] = (512, 512)) -> Path:
    """Write ``avatar_to_glb(avatar)`` to ``out`` (.glb); returns the path."""
    out = Path(out)
    if out.suffix.lower() != ".glb":
        raise ValueError(f"the glTF export writes binary glTF: name the file *.glb, not {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(avatar_to_glb(avatar, render_size))
    return out


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """(glTF JSON, binary chunk) of a GLB file; raises ValueError on anything else."""
    if len(data) < 20 or data[:4] != b"glTF":
        raise ValueError("not a GLB file (no 'glTF' magic)")
    _, version, total = struct.unpack_from("<4sII", data)
    if version != 2 or total != len(data):
        raise ValueError(f"GLB version {version}, length {total} (file has {len(data)} bytes)")
    jlen, jtype = struct.unpack_from("<I4s", data, 12)
    if jtype != b"JSON":
        raise ValueError("GLB's first chunk is not JSON")
    gltf = json.loads(data[20:20 + jlen])
    off = 20 + jlen
    blen, btype = struct.unpack_from("<I4s", data, off)
    if btype != b"BIN\0":
        raise ValueError("GLB's second chunk is not BIN")
    return gltf, data[off + 8:off + 8 + blen]


def read_accessor(gltf: dict, binary: bytes, index: int) -> np.ndarray:
    """An accessor of a GLB this module wrote, as a NumPy array (count, components)."""
    acc = gltf["accessors"][index]
    view = gltf["bufferViews"][acc["bufferView"]]
    dtype = {_FLOAT: np.float32, _USHORT: np.uint16, _UINT: np.uint32}[acc["componentType"]]
    n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc["type"]]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    return np.frombuffer(binary, dtype, acc["count"] * n, start).reshape(acc["count"], n)
