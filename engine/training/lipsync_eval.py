"""Lip sync on real speakers: each stage of facecast against a real talking mouth.

For one real talking video with its own audio (``eval_clip``):

* ``real``: mediapipe face mesh (``FaceTracker``, video mode, refined landmarks) on every video
  frame; opening = inner-lip distance 13-14 over face height 10-152. Each frame sits at its
  container time (``pts``) minus the audio stream's start, i.e. relative to the first audio
  sample (a video stream can start later than its audio).
* ``teacher``: the teacher on pocketsphinx phones of the clip's audio (recognition + forced
  alignment), opening = ``metrics.mouth_opening`` (weight units, not face heights).
* ``fitted``: the lip-opening teacher fitted to real faces (``teacher_opening.py``,
  ``assets/teacher_opening.json``) on the same phones; absent (r None) without that table.
* ``model``: the configured generator (``create_generator``) streamed in 40 ms pushes; same
  opening mapping (weight units).
* ``rig``: that model motion on the avatar's rig as the renderer deforms it (mouth calibration,
  press seal, lip contact: ``MeshDeformer.expression``): lip gap 13-14 (along the face's down
  axis, clipped at 0) over the deformed face height 10-152 (face heights).
* ``render``: the audio rendered through a real Session on a virtual clock
  (``engine.offline_render.render_to_mp4``), the mp4 tracked exactly like the real video.
* ``loudness``: log-RMS envelope of the audio, 20 ms window centred on each grid instant (dB).

Time stamps: all curves live on a 100 Hz grid t_i = i/100 s. Motion frame k shows the mouth at
the instant k/25 (the teacher samples there; the engine presents frame k at pts k/25), so it is
stamped k/25, like camera and rendered frames, which show an instant: their container time.

Lags: ``r(real(t), stage(t - lag))``; lag > 0 means the real mouth is later than the stage.
Clip sync: a clip's video and audio can be offset (silent videos joined to a separate wav; one
dev clip is 230 ms off). Before scoring, the real curve is re-timed per clip (``clip_sync``) from
the *teacher*, the one stage that does not learn from real video: if the teacher's best lag
within +-``SYNC_SEARCH_MS`` lies outside the natural lead +-``R_WINDOW_MS`` and beats the
teacher's r at the natural lead by ``SYNC_MIN_GAIN`` (reaching at least ``SYNC_MIN_R``), the real curve is shifted so that the
teacher's peak sits at ``NATURAL_LEAD_MS`` (lips lead the sound by ~30 ms: the median teacher
peak on the dev clips with their own audio). Every stage, loudness included, is scored against
the same re-timed curve, and the uncorrected r is reported beside it (``--no-sync-correction``
turns it off).
Pauses: an energy VAD (20 ms RMS below ``SILENCE_FRACTION`` of the way from the clip's 5th to
its 95th percentile in dB: adapts to room noise), runs of at least ``MIN_PAUSE_S``, trimmed by ``PAUSE_MARGIN_S`` at both ends (real lips open
before speech and close after it). Closure = share of pause frames with gap < 0.01 face heights.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE

GRID_HZ = 100
AUDIO_RATE = MODEL_RATE
FPS = 25
R_WINDOW_MS = 40
SWEEP_MS = 120
CLOSED_FH = 0.01            # a gap below this (face heights) counts as closed
SILENCE_FRACTION = 0.3
MIN_PAUSE_S = 0.25
PAUSE_MARGIN_S = 0.05
MIN_FACE_SHARE = 0.5
SYNC_SEARCH_MS = 400        # clip A/V offsets searched for (teacher peak)
NATURAL_LEAD_MS = -30       # where the teacher peaks on clips with their own, in-sync audio
SYNC_MIN_GAIN = 0.1         # a re-timing must raise the teacher's r by at least this much
SYNC_MIN_R = 0.25           # ... to at least this (a weak teacher curve cannot time a clip)
STAGES = ("teacher", "fitted", "model", "rig", "render", "loudness")
TEACHER_OPENING = "assets/teacher_opening.json"   # the fitted teacher's table (stage "fitted")
FACE_HEIGHT_STAGES = ("rig", "render")
UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152


class LipsyncEvalError(ValueError):
    """A clip cannot be measured (unreadable, no audio track, no face)."""


@dataclass
class ClipCurves:
    grid: np.ndarray
    real: np.ndarray
    stages: dict[str, np.ndarray]
    pauses: np.ndarray
    text: str = ""
    extra: dict = field(default_factory=dict)


def probe(video: str | Path) -> tuple[float, float]:
    """(video start, audio start) in container seconds; clear errors for unusable files."""
    import av

    path = Path(video)
    if not path.is_file():
        raise LipsyncEvalError(f"{path}: no such file")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise LipsyncEvalError(f"{path}: no video track")
            if not c.streams.audio:
                raise LipsyncEvalError(f"{path}: no audio track (the eval needs the speaker's own audio)")
            start = lambda s: float(s.start_time * s.time_base) if s.start_time is not None else 0.0  # noqa: E731
            return start(c.streams.video[0]), start(c.streams.audio[0])
    except av.error.FFmpegError as e:
        raise LipsyncEvalError(f"{path}: not a readable video file ({e})") from e


def mouth_curve(video: str | Path, audio_start: float) -> tuple[np.ndarray, np.ndarray]:
    """(frame times relative to the first audio sample, gap 13-14 / face height; NaN: no face)."""
    import av

    from engine.tracking.tracker import FaceTracker

    times, vals = [], []
    with av.open(str(video)) as c, FaceTracker() as tracker:
        for frame in c.decode(video=0):
            if frame.time is None:
                continue
            lm = tracker.track(frame.to_ndarray(format="rgb24"))
            times.append(frame.time - audio_start)
            if lm is None:
                vals.append(np.nan)
                continue
            p = lm[:, :2].astype(np.float64)
            vals.append(np.linalg.norm(p[UPPER_LIP] - p[LOWER_LIP]) / np.linalg.norm(p[FOREHEAD] - p[CHIN]))
    t, v = np.asarray(times), np.asarray(vals)
    if len(v) == 0 or np.isfinite(v).mean() < MIN_FACE_SHARE:
        share = 0.0 if len(v) == 0 else float(np.isfinite(v).mean())
        raise LipsyncEvalError(f"{video}: no face found in {100 * (1 - share):.0f}% of the video frames")
    order = np.argsort(t)
    return t[order], v[order]


def on_grid(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation onto ``grid`` (NaN outside the samples and across missing frames)."""
    ok = np.isfinite(values)
    out = np.interp(grid, times[ok], values[ok], left=np.nan, right=np.nan)
    return out


