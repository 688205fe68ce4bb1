"""``facecast avatar export NAME.avatar --gltf OUT.glb | --ply OUT.ply``.

``--gltf``: the avatar as glTF 2.0 (binary) with the 52 ARKit blendshapes as named morph
targets, for client-side rendering (``engine.avatar.gltf``).
``--ply``: the avatar's Gaussians (at rest, or posed by ``--jaw-open``/``--yaw``) in the common
3DGS PLY layout for other splat viewers (``engine.render.splat.ply``).
"""
from __future__ import annotations

import argparse
import math
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("avatar", help="the .avatar file to export")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--gltf", help="write the binary glTF (OUT.glb) with ARKit morph targets")
    what.add_argument("--ply", help="write the Gaussians as a 3DGS .ply (initialised from the mesh if it holds none)")
    parser.add_argument("--size", default="512x512",
                        help="glTF: output size WxH whose framing the photo camera in the file reproduces (default 512x512)")
    parser.add_argument("--gaussians", type=int, default=None, help="ply: count when initialising (default: config)")
    parser.add_argument("--jaw-open", type=float, default=0.0, help="ply: pose, jawOpen weight 0..1")
    parser.add_argument("--yaw", type=float, default=0.0, help="ply: pose, head yaw in degrees")


def run(args: argparse.Namespace) -> int:
    return _gltf(args) if args.gltf else _ply(args)


def _gltf(args: argparse.Namespace) -> int:
    from engine.avatar.asset import AvatarError, load_avatar
    from engine.avatar.gltf import export_gltf
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        print(f"facecast avatar export: --size must look like 512x512, got {args.size!r}", file=sys.stderr)
        return 2
    try:
        avatar = load_avatar(args.avatar)
        out = export_gltf(avatar, args.gltf, (w, h))
    except (AvatarError, ValueError, OSError) as e:
        print(f"facecast avatar export: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {len(avatar.vertex_uv)} vertices, "
          f"{len(avatar.triangles)} triangles, 52 ARKit morph targets")
    return 0


def _ply(args: argparse.Namespace) -> int:
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
