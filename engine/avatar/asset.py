"""The avatar asset: a rigged 2.5D head made from one portrait photo.

File format (``*.avatar``, version ``FORMAT_VERSION``): a zip holding
``meta.json`` (format, version, name, face frame, layer ranges, notes) and
``arrays.npz`` (every array below). Loads in a few milliseconds.

Normalized face space (the rig's coordinates)
----------------------------------------------
* origin: the mid-point between the two iris centres (landmarks 468 and 473)
  of the neutral photo, depth = their mean depth;
* x: along the eye line, from the subject's right eye (image left) to the left
  eye (image right); y: perpendicular to it, pointing down the face (image
  down when the head is upright); z: toward the viewer (mediapipe's z negated);
* unit: the inter-ocular distance (iris centre to iris centre), so ~63 mm.

``image_xy = face_origin + face_scale * R(face_roll) @ face_xy`` maps the
neutral rig back onto the photo; ``face_z = -(z_pixels - z_origin) / face_scale``.
``rig_neutral + sum_k w_k * rig_deltas[k]`` gives the 478 landmarks of an
expression in face space (ARKit order of ``engine.motion.space.ARKIT_NAMES``).

Render mesh (used by ``engine.render.warp``): every vertex ``v`` is
``sum_k vertex_weights[v,k] * expr[vertex_anchors[v,k]] + vertex_offsets[v]``
in face space, blended between rest and posed by ``vertex_pose_weight[v]``
(1 = follows the head, 0 = static background; the head rotation sees the vertex
``vertex_pose_dz[v]`` deeper/nearer than it is, which keeps the pose displacement one
smooth field across the face outline, see ``engine.avatar.layers``), textured from ``atlas`` at
``vertex_uv`` (atlas pixels). ``triangles`` are drawn in order, later on top;
``layers`` names their ranges (support, mouth, eyes, face).

Mouth (version 3, ``engine.avatar.mouth_rest``): ``rig_neutral`` rests with closed lips (the
photo's lips are closed by the rig; the texture stays the photo's), and the renderer maps
jawOpen through ``aperture_command`` → ``aperture_jaw`` so the visible lip gap grows in
proportion to the commanded opening; ``photo_jaw_open`` is the opening that shows the photo's
own lips. Older files (no calibration) render jawOpen as it is.

Gaussian splats (optional, ``engine.avatar.gaussians``): a ``splat.npz`` member and
``meta.json["splat"]`` (its own version); files without it load with ``splat = None``.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.avatar.gaussians import GaussianAvatar, SplatError

FORMAT_NAME = "facecast-avatar"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)   # 1: no vertex_pose_dz (read as zeros); 1-2: no mouth calibration
NUM_LANDMARKS = 478


class AvatarError(ValueError):
    """An avatar that cannot be made or loaded; the message names the problem."""


@dataclass
class Avatar:
    image: np.ndarray               # (H, W, 3) uint8 RGB
    landmarks: np.ndarray           # (478, 3) float32 image pixels
    rig_neutral: np.ndarray         # (478, 3) float32 face space
    rig_deltas: np.ndarray          # (52, 478, 3) float32 face space
    face_origin: np.ndarray         # (2,) float32 image pixels
    face_scale: float               # inter-ocular distance in pixels
    face_roll: float                # radians, eye line angle in the photo
    head_pivot: np.ndarray          # (3,) face space, centre of head rotation
    atlas: np.ndarray               # (H, W + extra, 3) uint8: photo | synthesized layers
    vertex_anchors: np.ndarray      # (V, K) int32
    vertex_weights: np.ndarray      # (V, K) float32
    vertex_offsets: np.ndarray      # (V, 3) float32
    vertex_pose_weight: np.ndarray  # (V,) float32
    vertex_uv: np.ndarray           # (V, 2) float32 atlas pixels
    triangles: np.ndarray           # (T, 3) int32 draw order
    vertex_pose_dz: np.ndarray | None = None  # (V,) float32 depth offset seen by the head pose
    aperture_command: np.ndarray | None = None  # (N,) float32 commanded opening 0..1 (version 3)
    aperture_jaw: np.ndarray | None = None      # (N,) float32 jawOpen rendered for it
    photo_jaw_open: float = 0.0                 # commanded opening that shows the photo's lips
    layers: dict = field(default_factory=dict)   # name -> [first, end) triangle range
    name: str = "avatar"
    notes: list = field(default_factory=list)    # warnings from creation
    splat: GaussianAvatar | None = None          # Gaussians bound to the render mesh (optional)

    def __post_init__(self):
        if self.vertex_pose_dz is None:
            self.vertex_pose_dz = np.zeros(len(self.vertex_uv), np.float32)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def face_roll_matrix(self) -> np.ndarray:
        c, s = np.cos(self.face_roll), np.sin(self.face_roll)
        return np.array([[c, -s], [s, c]], np.float32)

    def face_to_image(self, pts: np.ndarray) -> np.ndarray:
        """Face-space points (N, >=2) -> image pixels (N, 2) (orthographic)."""
        xy = np.asarray(pts, np.float32)[:, :2] @ self.face_roll_matrix().T
        return self.face_origin + self.face_scale * xy

    def validate(self) -> None:
        def shape(name, arr, want):
            if arr.shape != want:
                raise AvatarError(f"avatar field {name} has shape {arr.shape}, expected {want}")
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise AvatarError(f"avatar image must be (H, W, 3) uint8, got {self.image.shape} {self.image.dtype}")
        shape("landmarks", self.landmarks, (NUM_LANDMARKS, 3))
        shape("rig_neutral", self.rig_neutral, (NUM_LANDMARKS, 3))
        shape("rig_deltas", self.rig_deltas, (52, NUM_LANDMARKS, 3))
        v = len(self.vertex_uv)
        shape("vertex_offsets", self.vertex_offsets, (v, 3))
        shape("vertex_pose_weight", self.vertex_pose_weight, (v,))
        shape("vertex_pose_dz", self.vertex_pose_dz, (v,))
        if self.vertex_anchors.shape != self.vertex_weights.shape or len(self.vertex_anchors) != v:
            raise AvatarError("avatar vertex anchors/weights do not match the vertex count")
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3:
            raise AvatarError("avatar triangles must be (T, 3)")
        if len(self.triangles) and (self.triangles.min() < 0 or self.triangles.max() >= v):
            raise AvatarError("avatar triangles index vertices that do not exist")
        if self.vertex_anchors.size and (self.vertex_anchors.min() < 0
                                         or self.vertex_anchors.max() >= NUM_LANDMARKS):
            raise AvatarError("avatar vertex anchors index landmarks that do not exist")
        if self.atlas.shape[0] != self.image.shape[0]:
            raise AvatarError("avatar atlas height differs from the image height")
        if (self.aperture_command is None) != (self.aperture_jaw is None):
            raise AvatarError("avatar aperture calibration needs both aperture_command and aperture_jaw")
        if self.aperture_command is not None:
            c, j = self.aperture_command, self.aperture_jaw
            if c.shape != j.shape or c.ndim != 1 or len(c) < 2 or np.any(np.diff(c) <= 0) or np.any(np.diff(j) < 0):
                raise AvatarError("avatar aperture calibration must be two increasing 1-D arrays of one length")
        for name, arr in (("rig_neutral", self.rig_neutral), ("rig_deltas", self.rig_deltas),
                          ("landmarks", self.landmarks), ("vertex_uv", self.vertex_uv),
                          ("vertex_pose_dz", self.vertex_pose_dz)):
            if not np.isfinite(arr).all():
                raise AvatarError(f"avatar field {name} contains NaN or inf")
        if self.splat is not None:
            try:
                self.splat.validate(len(self.triangles))
            except SplatError as e:
                raise AvatarError(str(e)) from e


_ARRAYS = ("landmarks", "rig_neutral", "rig_deltas", "face_origin", "head_pivot",
           "vertex_anchors", "vertex_weights", "vertex_offsets", "vertex_pose_weight",
           "vertex_uv", "triangles")


def save_avatar(avatar: Avatar, path: str | Path) -> Path:
    """Write ``avatar`` as a versioned ``.avatar`` zip; returns the path."""
    avatar.validate()
    path = Path(path)
    arrays = {k: getattr(avatar, k) for k in _ARRAYS}
    arrays["vertex_pose_dz"] = avatar.vertex_pose_dz
    if avatar.aperture_command is not None:
        arrays["aperture_command"] = avatar.aperture_command
        arrays["aperture_jaw"] = avatar.aperture_jaw
    arrays["image"] = avatar.image
    arrays["atlas_extra"] = avatar.atlas[:, avatar.width:]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": avatar.name,
            "face_scale": float(avatar.face_scale), "face_roll": float(avatar.face_roll),
            "layers": {k: [int(a), int(b)] for k, (a, b) in avatar.layers.items()},
            "notes": list(avatar.notes), "photo_jaw_open": float(avatar.photo_jaw_open),
            "image_size": [avatar.width, avatar.height]}
    if avatar.splat is not None:
        meta["splat"] = avatar.splat.meta()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", json.dumps(meta, indent=1))
        z.writestr("arrays.npz", buf.getvalue())
        if avatar.splat is not None:
            z.writestr("splat.npz", avatar.splat.to_bytes())
    return path


def load_avatar(path: str | Path) -> Avatar:
    """Load a ``.avatar`` file; raises ``AvatarError`` naming what is wrong."""
    path = Path(path)
    if not path.exists():
        raise AvatarError(f"avatar file {path} does not exist")
    if path.is_dir():
        raise AvatarError(f"avatar path {path} is a directory, not an .avatar file")
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            npz = np.load(io.BytesIO(z.read("arrays.npz")), allow_pickle=False)
            arrays = {k: npz[k] for k in npz.files}
            splat_bytes = z.read("splat.npz") if "splat" in meta else None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise AvatarError(f"{path} is not a valid .avatar file ({type(e).__name__}: {e})") from e
    if meta.get("format") != FORMAT_NAME:
        raise AvatarError(f"{path}: not a facecast avatar (format {meta.get('format')!r})")
    if meta.get("version") not in READABLE_VERSIONS:
        raise AvatarError(f"{path}: avatar format version {meta.get('version')} is not supported "
                          f"(this facecast reads version {FORMAT_VERSION}); re-create it")
    required = (*_ARRAYS, "image", "atlas_extra") + (("vertex_pose_dz",) if meta["version"] >= 2 else ())
    missing = [k for k in required if k not in arrays]
    if missing:
        raise AvatarError(f"{path}: avatar is missing arrays {missing}")
    image = arrays["image"]
    try:
        atlas = np.ascontiguousarray(np.concatenate([image, arrays["atlas_extra"]], axis=1))
    except ValueError as e:
        raise AvatarError(f"{path}: avatar atlas does not fit its image ({e})") from e
    avatar = Avatar(
        image=image, atlas=atlas,
        face_scale=float(meta["face_scale"]), face_roll=float(meta["face_roll"]),
        layers={k: tuple(v) for k, v in meta.get("layers", {}).items()},
        name=str(meta.get("name", path.stem)), notes=list(meta.get("notes", [])),
        vertex_pose_dz=arrays.get("vertex_pose_dz"), aperture_command=arrays.get("aperture_command"),
        aperture_jaw=arrays.get("aperture_jaw"), photo_jaw_open=float(meta.get("photo_jaw_open", 0.0)),
        **{k: arrays[k] for k in _ARRAYS})
    if splat_bytes is not None:
        try:
            avatar.splat = GaussianAvatar.from_bytes(splat_bytes, meta["splat"])
        except (SplatError, ValueError, OSError, EOFError) as e:
            raise AvatarError(f"{path}: bad Gaussian-splat data ({e})") from e
    avatar.validate()
    return avatar
