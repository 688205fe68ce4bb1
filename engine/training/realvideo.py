"""Real-speech check: does predicted jawOpen follow a real speaker's mouth?

The video's audio (engine.audio.pcm.load_audio -> 16 kHz mono) goes through the generators as a stream; the real
mouth opening is tracked with mediapipe face mesh: inner-lip distance (landmarks 13-14)
divided by face height (10-152). All curves are compared at 100 Hz: Pearson r at lag 0 and the
best r within +-80 ms (lag > 0: the prediction is late), for the model, the baseline and the
plain loudness envelope; for each generator both its jawOpen curve and, with an avatar, the
inner-lip gap (13-14) its full blendshape output opens on the avatar's rig (what people see).
A hand check for people (media are never part of tests or commits).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.audio.pcm import load_audio
from engine.training import metrics as M

UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152
MAX_LAG_S = 0.08


def lip_gap_per_frame(video: str | Path, refine_landmarks: bool = False) -> tuple[np.ndarray, float]:
    """(inner-lip gap 13-14 / face height 10-152 per video frame, NaN where no face; video fps)."""
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    values = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                         refine_landmarks=refine_landmarks) as fm:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            res = fm.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not res.multi_face_landmarks:
                values.append(np.nan)
                continue
            lm = res.multi_face_landmarks[0].landmark
            h, w = frame.shape[:2]
            p = lambda i: np.array([lm[i].x * w, lm[i].y * h])  # noqa: E731
            values.append(np.linalg.norm(p(UPPER_LIP) - p(LOWER_LIP)) / np.linalg.norm(p(FOREHEAD) - p(CHIN)))
    cap.release()
    return np.array(values, np.float64), float(fps)


def track_mouth(video: str | Path) -> tuple[np.ndarray, float]:
    """(per-frame mouth opening / face height, video fps); NaN-free (gaps interpolated)."""
    v, fps = lip_gap_per_frame(video)
    if np.isnan(v).all():
        raise ValueError(f"no face found in {video}")
    idx = np.arange(len(v))
    v[np.isnan(v)] = np.interp(idx[np.isnan(v)], idx[~np.isnan(v)], v[~np.isnan(v)])
    return v, fps


def _corr(pred: np.ndarray, real: np.ndarray) -> dict:
    r = M.pearson_at_lags(pred, real, int(MAX_LAG_S * M.ENVELOPE_HZ))
    best = max(r, key=r.get)
    return {"r_lag0": round(r[0], 4), "r_best": round(r[best], 4), "best_lag_ms": 1000 * best / M.ENVELOPE_HZ}


def rig_lip_gap(motion: np.ndarray, avatar) -> np.ndarray:
    """Inner-lip distance (landmarks 13-14) of the avatar's rig for each motion frame."""
    d = avatar.rig_deltas[:, [UPPER_LIP, LOWER_LIP], :]                       # (52, 2, 3)
    pts = avatar.rig_neutral[[UPPER_LIP, LOWER_LIP]][None] + np.einsum("tk,kpd->tpd", motion[:, :52], d)
    return np.linalg.norm(pts[:, 0] - pts[:, 1], axis=1)


def real_video_check(video: str | Path, model, baseline, avatar=None) -> dict:
    from engine.training.evaluate import stream

    audio, _ = load_audio(video, MODEL_RATE)
    mouth, vfps = track_mouth(video)
    n = min(len(audio) // (MODEL_RATE // M.ENVELOPE_HZ), int(len(mouth) / vfps * M.ENVELOPE_HZ))
    real = M.upsample(mouth, vfps, M.ENVELOPE_HZ, n)
    jaw = M.INDEX["jawOpen"]
    out = {"seconds": round(n / M.ENVELOPE_HZ, 2)}
    for name, gen in (("model", model), ("baseline", baseline)):
        m = stream(gen, audio, 640)
        out[name] = _corr(M.upsample(m[:, jaw], 25, M.ENVELOPE_HZ, n), real)
        if avatar is not None:
            out[name + "_lipgap"] = _corr(M.upsample(rig_lip_gap(m, avatar), 25, M.ENVELOPE_HZ, n), real)
    out["loudness"] = _corr(M.audio_envelope(audio)[:n], real)
    return out
