"""Streaming wrapper of the learned audio-to-motion model (a ``SpeechMotionGenerator``).

Audio -> causal log-mel -> causal running normalisation -> a history of normalised mel.
Whenever frames become complete (their audio plus the model's look-ahead has arrived), the
model generates a window of ``window`` frames that ENDS at the newest complete frame: its first
frames are the already-emitted ones (the overlap, given to the model as known motion), the rest
(at most ``window - min_overlap`` per call) are new. Head pose over the first new frames is
cross-faded from the continuation of the emitted trajectory into the model's output. Noise comes
from a per-frame tape seeded by ``seed`` (the same frame always sees the same noise, whatever
the chunking), so output is deterministic per seed; different seeds give different head motion.
After ``flush`` the next ``push`` starts a new segment; emitted motion carries over as context.
"""
from __future__ import annotations

import numpy as np

from engine.config import Config
from engine.motion.a2m.runtime_model import A2MRuntime, controls_vector, load_runtime
from engine.motion.baseline import STATES
from engine.motion.emotion import emotion_offset
from engine.motion.features import RunningNorm, StreamingLogMel, check_audio, frames_ready
from engine.motion.generators import ModelLoadError, controls_from_config
from engine.motion.source import MotionControls
from engine.motion.space import NUM_BLENDSHAPES, VECTOR_DIM
from engine.runtime.base import RunnerOptions

NOISE_BLOCK = 256          # frames of noise drawn per tape block
MIN_OVERLAP = 3            # known frames kept in each window once there is a past
POSE_CROSSFADE = 2         # new frames over which head pose eases out of the emitted trajectory


