"""``facecast avatar export NAME.avatar --gltf OUT.glb``: the avatar as glTF 2.0 (binary) with the
52 ARKit blendshapes as named morph targets, for client-side rendering (``engine.avatar.gltf``)."""
from __future__ import annotations

import argparse
import sys

from engine.avatar.asset import AvatarError, load_avatar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("avatar", help="the .avatar file to export")
    parser.add_argument("--gltf", required=True, help="where to write the binary glTF (OUT.glb)")
    parser.add_argument("--size", default="512x512",
                        help="output size WxH whose framing the photo camera in the file reproduces (default 512x512)")


def run(args: argparse.Namespace) -> int:
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
