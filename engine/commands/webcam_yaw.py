"""``facecast webcam yaw VIDEO... [--json]``: how far the head turns in each clip, as facecast's
own webcam retargeting tracks it (to find footage with head turns for ``avatar fit --video``).

Every frame (or every ``--stride``-th) is tracked with the face mesh and pushed through
``WebcamRetargeter``. Per clip, in degrees:
* ``shown``: the yaw the retargeting shows (filtered, clamped to ``webcam.max_yaw_deg``);
* ``tracked``: the same before the clamp (``WebcamRetargeter.unclamped``), relative to the
  pose held while calibrating (the first ``calibration_s``), which is what ``avatar fit`` uses;
* ``absolute``: the unfiltered head yaw relative to the camera (``zero_pose_at_calibration``
  off), so a clip that starts turned is not mistaken for frontal.
Also the share of tracked frames with |tracked yaw| >= 10/15/20/25 deg and how many the clamp cut.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

TURN_THRESHOLDS_DEG = (10.0, 15.0, 20.0, 25.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", help="video files")
    p.add_argument("--avatar", default=None, help="avatar whose rig is fitted (default: [render].avatar)")
    p.add_argument("--stride", type=int, default=1, help="track every Nth frame (times stay the video's)")
    p.add_argument("--max-frames", type=int, default=None, help="frames of each clip to read at most")
    p.add_argument("--json", action="store_true", help="one JSON object on the last stdout line")


def _stats(deg: np.ndarray) -> dict:
    if not len(deg):
        return {}
    return {"min": round(float(deg.min()), 1), "p5": round(float(np.percentile(deg, 5)), 1),
            "median": round(float(np.median(deg)), 1), "p95": round(float(np.percentile(deg, 95)), 1),
            "max": round(float(deg.max()), 1)}


def survey(path: Path, avatar, config, stride: int = 1, max_frames: int | None = None) -> dict:
    """Yaw statistics of one clip (see the module docstring)."""
    from engine.commands.webcam_check import read_video
    from engine.tracking.retarget import Retargeter
    from engine.tracking.webcam import WebcamRetargeter

    frames, fps = read_video(path)
    frames = frames[:max_frames]
    absolute = Retargeter(avatar, dataclasses.replace(config.webcam, zero_pose_at_calibration=False))
    shown, tracked, absolute_yaw = [], [], []
    with WebcamRetargeter(avatar, config) as wr:
        for i in range(0, len(frames), stride):
            lm = wr.tracker.track(frames[i])
            motion = wr.push_landmarks(lm, i / fps)
            if lm is None or motion is None:
                continue
            shown.append(motion.head_rotation[0])
            tracked.append(wr.unclamped.head_rotation[0])
            absolute_yaw.append(absolute.retarget(lm, i / fps).head_rotation[0])
    shown, tracked, absolute_yaw = (np.degrees(np.array(a, np.float64)) for a in (shown, tracked, absolute_yaw))
    n = len(tracked)
    return {"clip": str(path), "fps": round(fps, 2), "frames": len(frames), "tracked": n,
            "shown": _stats(shown), "tracked_yaw": _stats(tracked), "absolute": _stats(absolute_yaw),
            "turned_share": {f">={t:g}": round(float((np.abs(tracked) >= t).mean()), 3) if n else 0.0
                             for t in TURN_THRESHOLDS_DEG},
            "clamped": int((np.abs(tracked) > config.webcam.max_yaw_deg + 1e-6).sum())}


def run(args: argparse.Namespace) -> int:
    from engine.avatar.asset import AvatarError, load_avatar
    from engine.config import load_config

    config = load_config(args.config)
    if args.stride < 1:
        print("facecast webcam yaw: error: --stride must be >= 1")
        return 2
    try:
        avatar = load_avatar(config.resolve_path(args.avatar or config.render.avatar))
    except (AvatarError, OSError) as e:
        print(f"facecast webcam yaw: error: {e}")
        return 2
    rows = []
    for v in args.videos:
        try:
            r = survey(Path(v), avatar, config, args.stride, args.max_frames)
        except (ValueError, OSError) as e:
            print(f"facecast webcam yaw: error: {v}: {e}")
            return 2
        rows.append(r)
        t, a = r["tracked_yaw"], r["absolute"]
        print(f"{Path(v).name:28s} {r['tracked']:5d}/{r['frames']:<5d} tracked yaw "
              f"{t.get('min', float('nan')):+6.1f} .. {t.get('max', float('nan')):+6.1f}  absolute "
              f"{a.get('min', float('nan')):+6.1f} .. {a.get('max', float('nan')):+6.1f}  "
              f"|yaw|>=15: {r['turned_share']['>=15']:.0%}  clamped {r['clamped']}", flush=True)
    if args.json:
        print(json.dumps({"clips": rows, "max_yaw_deg": config.webcam.max_yaw_deg}))
    return 0
