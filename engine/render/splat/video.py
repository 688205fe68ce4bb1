"""Video frames as fitting targets for the splat avatar, and held-out quality (``avatar fit --video``).

Every frame is tracked once (mediapipe face mesh); facecast's own webcam retargeting turns the
landmarks into the MotionFrame the avatar should show, and a similarity transform from the
frame's face-mesh points to the avatar's rig points under that motion (projected by the splat
camera at the photo's size) aligns the frame to the avatar's view. The mask keeps the face
(the convex hull of the aligned face-mesh points, eroded). Every ``holdout``-th tracked frame is
held out for evaluation: PSNR and SSIM of the warp and splat renders against the aligned frame
inside the mask's bounding box, binned by head yaw (frontal < 10 deg, turned >= 15 and >= 20 deg).

The motion of a target is the retargeting's pose *before* its yaw/pitch/roll clamp
(``WebcamRetargeter.unclamped``): the clamp keeps the live warp inside what it can show, but the
frame shows the whole turn, and the fit must pose the avatar as the frame does. With
``neutral_image`` (the clip's frame the avatar was made from) the retargeting takes that frame as
the neutral (pose and expression) instead of the clip's first second, so pose is measured from
the photo's: a clip that starts turned is then not taken for frontal. (It must be a frame of the
clip, in the clip's pixels: the retargeting's translation and scale are measured in them.)
Each target also keeps its aligned face-mesh landmarks (``Target.landmarks``) for the geometry fit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from engine.motion.space import MotionFrame
from engine.render.splat.camera import view_camera
from engine.render.splat.fit import Target

FACE_POINTS = 468          # mediapipe face mesh without the iris points
MASK_ERODE_PX = 3
FRONTAL_DEG, HALF_TURNED_DEG, TURNED_DEG = 10.0, 15.0, 20.0


@dataclass
class VideoTarget(Target):
    index: int = 0           # frame number in the video
    yaw_deg: float = 0.0


def rig_points(renderer_deformer, motion: MotionFrame, camera) -> np.ndarray:
    """(478, 2) pixel positions (index coordinates) of the rig landmarks under ``motion``."""
    v = renderer_deformer.mesh.posed_vertices(motion)[:478]
    p = camera.to_camera(v)
    return np.stack([camera.fx * p[:, 0] / p[:, 2] + camera.cx - 0.5,
                     camera.fy * p[:, 1] / p[:, 2] + camera.cy - 0.5], 1).astype(np.float32)


def calibrate_on_image(retargeter, tracker, image: np.ndarray, fps: float) -> None:
    """Feed ``image``'s face to a fresh ``WebcamRetargeter`` for its whole calibration window (at
    times before 0), then restart its filter: the image's face becomes the neutral."""
    landmarks = tracker.track(image)
    if landmarks is None:
        raise ValueError("no face found in the neutral frame to calibrate the retargeting on")
    n = int(np.ceil(retargeter.cfg.calibration_s * fps)) + 1
    for k in range(n):
        retargeter.push_landmarks(landmarks, (k - n - 1) / fps)
    if not retargeter.retargeter.calibrated:
        raise RuntimeError("retargeting did not finish calibrating on the neutral frame")
    retargeter.filter.reset()


