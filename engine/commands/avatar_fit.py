"""``facecast avatar fit NAME.avatar --video CLIP.mp4``: refine the avatar's Gaussians (colours,
opacities, scales, offsets) against video frames under the motion facecast's webcam retargeting
tracks in them; report PSNR/SSIM of warp and splat on held-out frames (frontal / turned) and
write a contact sheet (video | warp | splat) to look at."""
from __future__ import annotations

import argparse
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
    parser.add_argument("--holdout", type=int, default=5, help="every Nth tracked frame is held out")
    parser.add_argument("--sheet", default=None, help="contact sheet PNG (default: OUTPUT stem + _fit.png)")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    import cv2

    from engine.avatar.asset import AvatarError, load_avatar, save_avatar
    from engine.avatar.splat_init import init_gaussians
    from engine.commands.webcam_check import read_video
    from engine.config import load_config
    from engine.render.splat import SplatRenderer
    from engine.render.splat.fit import FitOptions, fit_gaussians
    from engine.render.splat.video import comparison_sheet, evaluate, split, video_targets, with_splat
    from engine.render.warp import WarpRenderer

    cfg = load_config(args.config)
    try:
        avatar = load_avatar(args.avatar)
        frames, fps = read_video(Path(args.video))
    except (AvatarError, ValueError, OSError) as e:
        print(f"facecast avatar fit: error: {e}", file=sys.stderr)
        return 2
    start = avatar.splat if avatar.splat is not None else init_gaussians(avatar, cfg.render.splat_gaussians)
    avatar = with_splat(avatar, start)
    targets = video_targets(avatar, frames, fps, cfg, cfg.render.splat_camera_distance, args.max_frames)
    fit_t, held = split(targets, args.holdout)
    if not fit_t or not held:
        print(f"facecast avatar fit: error: only {len(targets)} frames with a tracked face", file=sys.stderr)
        return 2
    print(f"{len(targets)} tracked frames: {len(fit_t)} to fit, {len(held)} held out")
    fitted, losses = fit_gaussians(avatar, start, fit_t, FitOptions(
        size=args.size, steps=args.steps, camera_distance=cfg.render.splat_camera_distance))
    e = args.eval_size
    renderers = {"warp": WarpRenderer(avatar, e, e, backend="cpu"),
                 "splat_before": SplatRenderer(with_splat(avatar, start), e, e, backend="cpu"),
                 "splat_fitted": SplatRenderer(with_splat(avatar, fitted), e, e, backend="cpu")}
    scores = evaluate(renderers, held, e)
    for name, per in scores.items():
        print(f"{name:13s} " + "  ".join(f"{b}: {v.get('psnr_db', '-')} dB / SSIM {v.get('ssim', '-')} ({v['frames']})"
                                         for b, v in per.items()))
    out = Path(args.output or args.avatar)
    save_avatar(with_splat(avatar, fitted), out)
    sheet_path = Path(args.sheet or out.with_name(out.stem + "_fit.png"))
    sheet = comparison_sheet({k: renderers[k] for k in ("warp", "splat_fitted")}, held, size=e)
    cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {out} and {sheet_path}; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    if args.json:
        print(json.dumps({"frames": len(targets), "fit": len(fit_t), "held_out": len(held),
                          "loss_first": losses[0], "loss_last": losses[-1], "scores": scores}))
    return 0
