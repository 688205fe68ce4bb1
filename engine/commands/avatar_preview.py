"""``facecast avatar preview NAME.avatar -o sheet.png``: a labelled contact sheet of expressions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("avatar", help="NAME.avatar")
    parser.add_argument("-o", "--output", required=True, help="PNG contact sheet to write")
    parser.add_argument("--size", type=int, default=512, help="render size (square)")
    parser.add_argument("--full-frame", action="store_true", help="tiles show the whole frame, not the face")
    parser.add_argument("--backend", default="auto", help="kernel backend: auto, numpy, cpu, triton")
    parser.add_argument("--splat", action="store_true",
                        help="instead: warp vs Gaussian splat at yaw -30..+30 deg (engine.render.splat.sheet)")


def run(args: argparse.Namespace) -> int:
    import cv2

    from engine.avatar.asset import AvatarError, load_avatar
    from engine.render.preview import contact_sheet, sheet_motions
    from engine.render.warp import WarpRenderer

    try:
        avatar = load_avatar(args.avatar)
        renderer = WarpRenderer(avatar, args.size, args.size, backend=args.backend)
        if args.splat:
            from engine.render.splat import SplatRenderer
            from engine.render.splat.sheet import yaw_sheet
            splat = SplatRenderer(avatar, args.size, args.size, backend="auto")
    except (AvatarError, ValueError, RuntimeError) as e:
        print(f"facecast avatar preview: error: {e}", file=sys.stderr)
        return 2
    if args.splat:
        sheet = yaw_sheet(renderer, splat)
    else:
        sheet = contact_sheet(renderer, sheet_motions(), crop_face=not args.full_frame)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        print(f"facecast avatar preview: error: could not write {out}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0