def video_targets(avatar, frames: list[np.ndarray], fps: float, config, camera_distance: float = 20.0,
                  max_frames: int | None = None, neutral_image: np.ndarray | None = None) -> list[VideoTarget]:
    """Tracked, aligned and masked video frames (frames without a face are skipped)."""
    from engine.avatar.splat_init import init_gaussians
    from engine.render.splat.deform import GaussianDeformer
    from engine.tracking.tracker import FaceTracker
    from engine.tracking.webcam import WebcamRetargeter

    deformer = GaussianDeformer(avatar, avatar.splat if avatar.splat is not None else init_gaussians(avatar, 200))
    cam = view_camera(avatar, avatar.width, avatar.height, camera_distance)
    out = []
    cfg = getattr(config, "webcam", config)
    tracker = FaceTracker(cfg.min_detection_confidence, cfg.min_tracking_confidence)
    with WebcamRetargeter(avatar, config, tracker=tracker) as wr:
        if neutral_image is not None:
            with FaceTracker(cfg.min_detection_confidence, cfg.min_tracking_confidence,
                             static_image_mode=True) as still:
                calibrate_on_image(wr, still, neutral_image, fps)
        for i, rgb in enumerate(frames[:max_frames]):
            lm = tracker.track(rgb)
            if wr.push_landmarks(lm, i / fps) is None or lm is None:
                continue
            motion = wr.unclamped
            dst = rig_points(deformer, motion, cam)
            m, _ = cv2.estimateAffinePartial2D(lm[:FACE_POINTS, :2] - 0.5, dst[:FACE_POINTS], method=cv2.LMEDS)
            if m is None:
                continue
            image = cv2.warpAffine(rgb, m, (avatar.width, avatar.height), flags=cv2.INTER_AREA,
                                   borderMode=cv2.BORDER_REPLICATE)
            hull = cv2.convexHull(np.round(dst[:FACE_POINTS]).astype(np.int32))
            mask = np.zeros((avatar.height, avatar.width), np.uint8)
            cv2.fillConvexPoly(mask, hull, 1)
            mask = cv2.erode(mask, np.ones((2 * MASK_ERODE_PX + 1,) * 2, np.uint8)).astype(bool)
            aligned = ((lm[:FACE_POINTS, :2] - 0.5) @ m[:, :2].T + m[:, 2]).astype(np.float32)
            out.append(VideoTarget(motion, image, mask, landmarks=aligned, index=i,
                                   yaw_deg=float(np.degrees(motion.head_rotation[0]))))
    return out


def split(targets: list[VideoTarget], holdout: int = 5) -> tuple[list[VideoTarget], list[VideoTarget]]:
    """(fit targets, held-out targets): every ``holdout``-th one is held out."""
    held = [t for k, t in enumerate(targets) if k % holdout == holdout - 1]
    return [t for k, t in enumerate(targets) if k % holdout != holdout - 1], held


def _scores(render: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a, b = render[y0:y1, x0:x1], target[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    mse = float(((a.astype(np.float64) - b.astype(np.float64))[m] ** 2).mean())
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))
    ssim = structural_similarity(a, b, channel_axis=2, data_range=255, win_size=min(7, (min(a.shape[:2]) // 2) * 2 - 1))
    return float(psnr), float(ssim)


def evaluate(renderers: dict, held: list[VideoTarget], size: int) -> dict:
    """Per renderer and yaw bin: mean PSNR / SSIM on the held-out frames at ``size`` x ``size``."""
    bins = {"all": lambda y: True, "frontal": lambda y: abs(y) < FRONTAL_DEG,
            "turned15": lambda y: abs(y) >= HALF_TURNED_DEG, "turned": lambda y: abs(y) >= TURNED_DEG}
    scores = {name: {b: [] for b in bins} for name in renderers}
    for t in held:
        target = cv2.resize(t.image, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(t.mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
        if mask.sum() < 16:
            continue
        for name, r in renderers.items():
            s = _scores(r.render(t.motion), target, mask)
            for b, keep in bins.items():
                if keep(t.yaw_deg):
                    scores[name][b].append(s)
    out = {}
    for name, per in scores.items():
        out[name] = {b: ({"psnr_db": round(float(np.mean([s[0] for s in v])), 2),
                          "ssim": round(float(np.mean([s[1] for s in v])), 4), "frames": len(v)}
                         if v else {"frames": 0}) for b, v in per.items()}
    return out


def comparison_sheet(renderers: dict, held: list[VideoTarget], size: int = 192, count: int = 6) -> np.ndarray:
    """RGB sheet: columns = held-out frames (spread over the yaw range); rows = video, then each renderer."""
    if not held:
        raise ValueError("no held-out frames to show")
    order = sorted(held, key=lambda t: t.yaw_deg)
    picks = [order[int(k)] for k in np.linspace(0, len(order) - 1, min(count, len(order)))]
    rows = []
    for name in ["video", *renderers]:
        tiles = []
        for t in picks:
            img = (cv2.resize(t.image, (size, size), interpolation=cv2.INTER_AREA) if name == "video"
                   else renderers[name].render(t.motion))
            img = img.copy()
            cv2.rectangle(img, (0, 0), (size, 20), (0, 0, 0), -1)
            cv2.putText(img, f"{name} {t.yaw_deg:+.0f}deg", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(img)
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def with_splat(avatar, gaussians):
    return dataclasses.replace(avatar, splat=gaussians)