def motion_on_grid(curve: np.ndarray, grid: np.ndarray, fps: int = FPS) -> np.ndarray:
    """A per-motion-frame curve (frame k shows the instant k/fps) on ``grid``."""
    return on_grid(np.arange(len(curve)) / fps, curve, grid)


def log_rms(audio: np.ndarray, grid: np.ndarray, rate: int = AUDIO_RATE, win_s: float = 0.02) -> np.ndarray:
    """dB RMS in a ``win_s`` window centred on each grid instant, floored 60 dB below the peak."""
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    c = np.round(grid * rate).astype(int)
    lo = np.clip(c - int(win_s * rate) // 2, 0, len(audio))
    hi = np.clip(c + int(win_s * rate) // 2, 0, len(audio))
    db = 10 * np.log10((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1) + 1e-12)
    return np.maximum(db, db.max() - 60.0)


def pause_mask(loud_db: np.ndarray, hz: int = GRID_HZ) -> np.ndarray:
    """Frames inside pauses (energy VAD; see the module docstring)."""
    lo, hi = np.percentile(loud_db, [5, 95])
    silent = loud_db < lo + SILENCE_FRACTION * (hi - lo)
    out = np.zeros_like(silent)
    m, n_min = int(PAUSE_MARGIN_S * hz), int(MIN_PAUSE_S * hz)
    i = 0
    while i < len(silent):
        if not silent[i]:
            i += 1
            continue
        j = i
        while j < len(silent) and silent[j]:
            j += 1
        if j - i >= n_min:
            out[i + (m if i > 0 else 0): j - (m if j < len(silent) else 0)] = True
        i = j
    return out


def lag_sweep(real: np.ndarray, x: np.ndarray, max_ms: int = SWEEP_MS, hz: int = GRID_HZ) -> dict[int, float]:
    """{lag ms: Pearson r of real(t) vs x(t - lag)} in 10 ms steps (NaN-aware)."""
    out = {}
    for lag in range(-max_ms * hz // 1000, max_ms * hz // 1000 + 1):
        a, b = (real[lag:], x[:len(x) - lag]) if lag >= 0 else (real[:lag], x[-lag:])
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 20 and a.std() > 0 and b.std() > 0 else float("nan")
        out[lag * 1000 // hz] = r
    return out


def clip_sync(real: np.ndarray, teacher: np.ndarray, hz: int = GRID_HZ) -> int:
    """The shift (ms) that re-times a clip's real curve (see the module docstring); 0: in sync."""
    sweep = {k: v for k, v in lag_sweep(real, teacher, SYNC_SEARCH_MS, hz).items() if math.isfinite(v)}
    if not sweep:
        return 0
    peak = max(sweep, key=sweep.get)
    at_lead = sweep.get(NATURAL_LEAD_MS, float("-inf"))
    if (abs(peak - NATURAL_LEAD_MS) <= R_WINDOW_MS or sweep[peak] - at_lead < SYNC_MIN_GAIN
            or sweep[peak] < SYNC_MIN_R):
        return 0
    return peak - NATURAL_LEAD_MS


def shifted(real: np.ndarray, shift_ms: int, hz: int = GRID_HZ) -> np.ndarray:
    """real'(t) = real(t + shift): a curve that peaked at lag L against a stage peaks at L - shift."""
    n = shift_ms * hz // 1000
    out = np.full_like(real, np.nan)
    if n >= 0:
        out[:len(real) - n] = real[n:]
    else:
        out[-n:] = real[:n]
    return out


def compare(real: np.ndarray, x: np.ndarray, pauses: np.ndarray, in_face_heights: bool) -> dict:
    """r at the best lag within +-40 ms, the +-120 ms sweep, pause closure and range ratio."""
    sweep = lag_sweep(real, x)
    finite = {k: v for k, v in sweep.items() if math.isfinite(v)}
    near = {k: v for k, v in finite.items() if abs(k) <= R_WINDOW_MS}
    lag = max(near, key=near.get) if near else None
    peak = max(finite, key=finite.get) if finite else None
    out = {"r": _round(near[lag]) if lag is not None else None, "lag_ms": lag,
           "sweep_best_lag_ms": peak, "sweep_best_r": _round(finite[peak]) if peak is not None else None,
           "peak_at_edge": peak is not None and abs(peak) >= SWEEP_MS,
           "sweep": {str(k): _round(v) for k, v in sweep.items()},
           "pause_closure": None, "range_ratio": None}
    if in_face_heights:
        out["pause_closure"] = closure(x, pauses)
        rr, rx = p5_95(real), p5_95(x)
        out["range_ratio"] = _round(rx / rr) if rr and rx is not None else None
    return out


def closure(x: np.ndarray, pauses: np.ndarray) -> float | None:
    ok = pauses & np.isfinite(x)
    return _round(float((x[ok] < CLOSED_FH).mean())) if ok.any() else None


def p5_95(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, 95) - np.percentile(x, 5)) if len(x) else None


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


def rig_lip_gap(motion: np.ndarray, avatar) -> np.ndarray:
    """Lip gap 13-14 over face height 10-152 of the avatar's rig as the renderer deforms it."""
    from engine.motion.space import MotionFrame
    from engine.render.warp.deform import MeshDeformer

    deformer = MeshDeformer(avatar)
    idx = [UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN]
    pts = np.stack([deformer.expression(MotionFrame.from_vector(m))[idx] for m in motion])
    down = pts[:, 3] - pts[:, 2]
    height = np.linalg.norm(down, axis=1)
    gap = np.einsum("td,td->t", pts[:, 1] - pts[:, 0], down) / height
    return np.maximum(gap, 0.0) / height


def stage_curves(audio: np.ndarray, grid: np.ndarray, config, avatar_path: Path, work: Path,
                 on_stage=lambda name: None) -> tuple[dict[str, np.ndarray], dict]:
    """The stages for ``audio`` (16 kHz mono, starting at t = 0) on ``grid``."""
    import asyncio

    from engine.avatar.asset import load_avatar
    from engine.offline_render import render_to_mp4
    from engine.motion.generators import create_generator
    from engine.training.align import align
    from engine.training.evaluate import stream
    from engine.training.teacher import ArticulationStyle, teacher_motion
    from engine.training.metrics import mouth_opening

    out, info = {}, {}
    on_stage("align")
    al = align(audio, None, "asr")
    info["text"] = al.text
    teacher = teacher_motion(audio, AUDIO_RATE, al.phones, al.starts, al.ends, FPS,
                             ArticulationStyle.neutral(), seed=0)
    out["teacher"] = motion_on_grid(mouth_opening(teacher), grid)
    out["fitted"] = np.full(len(grid), np.nan)
    if Path(TEACHER_OPENING).is_file():
        from engine.training.teacher_opening import OpeningTable, opening_curve
        table = OpeningTable.load(TEACHER_OPENING)
        out["fitted"] = motion_on_grid(opening_curve(al.phones, al.starts, al.ends, len(teacher), table), grid)
    on_stage("model")
    gen = create_generator(config)
    info["generator"] = type(gen).__name__
    motion = stream(gen, audio, AUDIO_RATE * 40 // 1000, seed=config.motion.seed)
    out["model"] = motion_on_grid(mouth_opening(motion), grid)
    out["rig"] = motion_on_grid(rig_lip_gap(motion, load_avatar(avatar_path)), grid)
    on_stage("render")
    mp4 = work / "render.mp4"
    asyncio.run(render_to_mp4(config, audio, AUDIO_RATE, mp4, avatar=avatar_path, progress=False))
    on_stage("track render")
    _, a0 = probe(mp4)
    out["render"] = on_grid(*mouth_curve(mp4, a0), grid)
    out["loudness"] = log_rms(audio, grid)
    return out, info


def eval_clip(video: str | Path, config, avatar_path: str | Path, on_stage=lambda name: None,
              correct_sync: bool = True) -> tuple[dict, ClipCurves]:
    """Measure one real talking video: per-stage comparison dict + the curves (for plots)."""
    from engine.audio.pcm import load_audio
    from engine.config import replace

    video, avatar_path = Path(video), Path(avatar_path).resolve()
    if not avatar_path.is_file():
        raise LipsyncEvalError(f"avatar {avatar_path} does not exist")
    config = replace(config, render={"avatar": str(avatar_path)})
    v0, a0 = probe(video)
    audio, _ = load_audio(video, AUDIO_RATE)
    grid = np.arange(int(len(audio) / AUDIO_RATE * GRID_HZ)) / GRID_HZ
    on_stage("track video")
    real = on_grid(*mouth_curve(video, a0), grid)
    with tempfile.TemporaryDirectory(prefix="lipsync_") as tmp:
        stages, info = stage_curves(audio, grid, config, avatar_path, Path(tmp), on_stage)
    pauses = pause_mask(stages["loudness"])
    raw = real
    shift = clip_sync(real, stages["teacher"]) if correct_sync else 0
    real = shifted(raw, shift)
    res = {"clip": video.name, "path": str(video), "duration_s": round(len(audio) / AUDIO_RATE, 2),
           "video_start_minus_audio_start_ms": round(1000 * (v0 - a0)), "text": info["text"],
           "generator": info["generator"], "pause_share": _round(float(pauses.mean())),
           "real": {"pause_closure": closure(real, pauses), "p5_95_range": _round(p5_95(real), 4)},
           "sync_shift_ms": shift,
           "stages": {s: compare(real, stages[s], pauses, s in FACE_HEIGHT_STAGES) for s in STAGES}}
    for s in STAGES:
        res["stages"][s]["r_uncorrected"] = (res["stages"][s]["r"] if shift == 0 else
                                             compare(raw, stages[s], pauses, False)["r"])
    res["flags"] = [f"{s}: best lag at the sweep edge ({res['stages'][s]['sweep_best_lag_ms']:+d} ms), "
                    "sync of this clip is suspect" for s in ("loudness", "render") if res["stages"][s]["peak_at_edge"]]
    return res, ClipCurves(grid, real, stages, pauses, info["text"])


def summarize(results: list[dict]) -> dict:
    """Means per stage over clips, and the share of clips where the render beats loudness."""
    def mean(vals):
        vals = [v for v in vals if v is not None]
        return _round(float(np.mean(vals))) if vals else None

    def table(rs):
        t = {s: {k: mean([r["stages"][s].get(k) for r in rs]) for k in ("r", "lag_ms", "sweep_best_lag_ms",
                                                                         "pause_closure", "range_ratio", "r_uncorrected")}
             for s in STAGES}
        t["real"] = {"pause_closure": mean([r["real"]["pause_closure"] for r in rs])}
        pairs = [(r["stages"]["render"]["r"], r["stages"]["loudness"]["r"]) for r in rs]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        t["render_beats_loudness_share"] = _round(sum(a > b for a, b in pairs) / len(pairs)) if pairs else None
        t["clips"] = len(rs)
        return t

    out = {"all": table(results)}
    clean = [r for r in results if not r["flags"]]
    if len(clean) < len(results) and clean:
        out["unflagged"] = table(clean)
    return out


def load_split(path: str | Path, subset: str, media_dir: str | Path) -> list[tuple[str, Path]]:
    """(speaker, clip path) for ``subset`` of a split file; checks that speakers are disjoint."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LipsyncEvalError(f"cannot read split file {path}: {e}") from e
    if subset not in ("train", "test"):
        raise LipsyncEvalError(f"unknown subset {subset!r} (train or test)")
    speakers = {s: {e["speaker"] for e in data.get(s, [])} for s in ("train", "test")}
    both = speakers["train"] & speakers["test"]
    if both:
        raise LipsyncEvalError(f"{path}: speakers in both train and test: {sorted(both)}")
    clips = [(e["speaker"], Path(media_dir) / c) for e in data.get(subset, []) for c in e["clips"]]
    if not clips:
        raise LipsyncEvalError(f"{path}: no clips in [{subset}]")
    return clips
