"""``facecast avatar fit NAME.avatar --video CLIP.mp4``: refine the avatar's Gaussians (colours,
opacities, scales, offsets) against video frames under the motion facecast's webcam retargeting
tracks in them; with ``--geometry`` also the 3D shape (a depth correction per render-mesh vertex,
shared by the warp and the splat renderer) from the head turns in the clip. Reports PSNR/SSIM of
warp and splat on held-out frames (all / frontal / turned) and writes two contact sheets to look
at: held-out frames (video | warp | splat ...) and synthetic yaw -30..+30 deg."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("avatar", help="NAME.avatar (Gaussians initialised from its mesh if it holds none)")
    parser.add_argument("--video", required=True, help="a talking-head clip of the avatar's person")
    parser.add_argument("-o", "--output", default=None, help="avatar to write (default: update NAME.avatar)")
    parser.add_argument("--steps", type=int, default=120, help="fit steps (one frame each)")
    parser.add_argument("--size", type=int, default=96, help="render side while fitting")
    parser.add_argument("--eval-size", type=int, default=256, help="render side of the held-out evaluation")
    parser.add_argument("--max-frames", type=int, default=300, help="frames of the clip to use")
    parser.add_argument("--stride", type=int, default=1,
                        help="use every Nth frame of the clip (fewer, more varied frames)")
    parser.add_argument("--holdout", type=int, default=5, help="every Nth tracked frame is held out")
    parser.add_argument("--geometry", action="store_true",
                        help="also fit the mesh's depth (per vertex) from the clip's head turns; the warp uses it too")
    parser.add_argument("--landmark-weight", type=float, default=None,
                        help="with --geometry: weight of the tracked-landmark reprojection term (0: images only)")
    parser.add_argument("--baseline", action="store_true",
                        help="with --geometry: also run the appearance-only fit and score it beside")
    parser.add_argument("--neutral-frame", type=int, default=None,
                        help="the clip's frame the avatar was made from (-1: the last): the retargeting's neutral "
                             "pose, instead of the clip's first second (for clips that start turned)")
    parser.add_argument("--sheet", default=None, help="contact sheet PNG (default: OUTPUT stem + _fit.png; + _yaw.png)")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from engine.avatar.asset import AvatarError, load_avatar, save_avatar
    from engine.avatar.splat_init import init_gaussians
    from engine.commands.webcam_check import read_video
    from engine.config import load_config
    from engine.render.splat import SplatRenderer
    from engine.render.splat.fit import FitOptions, fit_gaussians, fit_geometry, with_depth
    from engine.render.splat.sheet import renderers_yaw_sheet
    from engine.render.splat.video import comparison_sheet, evaluate, split, video_targets, with_splat
    from engine.render.warp import WarpRenderer

    cfg = load_config(args.config)
    if args.stride < 1 or args.holdout < 2:
        print("facecast avatar fit: error: --stride must be >= 1 and --holdout >= 2", file=sys.stderr)
        return 2
    try:
        avatar = load_avatar(args.avatar)
        frames, fps = read_video(Path(args.video))
    except (AvatarError, ValueError, OSError) as e:
        print(f"facecast avatar fit: error: {e}", file=sys.stderr)
        return 2
    neutral = None
    if args.neutral_frame is not None:
        if not -len(frames) <= args.neutral_frame < len(frames):
            print(f"facecast avatar fit: error: --neutral-frame {args.neutral_frame} outside the clip's "
                  f"{len(frames)} frames", file=sys.stderr)
            return 2
        neutral = frames[args.neutral_frame]
    frames = frames[:args.max_frames][::args.stride]
    start = avatar.splat if avatar.splat is not None else init_gaussians(avatar, cfg.render.splat_gaussians)
    avatar = with_splat(avatar, start)
    try:
        targets = video_targets(avatar, frames, fps / args.stride, cfg, cfg.render.splat_camera_distance,
                                neutral_image=neutral)
    except ValueError as e:
        print(f"facecast avatar fit: error: {e}", file=sys.stderr)
        return 2
    fit_t, held = split(targets, args.holdout)
    if not fit_t or not held:
        print(f"facecast avatar fit: error: only {len(targets)} frames with a tracked face", file=sys.stderr)
        return 2
    yaws = np.array([t.yaw_deg for t in targets])
    print(f"{len(targets)} tracked frames (yaw {yaws.min():+.1f} .. {yaws.max():+.1f} deg): "
          f"{len(fit_t)} to fit, {len(held)} held out")
    opts = FitOptions(size=args.size, steps=args.steps, camera_distance=cfg.render.splat_camera_distance)
    if args.landmark_weight is not None:
        if args.landmark_weight < 0:
            print("facecast avatar fit: error: --landmark-weight must be >= 0", file=sys.stderr)
            return 2
        opts = dataclasses.replace(opts, landmark_weight=args.landmark_weight)
    e = args.eval_size
    renderers = {"warp": WarpRenderer(avatar, e, e, backend="cpu"),
                 "splat_before": SplatRenderer(with_splat(avatar, start), e, e, backend="cpu")}
    result = {}
    if not args.geometry or args.baseline:
        fitted, losses = fit_gaussians(avatar, start, fit_t, opts)
        renderers["splat_fitted"] = SplatRenderer(with_splat(avatar, fitted), e, e, backend="cpu")
        out_avatar = with_splat(avatar, fitted)
        result["loss"] = [losses[0], losses[-1]]
    if args.geometry:
        fitted, losses, depth = fit_geometry(avatar, start, fit_t, opts)
        out_avatar = with_splat(with_depth(avatar, depth), fitted)
        renderers["warp_geometry"] = WarpRenderer(out_avatar, e, e, backend="cpu")
        renderers["splat_geometry"] = SplatRenderer(out_avatar, e, e, backend="cpu")
        result["loss_geometry"] = [losses[0], losses[-1]]
        result["depth"] = {"mean_abs": round(float(np.abs(depth).mean()), 4),
                           "max_abs": round(float(np.abs(depth).max()), 4)}
        print(f"depth correction: mean |dz| {result['depth']['mean_abs']} max {result['depth']['max_abs']} face units")
    scores = evaluate(renderers, held, e)
    for name, per in scores.items():
        print(f"{name:14s} " + "  ".join(f"{b}: {v.get('psnr_db', '-')} dB / SSIM {v.get('ssim', '-')} ({v['frames']})"
                                          for b, v in per.items()))
    out = Path(args.output or args.avatar)
    save_avatar(out_avatar, out)
    sheet_path = Path(args.sheet or out.with_name(out.stem + "_fit.png"))
    shown = {k: r for k, r in renderers.items() if k != "splat_before"}
    sheet = comparison_sheet(shown, held, size=e)
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    yaw_path = sheet_path.with_name(sheet_path.stem + "_yaw.png")
    cv2.imwrite(str(yaw_path), cv2.cvtColor(renderers_yaw_sheet(shown), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}, {sheet_path} and {yaw_path}")
    if args.json:
        print(json.dumps({"frames": len(targets), "fit": len(fit_t), "held_out": len(held),
                          "yaw_deg": [round(float(yaws.min()), 1), round(float(yaws.max()), 1)],
                          "held_out_yaw_deg": [round(t.yaw_deg, 1) for t in held],
                          **result, "loss_first": losses[0], "loss_last": losses[-1], "scores": scores}))
    return 0
