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
    parser.add_argument("--splat", action="store_true",
                        help="also make the Gaussian-splat avatar: initialised from the mesh, fitted to the photo")
    parser.add_argument("--splat-gaussians", type=int, default=None, help="Gaussians (default: render.splat_gaussians)")
    parser.add_argument("--splat-steps", type=int, default=60, help="photo-fit steps (0: no fit)")
    parser.add_argument("--splat-size", type=int, default=128, help="render side while fitting (CPU: keep it small)")


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
        if args.splat:
            avatar = _with_splats(avatar, cfg, args)
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


def _with_splats(avatar, cfg, args):
    """The avatar with Gaussians initialised from its mesh and fitted to its photo (prints PSNR)."""
    import dataclasses

    from engine.avatar.splat_init import init_gaussians
    from engine.render.splat.fit import FitOptions, fit_to_photo, photo_psnr
    g = init_gaussians(avatar, args.splat_gaussians or cfg.render.splat_gaussians)
    before = photo_psnr(avatar, g)
    if args.splat_steps > 0:
        g, losses = fit_to_photo(avatar, g, FitOptions(size=args.splat_size, steps=args.splat_steps,
                                                       camera_distance=cfg.render.splat_camera_distance))
    print(f"splat: {len(g)} Gaussians; photo PSNR at 256x256 {before:.2f} dB initialised -> "
          f"{photo_psnr(avatar, g):.2f} dB fitted ({args.splat_steps} steps at {args.splat_size}x{args.splat_size})")
    return dataclasses.replace(avatar, splat=g)
