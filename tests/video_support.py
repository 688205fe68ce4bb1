"""Test helper: write RGB frames to an mp4 (OpenCV, mp4v) for commands that read a video."""
from pathlib import Path

import numpy as np


def write_mp4(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path
