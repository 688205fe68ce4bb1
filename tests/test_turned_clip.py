"""A clip that starts turned past the webcam clamp and turns to frontal, made by the warp renderer
of the default avatar (its 45 deg turn tracks as ~32 deg, past webcam.max_yaw_deg 25):
``facecast webcam yaw`` reports the turn before the clamp and relative to the camera, and
``video_targets`` measures yaw from the clip's frontal frame (``neutral_image``) with the
unclamped pose, keeping aligned landmarks."""
import json

import numpy as np
import pytest

from engine.avatar.splat_init import init_gaussians
from engine.motion.space import MotionFrame
from engine.render.splat.camera import view_camera
from engine.render.splat.deform import GaussianDeformer
from engine.render.splat.video import FACE_POINTS, rig_points, video_targets, with_splat
from engine.render.warp import WarpRenderer
from video_support import write_mp4

FPS = 10
START_YAW_DEG = 45.0   # rendered; the tracker sees ~32 deg (the 2.5D warp under-turns)
SEEN_DEG = 27.0        # past the 25 deg clamp


@pytest.fixture(scope="module")
def clip(avatar):
    warp = WarpRenderer(avatar, 256, 256, backend="cpu")
    yaws = [START_YAW_DEG] * 12 + list(np.linspace(START_YAW_DEG, 0.0, 8)) + [0.0] * 4
    return [warp.render(MotionFrame.from_weights({}, yaw=float(np.radians(y)))) for y in yaws]


def test_webcam_yaw_reports_the_turn_before_the_clamp(clip, tmp_path, capsys):
    from engine.cli import main
    video = write_mp4(tmp_path / "turned.mp4", clip, FPS)
    assert main(["webcam", "yaw", str(video), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["clips"][0]
    assert row["tracked"] == len(clip)
    # relative to the first second (turned) the head ends ~30 deg the other way: past the clamp
    assert row["tracked_yaw"]["min"] < -SEEN_DEG and row["shown"]["min"] >= -25.01 and row["clamped"] > 0
    # relative to the camera: from past the clamp to ~0
    assert row["absolute"]["max"] > SEEN_DEG and abs(row["absolute"]["min"]) < 5


def test_targets_measure_yaw_from_the_photo_unclamped(avatar, clip, config):
    avatar = with_splat(avatar, init_gaussians(avatar, 300))
    from_clip = video_targets(avatar, clip, FPS, config)
    from_photo = video_targets(avatar, clip, FPS, config, neutral_image=clip[-1])
    assert abs(from_clip[0].yaw_deg) < 3 and from_clip[-1].yaw_deg < -SEEN_DEG   # the clamp (25) is not applied
    assert from_photo[0].yaw_deg > SEEN_DEG and abs(from_photo[-1].yaw_deg) < 3
    # the neutral frame is in the clip's pixels: no spurious head shift at the frontal end
    assert np.abs(from_photo[-1].motion.head_translation).max() < 0.1
    # the aligned landmarks sit on the rig's points under the tracked motion (a few pixels of 512)
    t = from_photo[0]
    cam = view_camera(avatar, avatar.width, avatar.height, 20.0)
    dst = rig_points(GaussianDeformer(avatar, avatar.splat), t.motion, cam)
    assert t.landmarks.shape == (FACE_POINTS, 2)
    assert np.median(np.linalg.norm(t.landmarks - dst[:FACE_POINTS], axis=1)) < 6
