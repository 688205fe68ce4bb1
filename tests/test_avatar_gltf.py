"""glTF export of the avatar: the GLB loads with an independent reader (pygltflib), carries 52
morph targets named with the ARKit names, and — evaluated the way any glTF client does it (morph
targets + linear blend skinning, the photo camera from the file) — puts every vertex where the
Python warp renderer puts it."""
import subprocess
import sys

import numpy as np
import pygltflib
import pytest

from engine.avatar.gltf import avatar_to_glb, read_accessor, read_glb
from engine.avatar.mouth_rest import MouthMap, mouth_weights
from engine.motion.pose import matrix_from_euler
from engine.motion.space import ARKIT_NAMES, MotionFrame
from engine.render.warp import WarpRenderer

FLIP = np.diag([1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def glb(avatar):
    return avatar_to_glb(avatar, (512, 512))


def test_glb_loads_with_pygltflib_and_names_the_morph_targets(glb, avatar, tmp_path):
    path = tmp_path / "a.glb"
    path.write_bytes(glb)
    g = pygltflib.GLTF2().load(str(path))
    head = [m for m in g.meshes if m.name == "head"][0]
    prim = head.primitives[0]
    assert len(prim.targets) == 52
    assert head.extras["targetNames"] == list(ARKIT_NAMES)
    assert g.accessors[prim.attributes.POSITION].count == len(avatar.vertex_uv)
    assert g.accessors[prim.indices].count == 3 * len(avatar.triangles)
    assert all(g.accessors[t["POSITION"] if isinstance(t, dict) else t.POSITION].count == len(avatar.vertex_uv)
               for t in prim.targets)
    assert len(g.skins) == 1 and len(g.skins[0].joints) == 3
    assert g.images[0].mimeType == "image/png"
    assert "KHR_materials_unlit" in g.extensionsUsed
    # the jaw's morph target moves the chin down (glTF y is up)
    gltf, binary = read_glb(glb)
    jaw = read_accessor(gltf, binary, gltf["meshes"][0]["primitives"][0]["targets"][ARKIT_NAMES.index("jawOpen")]["POSITION"])
    assert jaw[:, 1].min() < -0.005 and jaw[:, 1].max() < 0.002


def evaluate_gltf(glb: bytes, motion: MotionFrame) -> np.ndarray:
    """What a glTF client computes for ``motion`` (morph weights after the file's mouth rule,
    skinned head pose), projected through the file's photo camera: (V, 2) output pixels."""
    gltf, binary = read_glb(glb)
    fc = gltf["scenes"][0]["extras"]["facecast"]
    prim = gltf["meshes"][0]["primitives"][0]
    acc = lambda i: read_accessor(gltf, binary, i).astype(np.float64)
    pos = acc(prim["attributes"]["POSITION"])
    targets = np.stack([acc(t["POSITION"]) for t in prim["targets"]])
    mouth = fc["mouth"]
    w = mouth_weights(motion.blendshapes, MouthMap.from_dict(mouth))
    p = pos + np.tensordot(w, targets, 1)
    # skin: head = T(t) S(s, s, 1) T(pivot) R, root = identity
    unit, pivot = fc["unit_m"], np.array(fc["head_pivot"])
    yaw, pitch, roll = np.clip(motion.head_rotation, -1.2, 1.2)
    r = FLIP @ matrix_from_euler(yaw, pitch, roll) @ FLIP
    tx, ty, tz = motion.head_translation
    s = fc["camera_distance"] / max(fc["camera_distance"] - tz * unit, 1e-3 * unit)
    posed = (p - pivot) @ r.T + pivot
    posed[:, :2] *= s
    posed[:, :2] += np.array([tx, -ty]) * unit
    a = acc(prim["attributes"]["WEIGHTS_0"])[:, :1]
    p = (1 - a) * p + a * posed
    cam = fc["photo_camera"]
    tl, right, down = (np.array(cam[k]) for k in ("top_left", "right", "down"))
    d = p[:, :2] - tl
    u = d @ right / (right @ right)
    v = d @ down / (down @ down)
    return np.stack([u * cam["width"] - 0.5, v * cam["height"] - 0.5], 1)


POSES = {
    "neutral": MotionFrame.neutral(),
    "blink_brows_smile": MotionFrame.from_weights({"eyeBlinkLeft": 1.0, "browInnerUp": 0.7, "mouthSmileLeft": 0.6,
                                                   "mouthSmileRight": 0.6, "eyeLookOutRight": 0.5}),
    "turned": MotionFrame.from_weights({"browOuterUpLeft": 0.5}, yaw=0.35, pitch=-0.15, roll=0.1,
                                       translation=(0.05, -0.03, 0.2)),
    "open_mouth_turned": MotionFrame.from_weights({"jawOpen": 0.7, "mouthFunnel": 0.3}, yaw=-0.2, pitch=0.1),
}


@pytest.mark.parametrize("name", list(POSES))
def test_gltf_vertices_match_the_warp_renderer(glb, avatar, name):
    r = WarpRenderer(avatar, 512, 512, backend="cpu", warmup=False)
    motion = POSES[name]
    want, _ = r.frame_geometry(motion)
    got = evaluate_gltf(glb, motion)
    # the lip-contact correction is not in glTF: it only acts where the lips would cross
    # (closed mouths); everywhere else the file is the renderer's geometry
    lips = np.abs(avatar_lip_vertices(avatar, r, motion))
    err = np.abs(got - want).max(1)
    assert err[~lips].max() < 0.02, f"{name}: max vertex error {err[~lips].max():.4f} px"


def avatar_lip_vertices(avatar, r, motion) -> np.ndarray:
    """Vertices the lip-contact correction moved for this motion (True where it did)."""
    d = r.deformer
    w = mouth_weights(motion.blendshapes, d.mouth)
    linear = (d.neutral + w @ d.deltas).reshape(-1, 3)
    moved = np.abs(d.expression(motion) - linear).max(1) > 1e-6
    return moved[avatar.vertex_anchors].any(1) & (np.abs(avatar.vertex_weights) > 0).any(1)


def test_export_command_writes_a_glb_and_refuses_bad_names(tmp_path):
    out = tmp_path / "default.glb"
    res = subprocess.run([sys.executable, "-m", "engine.cli", "avatar", "export", "assets/default.avatar",
                          "--gltf", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    gltf, _ = read_glb(out.read_bytes())
    assert gltf["meshes"][0]["extras"]["targetNames"][17] == "jawOpen"
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "avatar", "export", "assets/default.avatar",
                          "--gltf", str(tmp_path / "x.gltf")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "*.glb" in bad.stderr
