"""``facecast avatar create PHOTO -o NAME.avatar``: make an avatar from a portrait photo.

The shipped default avatar is made with
``facecast avatar create skimage:astronaut -o assets/default.avatar``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from engine.avatar.asset import save_avatar
from engine.config import load_config, replace

ASTRONAUT = "skimage:astronaut"


def _astronaut():
    import skimage.data
    return skimage.data.astronaut()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", help="portrait photo (JPEG/PNG/...), one frontal face; "
                        f"'{ASTRONAUT}' uses scikit-image's astronaut (the default avatar)")
    parser.add_argument("-o", "--output", required=True, help="where to write NAME.avatar")
    parser.add_argument("--name", default=None, help="avatar name (default: the output file's stem)")
    parser.add_argument("--size", type=int, default=None, help="avatar image side in pixels")


def run(args: argparse.Namespace) -> int:
    from engine.avatar.create import create_avatar, read_image  # mediapipe: only when creating
    from engine.render.calibrate import calibrate_visible_aperture

    try:
        cfg = load_config(args.config)
        if args.size is not None:
            cfg = replace(cfg, avatar={"size": args.size})
        t0 = time.perf_counter()
        image = _astronaut() if args.photo == ASTRONAUT else read_image(args.photo)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            avatar = create_avatar(image, name=args.name or Path(args.output).stem, config=cfg.avatar)
            # the mouth's opening map, measured on the rendered image as a viewer sees it
            avatar = calibrate_visible_aperture(avatar)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        path = save_avatar(avatar, args.output)
    except (ValueError, RuntimeError) as e:  # AvatarError, ConfigError, bad geometry
        print(f"facecast avatar create: error: {e}", file=sys.stderr)
        return 2
    for note in avatar.notes:
        print(f"note: {note}")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {avatar.width}x{avatar.height}, "
          f"{len(avatar.vertex_uv)} vertices, {len(avatar.triangles)} triangles) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
