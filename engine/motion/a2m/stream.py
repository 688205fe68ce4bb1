"""Streaming wrapper of the learned audio-to-motion model (SpeechMotionGenerator)."""
from __future__ import annotations

from engine.config import Config
from engine.motion.generators import ModelLoadError


def load_streaming_generator(cfg: Config):
    path = cfg.resolve_path(cfg.motion.model_path)
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist "
                             "(train one with `facecast train audio2motion`)")
    raise ModelLoadError(f"model file {path}: the learned runtime is not available in this build yet")