class StreamingA2M:
    def __init__(self, runtime: A2MRuntime, fps: int = 25, sample_rate: int = 16000, seed: int = 0,
                 controls: MotionControls | None = None):
        meta = runtime.meta
        if sample_rate != meta.mel_spec.sample_rate or fps * meta.spec.mel_per_frame * meta.mel_spec.hop != sample_rate:
            raise ModelLoadError(f"model expects {meta.mel_spec.sample_rate} Hz audio at "
                                 f"{meta.mel_spec.sample_rate // (meta.spec.mel_per_frame * meta.mel_spec.hop)} fps; "
                                 f"got {sample_rate} Hz / {fps} fps")
        self.runtime, self.spec = runtime, meta.spec
        self.fps, self.sample_rate = fps, sample_rate
        self.samples_per_frame = sample_rate // fps
        self.lookahead_samples = meta.lookahead_samples
        self._mel = StreamingLogMel(meta.mel_spec)
        self._norm = RunningNorm(meta.mel_norm)
        self._controls = controls or MotionControls()
        self._cond = controls_vector(self._controls)
        self._seed = int(seed)
        self.reset()

    # --- contract -------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._seed = int(seed)
        self._norm.reset()
        self._noise_cache: dict[int, np.ndarray] = {}
        self._past = np.zeros((0, VECTOR_DIM), np.float32)     # emitted frames (last window-1)
        self._seg_offset = 0                                    # session frame index of segment frame 0
        self._new_segment()

    def set_controls(self, controls: MotionControls) -> None:
        if controls.state not in STATES:
            raise ValueError(f"unknown state {controls.state!r}; expected one of {list(STATES)}")
        emotion_offset(controls.emotion, controls.emotion_intensity)    # validates
        if not 0.0 <= controls.head_motion_scale <= 10.0:
            raise ValueError(f"head_motion_scale out of range: {controls.head_motion_scale}")
        if not 0.0 <= controls.blink_rate_per_min <= 120.0:
            raise ValueError(f"blink_rate_per_min out of range: {controls.blink_rate_per_min}")
        self._controls = controls
        self._cond = controls_vector(controls)

    def push(self, samples: np.ndarray) -> np.ndarray:
        a = check_audio(samples)
        mel = self._mel.push(a)
        if len(mel):
            self._hist = np.concatenate([self._hist, self._norm(mel)])
        self._n_samples += len(a)
        ready = frames_ready(self._n_samples, self.samples_per_frame, self.lookahead_samples)
        out = []
        while self._next < ready:
            out.append(self._generate(self._next, min(ready, self._next + self.spec.window - MIN_OVERLAP)))
        self._trim()
        return np.concatenate(out) if out else np.zeros((0, VECTOR_DIM), np.float32)

    def flush(self) -> np.ndarray:
        total = -(-self._n_samples // self.samples_per_frame)
        out = np.zeros((0, VECTOR_DIM), np.float32)
        if total > self._next:
            need = total * self.samples_per_frame + self.lookahead_samples - self._n_samples
            out = self.push(np.zeros(need, np.float32))
        self._seg_offset += self._next
        self._new_segment()
        return out

    # --- internals ------------------------------------------------------------------
    def _new_segment(self) -> None:
        self._mel.reset()
        self._n_samples = 0
        self._next = 0
        n = self.spec.mel_window(self.spec.window)
        self._hist = np.zeros((n, self.spec.n_mels), np.float32)   # normalised mel; zeros = before start
        self._hist_base = -n                                        # mel index of _hist[0]

    def _noise(self, session_frames: np.ndarray) -> np.ndarray:
        out = np.empty((len(session_frames), VECTOR_DIM), np.float32)
        for i, g in enumerate(session_frames):
            b = int(g) // NOISE_BLOCK
            if b not in self._noise_cache:
                rng = np.random.default_rng([self._seed, b + 1])   # frames >= -window
                self._noise_cache = {b: rng.standard_normal((NOISE_BLOCK, VECTOR_DIM)).astype(np.float32)}
            out[i] = self._noise_cache[b][int(g) % NOISE_BLOCK]
        return out

    def _generate(self, k_from: int, k_to: int) -> np.ndarray:
        W = self.spec.window
        n_new = k_to - k_from
        e = k_to - 1
        frames = np.arange(e - W + 1, e + 1)
        n_known = min(len(self._past), W - n_new)
        known = np.zeros((W, VECTOR_DIM), np.float32)
        mask = np.zeros(W, np.float32)
        if n_known:
            known[W - n_new - n_known: W - n_new] = self._past[-n_known:]
            mask[W - n_new - n_known: W - n_new] = 1.0
        last = self.spec.last_mel_of_frame(e) - self._hist_base
        mel = self._hist[last - self.spec.mel_window(W) + 1: last + 1]
        noise = self._noise(frames + self._seg_offset)
        out = self.runtime.generate(mel, known, mask, noise, self._cond)[W - n_new:]
        if len(self._past) >= 2:
            p1, p0 = self._past[-1, NUM_BLENDSHAPES:], self._past[-2, NUM_BLENDSHAPES:]
            for j in range(min(POSE_CROSSFADE, n_new)):
                w = (POSE_CROSSFADE - j) / (POSE_CROSSFADE + 1)
                out[j, NUM_BLENDSHAPES:] = w * (p1 + (j + 1) * (p1 - p0)) + (1 - w) * out[j, NUM_BLENDSHAPES:]
        out = out.astype(np.float32)
        self._past = np.concatenate([self._past, out])[-(W - 1):]
        self._next = k_to
        return out

    def _trim(self) -> None:
        keep_from = self.spec.last_mel_of_frame(self._next) - self.spec.mel_window(self.spec.window) + 1
        drop = keep_from - self._hist_base
        if drop > 0:
            self._hist = self._hist[drop:]
            self._hist_base = keep_from


def load_streaming_generator(cfg: Config) -> StreamingA2M:
    """The learned generator for ``cfg`` (ModelLoadError with a clear reason when impossible)."""
    m = cfg.motion
    opts = RunnerOptions(threads=cfg.pipeline.torch_threads, onnx_precision=m.onnx_precision,
                         torch_dtype=m.torch_dtype, tensorrt_precision=m.tensorrt_precision,
                         extra={"engine_cache_dir": cfg.resolve_path(m.engine_cache_dir)})
    runtime = load_runtime(cfg.resolve_path(m.model_path), list(m.backends), m.diffusion_steps, opts)
    if runtime.meta.lookahead_samples > m.lookahead_ms * cfg.audio.model_sample_rate // 1000:
        raise ModelLoadError(f"model needs {runtime.meta.lookahead_samples * 1000 // 16000} ms look-ahead, "
                             f"config allows motion.lookahead_ms = {m.lookahead_ms}")
    return StreamingA2M(runtime, fps=cfg.video.fps, sample_rate=cfg.audio.model_sample_rate, seed=m.seed,
                        controls=controls_from_config(cfg))
