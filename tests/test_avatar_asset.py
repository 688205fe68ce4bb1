"""The .avatar format: fields, round trip, clear errors for bad files."""
import io
import json
import zipfile

import numpy as np
import pytest

from engine.avatar.asset import FORMAT_VERSION, AvatarError, load_avatar, save_avatar
from engine.config import ASSETS_DIR

DEFAULT = ASSETS_DIR / "default.avatar"


def test_default_avatar_fields():
    a = load_avatar(DEFAULT)
    assert a.image.dtype == np.uint8 and a.image.ndim == 3 and a.image.shape[2] == 3
    assert a.landmarks.shape == (478, 3) and a.rig_neutral.shape == (478, 3)
    assert a.rig_deltas.shape == (52, 478, 3)
    # face space: origin between the iris centres, unit = inter-ocular distance, eye line on x
    np.testing.assert_allclose((a.rig_neutral[468] + a.rig_neutral[473])[:2] / 2, 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a.rig_neutral[473, :2] - a.rig_neutral[468, :2]), 1, atol=1e-5)
    assert abs(a.rig_neutral[473, 1] - a.rig_neutral[468, 1]) < 1e-5
    assert a.rig_neutral[473, 0] > a.rig_neutral[468, 0]           # subject's left eye is +x
    assert a.rig_neutral[152, 1] > a.rig_neutral[1, 1] > 0          # chin below nose below eyes
    assert a.rig_neutral[1, 2] > a.rig_neutral[234, 2]              # nose tip nearer than the cheek edge
    # the face frame maps the rig back onto the photo landmarks, except where the closed rest
    # moved the lips and the jaw (the photo's lips are parted; the rig's meet)
    moved = np.linalg.norm(a.face_to_image(a.rig_neutral) - a.landmarks[:, :2], axis=1)
    upper_face = a.landmarks[:, 1] < a.landmarks[1, 1]          # above the nose tip
    assert moved[upper_face].max() < 0.05                       # pixels (measured 0.02)
    assert abs(a.rig_neutral[14, 1] - a.rig_neutral[13, 1]) < 0.01   # inner lips meet at rest
    # the mouth calibration: jawOpen → visible opening, monotonic, from closed to fully open
    assert a.aperture_command[0] == 0 and a.aperture_command[-1] == 1
    assert np.all(np.diff(a.aperture_jaw) >= 0) and a.aperture_jaw[0] == 0
    assert 0.2 < a.photo_jaw_open < 0.8     # measured 0.40
    assert (np.abs(a.rig_deltas).reshape(52, -1).max(1) > 0.01).all()  # every blendshape moves something
    assert DEFAULT.stat().st_size < 3e6


def test_round_trip(tmp_path):
    a = load_avatar(DEFAULT)
    p = save_avatar(a, tmp_path / "copy.avatar")
    b = load_avatar(p)
    for k in ("image", "landmarks", "rig_neutral", "rig_deltas", "atlas", "triangles", "vertex_uv",
              "aperture_command", "aperture_jaw"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert b.layers == a.layers and b.photo_jaw_open == a.photo_jaw_open


def test_missing_file(tmp_path):
    with pytest.raises(AvatarError, match="does not exist"):
        load_avatar(tmp_path / "nope.avatar")


def test_corrupt_file(tmp_path):
    p = tmp_path / "bad.avatar"
    p.write_bytes(b"this is not a zip file at all")
    with pytest.raises(AvatarError, match="not a valid .avatar"):
        load_avatar(p)
    good = DEFAULT.read_bytes()
    p.write_bytes(good[: len(good) // 2])   # truncated
    with pytest.raises(AvatarError):
        load_avatar(p)


def _rewrite(src, dst, meta_edit=None, drop=None):
    with zipfile.ZipFile(src) as z:
        meta = json.loads(z.read("meta.json"))
        npz = dict(np.load(io.BytesIO(z.read("arrays.npz"))))
    if meta_edit:
        meta.update(meta_edit)
    for k in drop or ():
        npz.pop(k)
    buf = io.BytesIO()
    np.savez(buf, **npz)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("arrays.npz", buf.getvalue())


def test_wrong_version_and_missing_arrays(tmp_path):
    p = tmp_path / "v.avatar"
    _rewrite(DEFAULT, p, meta_edit={"version": FORMAT_VERSION + 1})
    with pytest.raises(AvatarError, match="version"):
        load_avatar(p)
    _rewrite(DEFAULT, p, drop=["rig_deltas"])
    with pytest.raises(AvatarError, match="rig_deltas"):
        load_avatar(p)
    _rewrite(DEFAULT, p, meta_edit={"format": "something-else"})
    with pytest.raises(AvatarError, match="not a facecast avatar"):
        load_avatar(p)


def test_version_1_loads_without_pose_depth(tmp_path):
    """Format 1 avatars (no vertex_pose_dz) still load and turn as before (offsets 0);
    a format 2 file without the array is refused, naming it."""
    p = tmp_path / "v1.avatar"
    _rewrite(DEFAULT, p, meta_edit={"version": 1}, drop=["vertex_pose_dz"])
    old = load_avatar(p)
    assert old.vertex_pose_dz.shape == (len(old.vertex_uv),) and not old.vertex_pose_dz.any()
    assert load_avatar(DEFAULT).vertex_pose_dz.any()
    _rewrite(DEFAULT, p, drop=["vertex_pose_dz"])
    with pytest.raises(AvatarError, match="vertex_pose_dz"):
        load_avatar(p)
