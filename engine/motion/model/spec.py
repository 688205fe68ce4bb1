"""The audio-to-motion model's contract, without torch: spec, metadata, conditioning vector.

Everything the engine needs to *serve* a model exported to ONNX (or TensorRT) lives here and in
``runtime.py``; the torch network (``net.py``) and the ``*.pt`` checkpoint format
(``checkpoint.py``) are imported only by the torch backend and by training. So a server that
runs ONNX Runtime never imports torch.

A checkpoint is ``{"format": FORMAT, "meta": ModelMeta-as-dict, "state_dict": ...}``; ONNX
exports carry the same meta as JSON in the metadata property ``META_KEY``. Loading validates
everything and raises ``ModelLoadError`` with the path and the reason, so a corrupt or foreign
file never crashes the engine.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.motion.emotion import EMOTIONS
from engine.motion.features import MelSpec, NormStats
from engine.motion.generators import ModelLoadError
from engine.motion.streaming import STATES   # their order is the conditioning layout

COND_DIM = len(STATES) + len(EMOTIONS) + 3        # + intensity, head scale, blink rate / 60


@dataclass(frozen=True)
class ModelSpec:
    n_mels: int = 80
    motion_dim: int = 58
    mel_per_frame: int = 4          # 100 Hz features / 25 fps
    lookahead_mel: int = 5          # 50 ms of future audio past the frame's end
    window: int = 8                 # motion frames per denoiser window
    enc_channels: int = 128
    enc_dilations: tuple = (1, 2, 4, 8, 16)
    den_channels: int = 128
    den_blocks: int = 4
    t_embed: int = 32

    @property
    def receptive_frames(self) -> int:
        """25 Hz frames the encoder needs per output (incl. the frame itself)."""
        return 1 + sum(self.enc_dilations)

    @property
    def receptive_mel(self) -> int:
        return self.receptive_frames * self.mel_per_frame

    def mel_window(self, n_frames: int) -> int:
        """Mel frames the encoder needs to produce ``n_frames`` consecutive embeddings."""
        return (n_frames + self.receptive_frames - 1) * self.mel_per_frame

    def last_mel_of_frame(self, k: int) -> int:
        """Index of the last mel frame motion frame ``k`` depends on."""
        return self.mel_per_frame * (k + 1) - 1 + self.lookahead_mel

    def to_dict(self) -> dict:
        d = asdict(self)
        d["enc_dilations"] = list(self.enc_dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["enc_dilations"] = tuple(d["enc_dilations"])
        return cls(**d)


def control_vector(state: str, emotion: str, intensity: float, head_scale: float, blink_rate: float) -> np.ndarray:
    c = np.zeros(len(STATES) + len(EMOTIONS) + 3, np.float32)
    c[STATES.index(state)] = 1.0
    c[len(STATES) + EMOTIONS.index(emotion)] = 1.0
    c[-3:] = (intensity, head_scale, blink_rate / 60.0)
    return c


FORMAT = "facecast-audio2motion-v1"
META_KEY = "facecast_meta"


@dataclass
class ModelMeta:
    spec: ModelSpec
    mel_spec: MelSpec
    mel_mean: list
    mel_std: list
    norm_time_constant_frames: float
    motion_mean: list
    motion_std: list
    diffusion_steps: int = 2
    norm_gate_db: float = -5.0          # energy gate of the running normalisation (features.NormStats)
    norm_prior_frames: float = 1e9      # weight of the corpus mean at the start (1e9: plain EMA, older models)
    draw_temperature: float = 1.0       # scale of the final posterior draw (head, brows, eyes)
    train: dict = field(default_factory=dict)

    @property
    def mel_norm(self) -> NormStats:
        return NormStats(np.asarray(self.mel_mean, np.float64), np.asarray(self.mel_std, np.float64),
                         self.norm_time_constant_frames, self.norm_gate_db, self.norm_prior_frames)

    @property
    def lookahead_samples(self) -> int:
        return self.spec.lookahead_mel * self.mel_spec.hop

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["mel_spec"] = self.mel_spec.to_dict()
        d["format"] = FORMAT
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "model") -> "ModelMeta":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ModelLoadError(f"{where}: not a facecast audio2motion model (format "
                                 f"{d.get('format') if isinstance(d, dict) else type(d).__name__!r})")
        try:
            meta = cls(spec=ModelSpec.from_dict(d["spec"]), mel_spec=MelSpec(**d["mel_spec"]),
                       mel_mean=list(d["mel_mean"]), mel_std=list(d["mel_std"]),
                       norm_time_constant_frames=float(d["norm_time_constant_frames"]),
                       motion_mean=list(d["motion_mean"]), motion_std=list(d["motion_std"]),
                       diffusion_steps=int(d.get("diffusion_steps", 2)),
                       norm_gate_db=float(d.get("norm_gate_db", -5.0)),
                       norm_prior_frames=float(d.get("norm_prior_frames", 1e9)),
                       draw_temperature=float(d.get("draw_temperature", 1.0)), train=dict(d.get("train", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"{where}: incomplete model metadata ({e})") from e
        if len(meta.mel_mean) != meta.spec.n_mels or len(meta.motion_mean) != meta.spec.motion_dim:
            raise ModelLoadError(f"{where}: metadata sizes do not match the model spec")
        return meta


def meta_from_onnx_props(props: dict, where: str) -> ModelMeta:
    if META_KEY not in props:
        raise ModelLoadError(f"{where}: ONNX file has no {META_KEY} metadata (not exported by facecast)")
    try:
        d = json.loads(props[META_KEY])
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{where}: bad {META_KEY} metadata ({e})") from e
    return ModelMeta.from_dict(d, where)
