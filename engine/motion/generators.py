"""Pick the speech-to-motion generator the config asks for.

``cfg.motion.source`` is "model" (the learned few-step diffusion model, run by the first
backend of ``cfg.motion.backends`` that works) or "baseline" (the non-learned generator).
A missing, corrupt or unusable model file never crashes the engine: the factory logs one
warning that says what was wrong and returns the baseline instead.
"""
from __future__ import annotations

import logging

from engine.config import Config
from engine.motion.baseline import BaselineGenerator
from engine.motion.streaming import MotionControls, SpeechMotionGenerator

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The audio-to-motion model could not be loaded (missing, corrupt, incompatible)."""


def controls_from_config(cfg: Config) -> MotionControls:
    """Always state "speaking": the generator only hears the avatar's own speech (listening and
    idle motion come from ``engine.motion.idle``; see ``engine.motion.streaming``)."""
    m = cfg.motion
    return MotionControls(state="speaking", emotion=m.emotion, emotion_intensity=m.emotion_intensity,
                          head_motion_scale=m.head_motion_scale, blink_rate_per_min=m.blink_rate_per_min)


def create_baseline(cfg: Config) -> BaselineGenerator:
    return BaselineGenerator(fps=cfg.video.fps, sample_rate=cfg.audio.model_sample_rate,
                             lookahead_ms=cfg.motion.lookahead_ms, seed=cfg.motion.seed,
                             controls=controls_from_config(cfg))


def create_model_generator(cfg: Config) -> SpeechMotionGenerator:
    """The learned generator; raises ``ModelLoadError`` with a clear message when it cannot."""
    from engine.motion.model.stream import load_streaming_generator   # torch/onnx only when needed
    return load_streaming_generator(cfg)


def create_generator(cfg: Config) -> SpeechMotionGenerator:
    """The live engine's generator, with the pause gate when ``motion.silence_gate`` is on."""
    return with_silence_gate(_create(cfg), cfg)


def with_silence_gate(gen: SpeechMotionGenerator, cfg: Config) -> SpeechMotionGenerator:
    m = cfg.motion
    if m.silence_gate and hasattr(gen, "set_silence_gate"):
        from engine.motion.silence import SilenceGate
        ahead_s = (gen.sample_rate // gen.fps + gen.lookahead_samples) / gen.sample_rate
        gen.set_silence_gate(SilenceGate(gen.fps, gen.sample_rate, ahead_s, back_ms=m.silence_back_ms,
                                         ahead_ms=m.silence_ahead_ms, threshold=m.silence_threshold,
                                         close_frames=m.silence_close_frames))
    return gen


def _create(cfg: Config) -> SpeechMotionGenerator:
    if cfg.motion.source == "baseline":
        return create_baseline(cfg)
    try:
        return create_model_generator(cfg)
    except ModelLoadError as e:
        log.warning("audio-to-motion model unavailable (%s); using the baseline generator", e)
    except Exception as e:  # an unexpected failure inside a backend must not take the engine down
        log.warning("audio-to-motion model failed to load (%s: %s); using the baseline generator",
                    type(e).__name__, e)
    return create_baseline(cfg)
