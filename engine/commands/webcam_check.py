"""Hand check of webcam retargeting on a video: curves + avatar frames next to the driver.

    facecast webcam check VIDEO [--avatar A.avatar] [-o OUT_DIR | -o OUT.mp4 | -o OUT.png]

Runs ``WebcamRetargeter`` over every frame of VIDEO (read with OpenCV, timed by its
fps) and writes
* ``OUT_DIR/<video>_curves.png``: jawOpen, eyeBlinkLeft/Right, mouthSmile, yaw, pitch,
  roll over time (gaps where no face was tracked);
* ``OUT_DIR/<video>_frames.png``: the driving frame next to the avatar rendered from the
  recovered motion, at telling moments (neutral, widest mouth, blink, extreme yaw/pitch).
``-o`` naming a file writes that file instead of a folder: ``OUT.mp4`` (``.mkv``, ``.mov``,
``.webm`` too) is every driving frame next to the avatar driven by it (H.264 at the video's
fps), ``OUT.png`` the frame sheet; the curves go beside it as ``OUT_curves.png``. It then prints the tracker + fit time per frame. Look at both PNGs: the avatar should open
its mouth when the person does, blink when they blink and turn the same way.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from engine.config import load_config
from engine.motion.space import INDEX, MotionFrame

CURVES = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "mouthFunnel",
          "mouthPucker", "browInnerUp")
TILE = 256


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise ValueError(f"video {path} has no frames")
    return frames, float(fps)


def retarget_video(frames: list[np.ndarray], fps: float, avatar, config):
    """Per-frame motions (None where no face yet) and tracker+fit seconds per frame."""
    from tqdm import tqdm

    from engine.tracking.webcam import WebcamRetargeter

    motions, seconds = [], []
    with WebcamRetargeter(avatar, config) as wr:
        for i, rgb in enumerate(tqdm(frames, desc="retarget", unit="frame")):
            t0 = time.perf_counter()
            motions.append(wr.push_frame(rgb, i / fps))
            seconds.append(time.perf_counter() - t0)
    return motions, np.array(seconds)


def plot_curves(motions: list[MotionFrame | None], fps: float, title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(motions)) / fps
    vec = np.array([m.to_vector() if m is not None else np.full(58, np.nan) for m in motions])
    fig, (a, b) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    for name in CURVES:
        a.plot(t, vec[:, INDEX[name]], label=name, lw=1.2)
    a.set_ylim(-0.02, 1.02)
    a.set_ylabel("weight")
    a.legend(loc="upper right", ncol=3, fontsize=8)
    a.set_title(title)
    for k, name in enumerate(("yaw", "pitch", "roll")):
        b.plot(t, np.degrees(vec[:, 52 + k]), label=name, lw=1.2)
    b.set_ylabel("degrees")
    b.set_xlabel("seconds")
    b.legend(loc="upper right", fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def telling_moments(motions: list[MotionFrame | None], fps: float) -> list[tuple[str, int]]:
    ok = [i for i, m in enumerate(motions) if m is not None]
    if not ok:
        return []
    vec = {i: motions[i].to_vector() for i in ok}
    blink = lambda i: vec[i][INDEX["eyeBlinkLeft"]] + vec[i][INDEX["eyeBlinkRight"]]  # noqa: E731
    picks = [("neutral (calibration)", min(ok[-1], ok[0] + int(fps)))]
    picks.append(("widest mouth", max(ok, key=lambda i: vec[i][INDEX["jawOpen"]])))
    picks.append(("blink", max(ok, key=blink)))
    picks.append(("yaw min", min(ok, key=lambda i: vec[i][52])))
    picks.append(("yaw max", max(ok, key=lambda i: vec[i][52])))
    picks.append(("pitch max", max(ok, key=lambda i: abs(vec[i][53]))))
    return picks


def _label(img: np.ndarray, *lines: str) -> np.ndarray:
    img = img.copy()
    for k, text in enumerate(lines):
        for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(img, text, (6, 18 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, thick, cv2.LINE_AA)
    return img


def frame_sheet(frames, motions, picks, renderer, path: Path) -> None:
    rows = []
    for name, i in picks:
        m = motions[i]
        drive = cv2.resize(frames[i], (TILE, TILE), interpolation=cv2.INTER_AREA)
        avatar = cv2.resize(renderer.render(m), (TILE, TILE), interpolation=cv2.INTER_AREA)
        shapes = (f"jaw {m['jawOpen']:.2f} blink {m['eyeBlinkLeft']:.2f}/{m['eyeBlinkRight']:.2f} "
                  f"smile {m['mouthSmileLeft']:.2f}")
        yaw, pitch, roll = np.degrees(m.head_rotation)
        pose = f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}"
        rows.append(np.hstack([_label(drive, f"{name} #{i}"), _label(avatar, shapes, pose)]))
    sheet = np.vstack(rows) if rows else np.zeros((TILE, 2 * TILE, 3), np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")


def side_by_side_video(frames, motions, fps: float, renderer, path: Path) -> None:
    """Every driving frame next to the avatar rendered from its motion (neutral where no face
    was tracked yet), H.264 yuv420p."""
    import fractions

    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fractions.Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264" if path.suffix != ".webm" else "libvpx", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 2 * TILE, TILE, "yuv420p"
        for rgb, m in zip(frames, motions):
            drive = cv2.resize(rgb, (TILE, TILE), interpolation=cv2.INTER_AREA)
            avatar = cv2.resize(renderer.render(m if m is not None else MotionFrame.neutral()), (TILE, TILE),
                                interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.hstack([drive, avatar])), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", type=Path)
    p.add_argument("--avatar", default=None, help="avatar file (default: [render].avatar of the config)")
    p.add_argument("-o", "--out", type=Path, default=Path("retarget_check"),
                   help="a folder (curves + frame sheet PNGs), or a file: OUT.mp4 (side-by-side video) or OUT.png")
    p.add_argument("--max-frames", type=int, default=0, help="only the first N frames (0 = all)")
    p.add_argument("--resize", default="", help="resize frames to WxH first (e.g. 640x480, for timing)")


def run(args: argparse.Namespace) -> int:
    from engine.avatar.asset import load_avatar
    from engine.render.warp import WarpRenderer

    config = load_config(args.config)
    avatar = load_avatar(config.resolve_path(args.avatar or config.render.avatar))
    frames, fps = read_video(args.video)
    if args.max_frames:
        frames = frames[:args.max_frames]
    if args.resize:
        w, h = (int(v) for v in args.resize.lower().split("x"))
        frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    motions, seconds = retarget_video(frames, fps, avatar, config)
    stem = args.video.stem
    found = sum(m is not None for m in motions)
    title = f"{stem}: {found}/{len(motions)} frames with motion"
    renderer = WarpRenderer(avatar, 512, 512)
    suffix = args.out.suffix.lower()
    if suffix in VIDEO_SUFFIXES or suffix == ".png":
        if args.out.is_dir():
            print(f"facecast webcam check: {args.out} is a folder; name a file, or a folder without a suffix",
                  file=sys.stderr)
            return 2
        curves = args.out.with_name(args.out.stem + "_curves.png")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            frame_sheet(frames, motions, telling_moments(motions, fps), renderer, args.out)
        else:
            side_by_side_video(frames, motions, fps, renderer, args.out)
        plot_curves(motions, fps, title, curves)
        wrote = f"{args.out}, {curves.name}"
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        plot_curves(motions, fps, title, args.out / f"{stem}_curves.png")
        frame_sheet(frames, motions, telling_moments(motions, fps), renderer, args.out / f"{stem}_frames.png")
        wrote = f"{args.out}/{stem}_curves.png, {stem}_frames.png"
    ms = seconds[min(5, len(seconds) - 1):] * 1e3
    print(f"{stem}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} @ {fps:g} fps; "
          f"tracker+retarget median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms; "
          f"wrote {wrote}")
    return 0
