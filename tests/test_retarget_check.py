"""The retargeting hand-check script on a short video of the rendered default avatar."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.config import ASSETS_DIR
from engine.motion.space import MotionFrame

pytestmark = pytest.mark.skipif(not (ASSETS_DIR / "default.avatar").exists(),
                                reason="assets/default.avatar is not built")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from engine.render.warp import WarpRenderer
    renderer = WarpRenderer(ASSETS_DIR / "default.avatar", 256, 256)
    path = tmp_path_factory.mktemp("video") / "talk.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    for i in range(40):  # 1 s neutral, then the jaw opens and closes
        jaw = 0.0 if i < 26 else 0.8 * np.sin(np.pi * (i - 26) / 14)
        writer.write(cv2.cvtColor(renderer.render(MotionFrame.from_weights({"jawOpen": jaw})), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_check_writes_curves_and_frame_sheet(video, tmp_path, capsys):
    from engine.cli import main
    assert main(["webcam", "check", str(video), "-o", str(tmp_path)]) == 0
    curves = cv2.imread(str(tmp_path / "talk_curves.png"))
    sheet = cv2.imread(str(tmp_path / "talk_frames.png"))
    assert curves is not None and curves.shape[0] > 200
    assert sheet is not None and sheet.shape[1] == 512 and sheet.shape[0] >= 256
    assert "tracker+retarget median" in capsys.readouterr().out


def test_check_recovers_the_jaw_of_the_video(video):
    from engine.config import load_config
    from engine.avatar.asset import load_avatar
    from engine.commands.webcam_check import read_video, retarget_video
    frames, fps = read_video(video)
    assert fps == 25 and len(frames) == 40
    motions, _ = retarget_video(frames, fps, load_avatar(ASSETS_DIR / "default.avatar"), load_config())
    jaw = np.array([m["jawOpen"] for m in motions])
    assert jaw[:26].max() < 0.15 and jaw[30:37].max() > 0.3


def test_check_rejects_a_missing_video(tmp_path):
    from engine.commands.webcam_check import read_video
    with pytest.raises(ValueError):
        read_video(tmp_path / "nope.mp4")


def test_check_with_a_file_name_writes_that_file(video, tmp_path, capsys):
    from engine.cli import main
    from engine.commands.webcam_check import read_video
    out = tmp_path / "sub" / "check.mp4"
    assert main(["webcam", "check", str(video), "-o", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "sub" / "check.mp4").is_dir()
    frames, fps = read_video(out)             # a real video: driver | avatar, every frame
    assert len(frames) == 40 and fps == 25 and frames[0].shape[:2] == (256, 512)
    assert (tmp_path / "sub" / "check_curves.png").is_file()
    sheet = tmp_path / "sheet.png"
    assert main(["webcam", "check", str(video), "-o", str(sheet)]) == 0
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] == 512
    assert "wrote" in capsys.readouterr().out
