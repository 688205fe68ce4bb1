"""``avatar fit --video`` on a clip made here: the warp renderer's frames of the default avatar
(neutral first, for the retargeter's calibration, then talking and turning). Frames are tracked
with the real face mesh, aligned to the avatar's view, and the fit improves the splat on
held-out frames."""
import numpy as np
import pytest

from engine.avatar.splat_init import init_gaussians
from engine.motion.space import MotionFrame
from engine.render.splat import SplatRenderer
from engine.render.splat.fit import FitOptions, fit_gaussians
from engine.render.splat.video import comparison_sheet, evaluate, split, video_targets, with_splat
from engine.render.warp import WarpRenderer
from video_support import write_mp4

FPS = 10


@pytest.fixture(scope="module")
def clip(avatar):
    warp = WarpRenderer(avatar, 320, 320, backend="cpu")
    motions = [MotionFrame.neutral()] * 12
    for k in range(18):
        t = k / 17
        motions.append(MotionFrame.from_weights({"jawOpen": 0.5 + 0.5 * np.sin(7 * t)}, yaw=np.radians(-22 + 44 * t)))
    return [warp.render(m) for m in motions]


@pytest.fixture(scope="module")
def targets(avatar, clip, config):
    return video_targets(with_splat(avatar, init_gaussians(avatar, 3000)), clip, FPS, config)


def test_frames_are_tracked_and_aligned_to_the_avatar_view(avatar, targets):
    assert len(targets) >= 26
    first = targets[0]
    # a neutral frame, aligned, is the avatar's photo inside the face mask
    diff = (first.image.astype(np.float32) - avatar.image.astype(np.float32))[first.mask]
    psnr = 10 * np.log10(255 ** 2 / (diff ** 2).mean())
    assert psnr > 24, psnr
    assert first.mask.mean() > 0.05                         # the face: ~9 % of the photo
    turned = [t.yaw_deg for t in targets if abs(t.yaw_deg) > 10]
    assert min(turned) < -10 and max(turned) > 10           # the tracked motion turns both ways


def test_fit_on_video_frames_improves_held_out_frames(avatar, targets):
    start = init_gaussians(avatar, 3000)
    fit_t, held = split(targets, 4)
    assert len(held) >= 5
    fitted, losses = fit_gaussians(avatar, start, fit_t, FitOptions(size=48, steps=16, progress=False))
    rs = {"before": SplatRenderer(with_splat(avatar, start), 96, 96, backend="cpu"),
          "after": SplatRenderer(with_splat(avatar, fitted), 96, 96, backend="cpu")}
    scores = evaluate(rs, held, 96)
    assert scores["after"]["all"]["psnr_db"] > scores["before"]["all"]["psnr_db"] + 0.2, scores
    sheet = comparison_sheet(rs, held, size=96, count=3)
    assert sheet.shape == (3 * 96, 3 * 96, 3)


def test_avatar_fit_command_writes_the_avatar_and_a_sheet(avatar, clip, tmp_path, capsys):
    import json

    import cv2

    from engine.avatar.asset import load_avatar
    from engine.cli import main
    from engine.config import ASSETS_DIR
    video = write_mp4(tmp_path / "clip.mp4", clip, FPS)
    out = tmp_path / "fitted.avatar"
    assert main(["avatar", "fit", str(ASSETS_DIR / "default.avatar"), "--video", str(video), "-o", str(out),
                 "--steps", "3", "--size", "32", "--eval-size", "64", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["held_out"] >= 4 and set(scores["scores"]) == {"warp", "splat_before", "splat_fitted"}
    assert load_avatar(out).splat is not None
    assert cv2.imread(str(tmp_path / "fitted_fit.png")) is not None


def test_avatar_fit_geometry_command_scores_both_fits_and_writes_the_sheets(clip, tmp_path, capsys):
    import json

    import cv2

    from engine.avatar.asset import load_avatar
    from engine.cli import main
    from engine.config import ASSETS_DIR
    video = write_mp4(tmp_path / "clip.mp4", clip, FPS)
    out = tmp_path / "geo.avatar"
    assert main(["avatar", "fit", str(ASSETS_DIR / "default.avatar"), "--video", str(video), "-o", str(out),
                 "--steps", "3", "--size", "32", "--eval-size", "64", "--geometry", "--baseline",
                 "--neutral-frame", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["scores"]) == {"warp", "splat_before", "splat_fitted", "warp_geometry", "splat_geometry"}
    assert result["depth"]["max_abs"] > 0                          # the mesh moved
    saved, original = load_avatar(out), load_avatar(ASSETS_DIR / "default.avatar")
    moved = saved.vertex_offsets[:, 2] - original.vertex_offsets[:, 2]
    assert abs(np.abs(moved).max() - result["depth"]["max_abs"]) < 1e-3   # stored in the mesh, for both renderers
    np.testing.assert_array_equal(saved.vertex_offsets[:, :2], original.vertex_offsets[:, :2])
    assert cv2.imread(str(tmp_path / "geo_fit.png")) is not None
    assert cv2.imread(str(tmp_path / "geo_fit_yaw.png")) is not None
    assert main(["avatar", "fit", str(out), "--video", str(video), "--neutral-frame", "999"]) == 2
