"""The shipped model's metadata and the torch checkpoint (``*.pt``) format.

A checkpoint is ``{"format": FORMAT, "meta": ModelMeta-as-dict, "state_dict": ...}`` saved with
``torch.save``; ONNX exports carry the same meta as JSON in the metadata property
``facecast_meta``. Loading validates everything and raises ``ModelLoadError`` with the path and
the reason, so a corrupt or foreign file never crashes the engine.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.motion.a2m.model import Audio2Motion, ModelSpec
from engine.motion.features import MelSpec, NormStats
from engine.motion.generators import ModelLoadError

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


def save_checkpoint(path: str | Path, model: Audio2Motion, meta: ModelMeta) -> None:
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "meta": meta.to_dict(), "state_dict": state}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[Audio2Motion, ModelMeta]:
    import torch
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist (train one with `facecast train audio2motion`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # torch raises many types for garbage input
        raise ModelLoadError(f"model file {path} is corrupt or not a torch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelLoadError(f"model file {path} is not a facecast audio2motion checkpoint")
    meta = ModelMeta.from_dict(blob.get("meta"), str(path))
    model = Audio2Motion(meta.spec)
    try:
        model.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise ModelLoadError(f"model file {path}: weights do not fit the model ({e})") from e
    model.set_draw_temperature(meta.draw_temperature)
    model.eval()
    return model, meta


def meta_from_onnx_props(props: dict, where: str) -> ModelMeta:
    if META_KEY not in props:
        raise ModelLoadError(f"{where}: ONNX file has no {META_KEY} metadata (not exported by facecast)")
    try:
        d = json.loads(props[META_KEY])
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{where}: bad {META_KEY} metadata ({e})") from e
    return ModelMeta.from_dict(d, where)
