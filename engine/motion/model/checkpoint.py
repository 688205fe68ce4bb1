"""The torch checkpoint (``*.pt``) format of the audio-to-motion model (needs torch).

A checkpoint is ``{"format": FORMAT, "meta": ModelMeta-as-dict, "state_dict": ...}`` saved with
``torch.save``; ONNX exports carry the same meta as JSON in the metadata property
``facecast_meta``. Loading validates everything and raises ``ModelLoadError`` with the path and
the reason, so a corrupt or foreign file never crashes the engine.
"""
from __future__ import annotations

from pathlib import Path

from engine.motion.generators import ModelLoadError
from engine.motion.model.net import Audio2Motion
from engine.motion.model.spec import FORMAT, ModelMeta

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
