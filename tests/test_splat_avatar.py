"""The Gaussian avatar: initialisation from the warp mesh, storage inside the .avatar file
(versioned; old files load), and the triangle binding (numba kernel vs NumPy reference)."""
import dataclasses
import json
import zipfile

import numpy as np
import pytest

import kernels
from engine.avatar.asset import AvatarError, load_avatar, save_avatar
from engine.avatar.gaussians import SET, SET_NAMES, GaussianAvatar
from engine.avatar.splat_init import init_gaussians, lattice
from engine.config import ASSETS_DIR
from engine.motion.space import MotionFrame
from engine.render.splat.camera import view_camera
from engine.render.splat.deform import GaussianDeformer


@pytest.fixture(scope="module")
def splat(avatar):
    return init_gaussians(avatar, 6000)


def test_lattice_covers_the_triangle_evenly():
    for level in (1, 2, 5):
        b = lattice(level)
        assert b.shape == (level * level, 3)
        assert np.allclose(b.sum(1), 1) and (b > 0).all()
        assert np.allclose(b.mean(0), 1 / 3, atol=1e-6)     # centroid of an even lattice


def test_init_makes_every_set_with_photo_colours(avatar, splat):
    assert 5000 < len(splat) < 7500
    counts = np.bincount(splat.set_id, minlength=len(SET_NAMES))
    assert (counts > 0).all(), dict(zip(SET_NAMES, counts))
    # face Gaussians take the photo's colours: their mean is the mean of the photo under them
    face = splat.set_id == SET["face"]
    assert np.abs(splat.color[face].mean(0) * 255 - avatar.image[150:350, 180:330].reshape(-1, 3).mean(0)).max() < 25
    # interior layers sit behind the face surface
    assert (splat.offset[splat.set_id == SET["sclera"]] < 0).all()
    assert splat.background.shape == avatar.image.shape


def test_splats_are_stored_in_the_avatar_file_and_old_files_still_load(avatar, splat, tmp_path):
    old = load_avatar(ASSETS_DIR / "default.avatar")
    assert old.splat is None                                # a file without Gaussians loads as before
    with_splat = dataclasses.replace(avatar, splat=splat)
    path = save_avatar(with_splat, tmp_path / "s.avatar")
    back = load_avatar(path)
    for f in ("triangle", "bary", "offset", "rotation", "scale", "color", "opacity", "set_id", "background"):
        np.testing.assert_array_equal(getattr(back.splat, f), getattr(splat, f))
    meta = json.loads(zipfile.ZipFile(path).read("meta.json"))
    assert meta["splat"]["version"] == 1 and meta["splat"]["count"] == len(splat)
    assert meta["version"] == 3                             # the warp format is unchanged


def test_bad_splat_data_is_refused_by_name(avatar, splat, tmp_path):
    path = save_avatar(dataclasses.replace(avatar, splat=splat), tmp_path / "s.avatar")
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
        members = {n: z.read(n) for n in z.namelist()}
    meta["splat"]["version"] = 99
    bad = tmp_path / "bad.avatar"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, json.dumps(meta) if n == "meta.json" else data)
    with pytest.raises(AvatarError, match="splat data version 99"):
        load_avatar(bad)
    broken = dataclasses.replace(splat, triangle=splat.triangle + len(avatar.triangles))
    with pytest.raises(AvatarError, match="triangles that do not exist"):
        save_avatar(dataclasses.replace(avatar, splat=broken), tmp_path / "x.avatar")


@pytest.mark.parametrize("motion", [MotionFrame.neutral(),
                                    MotionFrame.from_weights({"jawOpen": 0.8, "eyeBlinkLeft": 1.0}, yaw=0.4, pitch=-0.1)])
def test_bind_kernel_matches_the_numpy_reference(avatar, splat, motion):
    d = GaussianDeformer(avatar, splat)
    cam = view_camera(avatar, 256, 256, 20.0)
    ref = d.camera_space(motion, cam.rotation, cam.translation, backend="numpy")
    cpu = d.camera_space(motion, cam.rotation, cam.translation, backend="cpu")
    np.testing.assert_allclose(cpu[0], ref[0], atol=1e-4)
    np.testing.assert_allclose(cpu[1], ref[1], atol=1e-6, rtol=1e-3)


def test_gaussians_follow_the_mesh(avatar, splat):
    """Anchors sit on their triangles; jawOpen moves the lower lip's Gaussians down, not the brows'."""
    d = GaussianDeformer(avatar, splat)
    rest, _ = d.world(MotionFrame.neutral())
    opened, _ = d.world(MotionFrame.from_weights({"jawOpen": 1.0}))
    dy = opened[:, 1] - rest[:, 1]
    face = splat.set_id == SET["face"]
    chin = face & (rest[:, 1] > 1.3) & (np.abs(rest[:, 0]) < 0.3)
    brow = face & (rest[:, 1] < -0.2) & (rest[:, 1] > -0.5)
    assert chin.sum() > 20 and brow.sum() > 20
    assert dy[chin].mean() > 0.15 and np.abs(dy[brow]).max() < 0.02


def test_too_few_gaussians_is_a_clear_error(avatar):
    with pytest.raises(ValueError, match="at least 100"):
        init_gaussians(avatar, 10)
    assert isinstance(GaussianAvatar, type)
    with pytest.raises(ValueError, match="bind backend"):
        kernels.bind_gaussians(*[None] * 9, backend="gpu")
