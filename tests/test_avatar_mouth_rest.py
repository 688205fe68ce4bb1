"""The mouth rests closed and opens in proportion to the commanded opening, measured on the
rendered image with the face tracker (as `facecast eval lipsync` measures real mouths); the
b/p/m seal is gradual; the synthesized mouth interior takes the photo's own colours; avatars
from before the closed rest (format 2) still load and render as they did."""
import io
import json
import zipfile

import numpy as np
import pytest
import skimage.color
import skimage.data

from engine.avatar.asset import load_avatar, save_avatar
from engine.avatar.create import create_avatar
from engine.avatar.lip_contact import LipContact
from engine.avatar.mouth_rest import MouthMap, lip_gap, mouth_weights
from engine.config import ASSETS_DIR
from engine.motion.space import INDEX, MotionFrame
from engine.render.calibrate import visible_aperture_curve
from engine.render.warp import WarpRenderer

DEFAULT = ASSETS_DIR / "default.avatar"


@pytest.fixture(scope="module")
def avatar():
    return load_avatar(DEFAULT)


def test_the_visible_gap_grows_in_proportion_to_the_commanded_opening(avatar):
    commands = np.linspace(0.0, 1.0, 11)
    gaps = visible_aperture_curve(avatar, commands)
    assert np.isfinite(gaps).all()
    assert abs(gaps[0]) < 0.005                       # rest: closed (measured -0.0006 face heights)
    assert np.all(np.diff(gaps) > -0.004)              # monotonic within the tracker's jitter
    fit = np.polyfit(commands, gaps, 1)
    r2 = 1 - np.sum((np.polyval(fit, commands) - gaps) ** 2) / np.sum((gaps - gaps.mean()) ** 2)
    assert r2 >= 0.95, (r2, gaps)                      # measured 0.999
    assert gaps[-1] > 0.08                             # wide open is wide (measured 0.118)


def test_the_bilabial_seal_is_gradual(avatar):
    """A growing lip press closes a half-open mouth step by step, not at a threshold."""
    contact = LipContact(avatar.rig_neutral)
    gaps = []
    for press in np.linspace(0.0, 0.5, 11):
        w = np.zeros(52, np.float32)
        w[INDEX["jawOpen"]] = 0.15
        w[INDEX["mouthPressLeft"]] = w[INDEX["mouthPressRight"]] = press
        rig_w = mouth_weights(w, MouthMap.of(avatar))
        expr = contact((avatar.rig_neutral.reshape(-1) + rig_w @ avatar.rig_deltas.reshape(52, -1)).reshape(-1, 3))
        gaps.append(lip_gap(expr))
    gaps = np.array(gaps)
    assert gaps[0] > 0.01 and gaps[-1] < 0.003         # open without press, sealed at the teacher's 0.5
    assert np.all(np.diff(gaps) <= 1e-6)               # closing monotonically
    steps = np.diff(gaps)
    assert (steps < -1e-4).sum() >= 4                  # over several steps (not all-or-nothing)
    assert steps.min() > -0.6 * (gaps[0] - gaps[-1])   # no single jump does most of it


def test_a_black_and_white_photo_gets_a_grey_mouth():
    grey = (skimage.color.rgb2gray(skimage.data.astronaut()) * 255).astype(np.uint8)
    av = create_avatar(np.repeat(grey[..., None], 3, axis=2), "grey")
    extras = av.atlas[:, av.width:].astype(int)          # synthesized layers: cavity, teeth, eyes
    assert (extras.max(-1) - extras.min(-1)).max() <= 2  # no colour the photo does not have
    r = WarpRenderer(av, 256, 256, backend="cpu")
    frame = r.render(MotionFrame.from_weights({"jawOpen": 1.0})).astype(int)
    assert (frame.max(-1) - frame.min(-1)).max() <= 2


def test_a_format_2_avatar_without_calibration_still_loads_and_renders_jaw_as_is(avatar, tmp_path):
    path = save_avatar(avatar, tmp_path / "new.avatar")
    old = tmp_path / "old.avatar"
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
        npz = np.load(io.BytesIO(z.read("arrays.npz")))
        arrays = {k: npz[k] for k in npz.files if not k.startswith("aperture_")}
    meta["version"] = 2
    meta.pop("photo_jaw_open")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with zipfile.ZipFile(old, "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("arrays.npz", buf.getvalue())
    loaded = load_avatar(old)
    assert loaded.aperture_command is None and loaded.photo_jaw_open == 0.0
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = 0.3
    assert mouth_weights(w, None)[INDEX["jawOpen"]] == pytest.approx(0.3)
    frame = WarpRenderer(loaded, 128, 128, backend="cpu").render(MotionFrame.from_weights({"jawOpen": 0.3}))
    assert frame.shape == (128, 128, 3)
