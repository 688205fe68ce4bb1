"""The motion space: the contract between motion sources and renderers.

One ``MotionFrame`` = the 52 ARKit blendshape weights (ARKit names and order),
head rotation (yaw, pitch, roll in radians) and head translation (x, y, z in
units of the avatar's inter-ocular distance), all float32. Gaze lives in the
ARKit ``eyeLook*`` shapes, as ARKit defines it.

Two wire encodings: a compact binary one (244 bytes per frame) and JSON.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

# ARKit face-tracking blendshape locations, in Apple's documented order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
assert len(ARKIT_NAMES) == 52
NUM_BLENDSHAPES = 52
INDEX: dict[str, int] = {n: i for i, n in enumerate(ARKIT_NAMES)}
POSE_DIM = 6  # yaw, pitch, roll, tx, ty, tz
VECTOR_DIM = NUM_BLENDSHAPES + POSE_DIM  # 58

_MAGIC = b"FM"
_VERSION = 1
_HEADER = struct.Struct("<2sBBq")  # magic, version, flags, pts (in frames)
_BODY = struct.Struct(f"<{VECTOR_DIM}f")
BINARY_SIZE = _HEADER.size + _BODY.size  # 12 + 232 = 244


class MotionDecodeError(ValueError):
    """A motion message that is not a valid encoding."""


@dataclass(slots=True)
class MotionFrame:
    blendshapes: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BLENDSHAPES, np.float32))
    head_rotation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # yaw, pitch, roll
    head_translation: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    def __post_init__(self) -> None:
        self.blendshapes = np.asarray(self.blendshapes, np.float32).reshape(NUM_BLENDSHAPES)
        self.head_rotation = np.asarray(self.head_rotation, np.float32).reshape(3)
        self.head_translation = np.asarray(self.head_translation, np.float32).reshape(3)

    # --- construction helpers -------------------------------------------------
    @classmethod
    def neutral(cls) -> "MotionFrame":
        return cls()

    @classmethod
    def from_weights(cls, weights: dict[str, float] | None = None, yaw: float = 0.0,
                     pitch: float = 0.0, roll: float = 0.0,
                     translation: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> "MotionFrame":
        bs = np.zeros(NUM_BLENDSHAPES, np.float32)
        for name, w in (weights or {}).items():
            if name not in INDEX:
                raise KeyError(f"unknown ARKit blendshape {name!r}")
            bs[INDEX[name]] = w
        return cls(bs, np.array([yaw, pitch, roll], np.float32), np.array(translation, np.float32))

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "MotionFrame":
        v = np.asarray(v, np.float32).reshape(VECTOR_DIM)
        return cls(v[:NUM_BLENDSHAPES].copy(), v[52:55].copy(), v[55:58].copy())

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.blendshapes, self.head_rotation, self.head_translation]).astype(np.float32)

    def __getitem__(self, name: str) -> float:
        return float(self.blendshapes[INDEX[name]])

    def copy(self) -> "MotionFrame":
        return MotionFrame(self.blendshapes.copy(), self.head_rotation.copy(), self.head_translation.copy())

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.to_vector()).all())

    # --- wire encodings ---------------------------------------------------------
    def to_bytes(self, pts: int = 0) -> bytes:
        return _HEADER.pack(_MAGIC, _VERSION, 0, int(pts)) + _BODY.pack(*self.to_vector().tolist())

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[int, "MotionFrame"]:
        if len(data) != BINARY_SIZE:
            raise MotionDecodeError(f"motion frame must be {BINARY_SIZE} bytes, got {len(data)}")
        magic, version, _flags, pts = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise MotionDecodeError(f"bad motion header {magic!r} v{version}")
        v = np.array(_BODY.unpack_from(data, _HEADER.size), np.float32)
        if not np.isfinite(v).all():
            raise MotionDecodeError("motion frame contains NaN or inf")
        return pts, cls.from_vector(v)

    def to_json(self, pts: int = 0) -> str:
        return json.dumps({
            "pts": int(pts),
            "blendshapes": {n: round(float(w), 5) for n, w in zip(ARKIT_NAMES, self.blendshapes)},
            "head_rotation": [round(float(x), 6) for x in self.head_rotation],
            "head_translation": [round(float(x), 6) for x in self.head_translation],
        })

    @classmethod
    def from_json(cls, text: str) -> tuple[int, "MotionFrame"]:
        try:
            d = json.loads(text)
            frame = cls.from_weights(d.get("blendshapes", {}))
            frame.head_rotation = np.asarray(d.get("head_rotation", [0, 0, 0]), np.float32).reshape(3)
            frame.head_translation = np.asarray(d.get("head_translation", [0, 0, 0]), np.float32).reshape(3)
            pts = int(d.get("pts", 0))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise MotionDecodeError(f"invalid motion JSON: {e}") from e
        if not frame.is_finite():
            raise MotionDecodeError("motion frame contains NaN or inf")
        return pts, frame
