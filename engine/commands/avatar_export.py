"""``facecast avatar export NAME.avatar --ply OUT.ply``: the avatar's Gaussians (at rest, or posed
by ``--jaw-open``/``--yaw``) in the common 3DGS PLY layout for other splat viewers."""
from __future__ import annotations

import argparse
import math
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("avatar", help="NAME.avatar (Gaussians initialised from its mesh if it holds none)")
    parser.add_argument("--ply", required=True, help="where to write the .ply")
    parser.add_argument("--gaussians", type=int, default=None, help="count when initialising (default: config)")
    parser.add_argument("--jaw-open", type=float, default=0.0, help="pose: jawOpen weight 0..1")
    parser.add_argument("--yaw", type=float, default=0.0, help="pose: head yaw in degrees")


def run(args: argparse.Namespace) -> int:
    from engine.avatar.asset import AvatarError, load_avatar
    from engine.config import load_config
    from engine.motion.space import MotionFrame
    from engine.render.splat import SplatRenderer
    from engine.render.splat.ply import gaussians_for_export, write_ply

    cfg = load_config(args.config)
    try:
        r = SplatRenderer(load_avatar(args.avatar), 64, 64, backend="cpu",
                          gaussians=args.gaussians or cfg.render.splat_gaussians, warmup=False)
        motion = MotionFrame.from_weights({"jawOpen": args.jaw_open}, yaw=math.radians(args.yaw))
        path = write_ply(args.ply, *gaussians_for_export(r, motion))
    except (AvatarError, ValueError, OSError) as e:
        print(f"facecast avatar export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(r.gaussians)} Gaussians ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
