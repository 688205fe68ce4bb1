"""The splat renderer: the Renderer contract, expressions and head pose measured on the image,
the torch reference path against the numba path, stereo parallax, and a Session that renders
with ``[render] renderer = "splat"`` through the same factory as the warp."""
import cv2
import numpy as np
import pytest

from engine.clock import VirtualClock
from engine.config import replace
from engine.motion.generators import create_generator
from engine.motion.space import MotionFrame
from engine.pipeline.render import create_renderer
from engine.render.base import Renderer
from engine.render.splat import SplatRenderer
from engine.session import Session

SIZE = 256


@pytest.fixture(scope="module")
def splat_renderer(avatar):
    return SplatRenderer(avatar, SIZE, SIZE, backend="cpu", gaussians=12000)


def to_out(avatar, pts):
    """Photo pixels -> output pixels of a SIZE x SIZE view (the photo is square)."""
    return (np.asarray(pts, np.float32) + 0.5) * SIZE / avatar.width - 0.5


def mouth_dark_fraction(avatar, img):
    corners = to_out(avatar, avatar.landmarks[[61, 291], :2])
    centre = to_out(avatar, avatar.landmarks[[13, 14], :2]).mean(0)
    half_w = 0.35 * abs(corners[1, 0] - corners[0, 0])
    x0, x1 = int(centre[0] - half_w), int(centre[0] + half_w)
    y0, y1 = int(centre[1] - 0.25 * half_w), int(centre[1] + 0.6 * half_w)
    luma = img[y0:y1, x0:x1].astype(np.float32).mean(2)
    skin = np.median(img[y0 - 2 * int(half_w):y0 - int(half_w), x0:x1].astype(np.float32).mean(2))
    return float((luma < 0.6 * skin).mean())      # darker than the skin above the lip: teeth excluded


def nose_shift(avatar, a, b):
    """Horizontal shift (output px) of the nose patch from image ``a`` to image ``b``."""
    nose = to_out(avatar, avatar.landmarks[1, :2]).astype(int)
    r = 14
    patch = a[nose[1] - r:nose[1] + r, nose[0] - r:nose[0] + r]
    res = cv2.matchTemplate(b, patch, cv2.TM_CCOEFF_NORMED)
    _, _, _, best = cv2.minMaxLoc(res)
    return best[0] + r - nose[0]


