"""The warp renderer on the default avatar: fidelity at neutral, stability, sizes, motion."""
import numpy as np
import pytest

import kernels

from engine.config import load_config, replace
from engine.motion.space import MotionFrame
from engine.render.base import Renderer
from engine.render.warp import WarpRenderer


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def face_box(avatar, margin=10):
    lo = np.floor(avatar.landmarks[:, :2].min(0)).astype(int) - margin
    hi = np.ceil(avatar.landmarks[:, :2].max(0)).astype(int) + margin
    return slice(max(lo[1], 0), hi[1]), slice(max(lo[0], 0), hi[0])


def region(avatar, idx, margin=4):
    p = avatar.landmarks[list(idx), :2]
    lo, hi = np.floor(p.min(0)).astype(int) - margin, np.ceil(p.max(0)).astype(int) + margin
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def test_is_a_renderer(renderer):
    assert isinstance(renderer, Renderer)


def test_neutral_reproduces_photo_above_the_closed_mouth(renderer, avatar):
    """The rig rests with closed lips (the photo's lips are parted): the face above the mouth is the
    photo (measured 42.5 dB, as before the closed rest), the lower face moves with the closing jaw."""
    frame = renderer.render(MotionFrame.neutral())
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    ys, xs = face_box(avatar)
    nose = int(avatar.landmarks[2, 1])          # below the nose
    assert psnr(frame[ys.start:nose, xs], avatar.image[ys.start:nose, xs]) >= 38.0
    mouth = region(avatar, (61, 291, 0, 17, 152), margin=6)
    masked, photo = frame.copy(), avatar.image.copy()
    masked[mouth], photo[mouth] = 0, 0
    assert psnr(masked, photo) >= 35.0          # measured 37.7 over the whole frame


def test_static_motion_does_not_flicker(renderer):
    m = MotionFrame.from_weights({"jawOpen": 0.4, "mouthSmileLeft": 0.3}, yaw=0.1, pitch=-0.05)
    first = renderer.render(m)
    for _ in range(3):
        np.testing.assert_array_equal(renderer.render(m.copy()), first)


@pytest.mark.parametrize("size", [(256, 256), (1024, 1024), (640, 480)])
def test_any_output_size(avatar, size):
    w, h = size
    r = WarpRenderer(avatar, w, h, backend="cpu")
    frame = r.render(MotionFrame.from_weights({"jawOpen": 0.5}))
    assert frame.shape == (h, w, 3) and frame.flags.c_contiguous


def test_jaw_opens_dark_mouth(renderer, avatar):
    ys, xs = region(avatar, (61, 291, 17, 0))      # the mouth (the rest is closed)
    closed = renderer.render(MotionFrame.neutral())[ys, xs].astype(float)
    opened = renderer.render(MotionFrame.from_weights({"jawOpen": 1.0}))[ys, xs].astype(float)
    dark = lambda im: (im.mean(2) < 60).mean()  # noqa: E731
    assert dark(opened) > dark(closed) + 0.04   # the cavity appears (measured 0.068 vs 0.003)


def test_blink_covers_the_eye(renderer, avatar):
    ys, xs = region(avatar, (33, 133, 159, 145), margin=1)
    open_ = renderer.render(MotionFrame.neutral())[ys, xs].astype(float)
    shut = renderer.render(MotionFrame.from_weights({"eyeBlinkRight": 1.0}))[ys, xs].astype(float)
    # the dark iris/pupil disappears behind the lid: the eye region gets brighter and flatter
    assert shut.mean() > open_.mean() + 5
    assert (shut.mean(2) < 70).mean() < 0.5 * (open_.mean(2) < 70).mean()


def test_yaw_moves_face_not_background(renderer, avatar):
    neutral = renderer.render(MotionFrame.neutral())
    turned = renderer.render(MotionFrame.from_weights(yaw=0.35))
    ys, xs = face_box(avatar)
    assert np.abs(turned[ys, xs].astype(int) - neutral[ys, xs]).mean() > 5
    np.testing.assert_array_equal(turned[:8, :8], neutral[:8, :8])     # far background is static
    np.testing.assert_array_equal(turned[-8:, -8:], neutral[-8:, -8:])


def test_bad_motion_is_refused(renderer):
    m = MotionFrame.neutral()
    m.blendshapes[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        renderer.render(m)


def test_from_config():
    cfg = replace(load_config(), video={"width": 256, "height": 192}, render={"backend": "cpu"})
    r = WarpRenderer.from_config(cfg)
    assert (r.width, r.height) == (256, 192)
    rgb = r.render(MotionFrame.neutral())
    assert rgb.shape == (192, 256, 3)


def test_numpy_backend_matches_cpu(avatar):
    m = MotionFrame.from_weights({"jawOpen": 0.7, "eyeBlinkLeft": 0.5}, yaw=0.2)
    a = WarpRenderer(avatar, 128, 128, backend="numpy").render(m)
    b = WarpRenderer(avatar, 128, 128, backend="cpu").render(m)
    assert np.abs(a.astype(int) - b).max() <= 8 and np.abs(a.astype(int) - b).mean() < 0.5


def layer_pixels(renderer, motion):
    """Pixels whose backward map samples the synthesized layers (eyeballs, mouth interior)."""
    xy, tris = renderer.frame_geometry(motion)
    m = renderer.base_map.copy()
    kernels.rasterize_backward_map(m, xy, renderer.uv, tris, backend="cpu")
    return m[..., 0] >= renderer.avatar.width - 0.5


def test_full_blink_hides_the_eyeballs(renderer):
    open_ = layer_pixels(renderer, MotionFrame.neutral())
    shut = layer_pixels(renderer, MotionFrame.from_weights({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))
    assert open_.sum() > 100          # eyes (and the photo's parted lips) show layers at neutral
    h = renderer.height
    eye_rows = slice(0, int(h * 0.5))   # the astronaut's eyes are in the upper half
    assert shut[eye_rows].sum() == 0


def test_gaze_moves_the_iris(renderer, avatar):
    ys, xs = region(avatar, (362, 263, 386, 374), margin=2)   # subject's left eye
    base = renderer.render(MotionFrame.neutral())[ys, xs].mean(2)
    look = renderer.render(MotionFrame.from_weights({"eyeLookOutLeft": 1.0}))[ys, xs].mean(2)
    cols = lambda im: np.argmin(im.mean(0))  # noqa: E731  darkest column ~ the pupil
    assert cols(look) > cols(base)    # looking out = toward image right for the left eye


def test_random_valid_motions_render_cleanly(avatar):
    r = WarpRenderer(avatar, 160, 160, backend="cpu")
    rng = np.random.default_rng(7)
    for _ in range(12):
        m = MotionFrame(rng.random(52).astype(np.float32),
                        rng.uniform(-0.6, 0.6, 3).astype(np.float32),
                        rng.uniform(-0.4, 0.4, 3).astype(np.float32))
        frame = r.render(m)
        assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8
        assert 20 < frame.mean() < 235        # a picture, not a blank or black frame
