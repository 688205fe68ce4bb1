"""Synthesized texture patches for the layers the photo does not show (atlas extras).

* ``eye_sclera_patch``: the eye region of the photo with the iris painted out, so the
  iris can move over it;
* ``iris_sprite``: the iris disk, its lid-hidden parts completed from the visible ring
  at the same radius;
* ``mouth_cavity``: the dark oral cavity with a tongue, shaded from the photo's lips;
* ``teeth_strip``: upper / lower teeth for photos with closed lips.
"""
from __future__ import annotations

import cv2
import numpy as np


def polygon_mask(shape: tuple[int, int], poly: np.ndarray, origin=(0, 0)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    pts = np.round((poly[:, :2] - np.asarray(origin)) * 4).astype(np.int32)
    cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=2)
    return m.astype(bool)


def eye_sclera_patch(image: np.ndarray, rect: tuple[int, int, int, int], iris_c: np.ndarray,
                     iris_r: float, opening: np.ndarray) -> np.ndarray:
    """Crop ``rect`` (x0, y0, x1, y1) of the photo with the iris disk painted over in the
    eye's own sclera colour (shaded darker toward the upper lid); ``opening`` is the
    visible eye region of the crop."""
    x0, y0, x1, y1 = rect
    patch = crop(image, rect)
    h, w = patch.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    disk = np.hypot(xx + x0 - iris_c[0], yy + y0 - iris_c[1]) <= iris_r
    white = opening & ~disk
    if white.sum() >= 4:
        pix = patch[white].astype(np.float32)
        lum = pix.mean(1)
        sclera = pix[lum >= np.percentile(lum, 60)].mean(0)
    else:
        sclera = np.array([200, 195, 190], np.float32)
    rows = np.nonzero(opening.any(1))[0]
    top, bot = (rows.min(), rows.max()) if len(rows) else (0, h - 1)
    shade = 0.72 + 0.28 * np.clip((yy - top) / max(bot - top, 1), 0, 1)
    out = patch.astype(np.float32)
    out[disk] = (sclera * shade[..., None])[disk]
    soft = cv2.GaussianBlur(out, (0, 0), max(iris_r * 0.15, 0.8))
    ring = cv2.dilate(disk.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~cv2.erode(
        disk.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out[ring] = soft[ring]
    return np.clip(out, 0, 255).astype(np.uint8)


def iris_sprite(image: np.ndarray, rect: tuple[int, int, int, int], iris_c: np.ndarray,
                iris_r: float, visible: np.ndarray) -> np.ndarray:
    """Crop ``rect`` around the iris; pixels not ``visible`` (under the lids) inside the
    disk are filled with the mean visible colour at the same radius."""
    x0, y0, _, _ = rect
    patch = crop(image, rect).astype(np.float32)
    h, w = patch.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx + x0 - iris_c[0], yy + y0 - iris_c[1]) / max(iris_r, 1e-3)
    bins = np.clip((r * 6).astype(int), 0, 12)
    fill = patch.copy()
    vis_pix = patch[visible]
    overall = vis_pix.mean(0) if len(vis_pix) else np.array([90, 70, 60], np.float32)
    for b in range(13):
        sel = bins == b
        src = sel & visible
        col = patch[src].mean(0) if src.sum() >= 3 else overall
        fill[sel & ~visible] = col
    return np.clip(fill, 0, 255).astype(np.uint8)


def in_photo_colours(rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with its chroma scaled to the reference colour's saturation: a synthesized colour
    takes the photo's own palette (a black-and-white photo gives grey, a sepia one sepia)."""
    rgb, ref = np.asarray(rgb, np.float32), np.asarray(reference_rgb, np.float32)
    ref_sat = float((ref.max() - ref.min()) / max(ref.max(), 1.0))
    own_sat = float((rgb.max() - rgb.min()) / max(rgb.max(), 1.0))
    keep = min(1.0, ref_sat / own_sat) if own_sat > 1e-6 else 0.0
    grey = rgb.mean()
    return grey + keep * (rgb - grey)


def mouth_cavity(size: tuple[int, int], lip_rgb: np.ndarray, brightness: float) -> np.ndarray:
    """(h, w) cavity: very dark, in the lips' hue, darker at the corners and the top; tongue
    below. A grey photo's lips give a grey cavity (no colour is added that the photo lacks)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / (w - 1) * 2 - 1, yy / (h - 1)
    lip = np.asarray(lip_rgb, np.float32)
    hue = lip / max(float(lip.max()), 1.0)          # 1 in the lips' strongest channel
    base = lip * (0.16 + 0.16 * hue) * brightness
    shade = (0.55 + 0.45 * (1 - np.abs(u) ** 2))[..., None] * (0.6 + 0.4 * v)[..., None]
    img = base * shade
    tongue = np.clip(1 - (u / 0.62) ** 2 - ((v - 1.05) / 0.5) ** 2, 0, 1)[..., None]
    tongue_rgb = lip * (0.55 + 0.30 * hue) * brightness
    tongue_shade = 0.55 + 0.45 * np.clip((v - 0.55) / 0.45, 0, 1)[..., None]
    img = img * (1 - np.sqrt(tongue)) + tongue_rgb * tongue_shade * np.sqrt(tongue)
    return np.clip(img, 0, 255).astype(np.uint8)


def teeth_strip(size: tuple[int, int], tooth_rgb: np.ndarray, upper: bool,
                gum_rgb: np.ndarray) -> np.ndarray:
    """(h, w) strip of teeth seen from the front; row 0 is the gum side."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / (w - 1) * 2 - 1, yy / (h - 1)
    # incisor widths shrink toward the corners: tooth index from a warped coordinate
    widths = (np.array([0.27, 0.21, 0.2, 0.17, 0.15, 0.15]) if upper
              else np.array([0.17, 0.17, 0.19, 0.2, 0.2, 0.2]))
    edges = np.concatenate([[0], np.cumsum(widths)])
    a = np.abs(u)
    k = np.clip(np.searchsorted(edges, a) - 1, 0, len(widths) - 1)
    local = (a - edges[k]) / widths[k]
    gap = 0.72 + 0.28 * np.clip(1 - np.abs(local - 0.5) * 2, 0, 1) ** 0.2   # soft seams between teeth
    side_shade = 1 - 0.55 * a ** 2                             # corners sink into shadow
    tip = 1 - 0.25 * v ** 3                                    # translucent tips
    img = np.asarray(tooth_rgb, np.float32) * (gap * side_shade * tip)[..., None]
    gum = np.clip(1 - v / 0.18, 0, 1)[..., None]
    img = img * (1 - gum) + np.asarray(gum_rgb, np.float32) * side_shade[..., None] * gum
    return np.clip(img, 0, 255).astype(np.uint8)


def crop(image: np.ndarray, rect) -> np.ndarray:
    x0, y0, x1, y1 = rect
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return np.ascontiguousarray(image[y0:y1, x0:x1])