def test_contract_and_neutral_looks_like_the_photo(avatar, splat_renderer):
    assert isinstance(splat_renderer, Renderer)
    img = splat_renderer.render(MotionFrame.neutral())
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    photo = cv2.resize(avatar.image, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    mse = ((img.astype(np.float32) - photo) ** 2).mean()
    psnr = 10 * np.log10(255 ** 2 / mse)
    assert psnr > 24, psnr            # blurrier than the photo (unfitted Gaussians), but the photo


def test_jaw_open_opens_the_mouth(avatar, splat_renderer):
    closed = mouth_dark_fraction(avatar, splat_renderer.render(MotionFrame.neutral()))
    opened = mouth_dark_fraction(avatar, splat_renderer.render(MotionFrame.from_weights({"jawOpen": 1.0})))
    assert opened > closed + 0.15, (closed, opened)


def test_yaw_turns_the_head(avatar, splat_renderer):
    rest = splat_renderer.render(MotionFrame.neutral())
    right = nose_shift(avatar, rest, splat_renderer.render(MotionFrame.from_weights(yaw=0.5)))
    left = nose_shift(avatar, rest, splat_renderer.render(MotionFrame.from_weights(yaw=-0.5)))
    assert right > 6 and left < -6, (right, left)          # +yaw: nose toward image right


def test_blink_closes_the_eye(avatar, splat_renderer):
    eye = to_out(avatar, avatar.landmarks[468, :2]).astype(int)    # right iris centre
    def luma(img):
        return float(img[eye[1] - 3:eye[1] + 4, eye[0] - 4:eye[0] + 5].mean())
    # the lid covers the dark iris and the sclera: the eye turns skin-coloured (warp: 93 -> 149)
    assert luma(splat_renderer.render(MotionFrame.from_weights({"eyeBlinkRight": 1.0}))) > luma(
        splat_renderer.render(MotionFrame.neutral())) + 20


def test_torch_reference_path_matches_the_numba_path(avatar):
    motion = MotionFrame.from_weights({"jawOpen": 0.6}, yaw=0.3)
    cpu = SplatRenderer(avatar, 64, 64, backend="cpu", gaussians=2000).render(motion)
    ref = SplatRenderer(avatar, 64, 64, backend="torch", gaussians=2000).render(motion)
    d = np.abs(cpu.astype(int) - ref.astype(int))
    # rounding, plus the odd pixel where float error flips an early-termination decision
    assert (d > 1).mean() < 0.002 and d.max() <= 8, (d.max(), (d > 1).mean())


def test_stereo_pair_has_parallax(avatar):
    motion = MotionFrame.neutral()
    pair = SplatRenderer(avatar, 256, 128, backend="cpu", gaussians=4000, stereo=True, ipd_mm=63.0).render(motion)
    flat = SplatRenderer(avatar, 256, 128, backend="cpu", gaussians=4000, stereo=True, ipd_mm=0.0).render(motion)
    assert pair.shape == (128, 256, 3)
    np.testing.assert_array_equal(flat[:, :128], flat[:, 128:])       # no separation: same picture
    left, right = pair[:, :128], pair[:, 128:]
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 1.0   # two different viewpoints


async def test_a_session_renders_with_the_splat_renderer(config):
    cfg = replace(config, render={"renderer": "splat", "splat_backend": "cpu", "splat_gaussians": 3000},
                  video={"width": 96, "height": 96})
    renderer = create_renderer(cfg)
    assert type(renderer).__name__ == "SplatRenderer"
    s = Session(cfg, mode="assistant", clock=VirtualClock(cfg.video.fps), renderer=renderer,
                generator=create_generator(cfg))
    await s.start()
    try:
        frames = []
        async for f in s.video_frames():
            frames.append(f)
            if len(frames) == 5:
                break
    finally:
        await s.close()
    assert [f.pts for f in frames] == list(range(frames[0].pts, frames[0].pts + 5))
    assert all(f.image.shape == (96, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    assert frames[0].image.std() > 20                       # a picture, not a blank frame


def test_bad_splat_settings_get_clear_errors(avatar, config):
    with pytest.raises(ValueError, match="unknown splat backend"):
        SplatRenderer(avatar, 64, 64, backend="vulkan")
    with pytest.raises(ValueError, match="camera distance"):
        SplatRenderer(avatar, 64, 64, backend="cpu", camera_distance=0.5, gaussians=500)
    from engine.config import ConfigError
    with pytest.raises(ConfigError, match="render.renderer"):
        replace(config, render={"renderer": "nerf"})


async def test_offline_render_writes_an_mp4_with_the_splat_renderer(config, tmp_path):
    """``facecast render``'s library path (engine.offline_render) with renderer = "splat"."""
    import av

    from engine.offline_render import render_to_mp4
    cfg = replace(config, render={"renderer": "splat", "splat_backend": "cpu", "splat_gaussians": 2000},
                  video={"width": 96, "height": 96})
    t = np.arange(int(0.6 * 48000)) / 48000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    summary = await render_to_mp4(cfg, audio, 48000, tmp_path / "splat.mp4", progress=False)
    assert summary["frames"] == 15
    with av.open(str(tmp_path / "splat.mp4")) as c:
        images = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(images) == 15 and images[0].shape == (96, 96, 3) and images[0].std() > 20


def test_the_splat_renderer_leaves_torch_unloaded_on_a_cpu_machine():
    """Like the warp: backend "auto" without a CUDA device renders with numba, torch never imported."""
    import subprocess
    import sys

    import kernels
    if kernels.gsplat_available():
        pytest.skip("a CUDA device with gsplat is present: the GPU path rightly uses torch")
    code = ("import sys\nfrom engine.render.splat import SplatRenderer\nfrom engine.motion.space import MotionFrame\n"
            "r = SplatRenderer('assets/default.avatar', 64, 64, backend='auto', gaussians=500)\n"
            "r.render(MotionFrame.neutral())\nprint(r.backend, 'torch' in sys.modules)")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["cpu", "False"], out.stdout + out.stderr
