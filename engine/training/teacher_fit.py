"""How the hand-made teacher compares with real mouths, phone by phone (a regression on real faces).

Input: a real-video corpus (``facecast data real-av``): aligned phones and, per frame, the real
speaker's mouth opening (``metrics.mouth_opening`` of its motion, in weight units; frames without a
tracked face are left out). For every phone occurrence the real opening at its centre is compared
with the teacher's opening for the same phones. Per speaker, openings are divided by the speaker's
median opening on vowels (per-speaker amplitude), so a phone's value says how open it is relative
to that speaker's typical vowel. Least squares then gives, per phone, the real relative opening
(the mean over its occurrences) next to the teacher's; ``jaw_scale`` per phone = real / teacher is
what the teacher's viseme jaw target would need to match real faces. Also reported: per-speaker
amplitude (their vowel median in face heights), the opening in pauses and in the 0.3 s before
speech starts (pre-speech posture) relative to the vowel median.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from engine.training.metrics import mouth_opening

FPS = 25
PRE_SPEECH_S = 0.3
MIN_COUNT = 8


def _rows(corpus: Path):
    from engine.training.dataset import read_manifest
    for row in read_manifest(corpus):
        z = np.load(corpus / row["path"])
        yield row, z


def fit(corpus: str | Path) -> dict:
    from engine.training.real_av import OPENING_PER_UNIT
    from engine.training.teacher import ArticulationStyle, teacher_mouth
    from engine.training.visemes import VOWELS

    corpus = Path(corpus)
    real_rel, teach_rel = defaultdict(list), defaultdict(list)
    speakers, pause_rel, pre_rel = {}, [], []
    for row, z in _rows(corpus):
        motion = z["motion"]
        tracked = z["mouth_valid"] > 0.5 if "mouth_valid" in z.files else np.ones(len(motion), bool)
        real = mouth_opening(motion)
        phones, starts, ends = list(z["phones"]), z["phone_starts"], z["phone_ends"]
        dur = len(z["audio"]) / int(z["sample_rate"])
        teacher = np.zeros_like(motion)
        teacher[:, :52] = teacher_mouth(phones, starts, ends, dur, FPS, ArticulationStyle.neutral())
        teach = mouth_opening(teacher)
        centres = [(p, int(round((s + e) / 2 * FPS))) for p, s, e in zip(phones, starts, ends)]
        centres = [(p, k) for p, k in centres if 0 <= k < len(real) and tracked[k]]
        vowel_real = [real[k] for p, k in centres if p in VOWELS]
        vowel_teach = [teach[k] for p, k in centres if p in VOWELS]
        if len(vowel_real) < MIN_COUNT:
            continue
        rs, ts = max(np.median(vowel_real), 1e-3), max(np.median(vowel_teach), 1e-3)
        spk = row.get("voice", "?")
        speakers.setdefault(spk, []).append(float(rs * OPENING_PER_UNIT))
        for p, k in centres:
            real_rel[p].append(real[k] / rs)
            teach_rel[p].append(teach[k] / ts)
        for p, s, e in zip(phones, starts, ends):
            if p != "sil" or e - s < 0.25:
                continue
            a, b = int(np.ceil(s * FPS)), int(np.floor(e * FPS))
            pause_rel.extend(real[a:b][tracked[a:b]] / rs)
            onset = int(e * FPS)
            pre = slice(max(a, onset - int(PRE_SPEECH_S * FPS)), onset)
            pre_rel.extend(real[pre][tracked[pre]] / rs)
    table = {}
    for p in sorted(real_rel, key=lambda q: -len(real_rel[q])):
        if len(real_rel[p]) < MIN_COUNT:
            continue
        r, t = float(np.mean(real_rel[p])), float(np.mean(teach_rel[p]))
        table[p] = {"n": len(real_rel[p]), "real": round(r, 3), "teacher": round(t, 3),
                    "jaw_scale": round(r / t, 2) if t > 0.05 else None}
    r_all = np.concatenate([real_rel[p] for p in table])
    t_all = np.concatenate([teach_rel[p] for p in table])
    return {"phones": table, "teacher_vs_real_r": round(float(np.corrcoef(r_all, t_all)[0, 1]), 3),
            "speaker_vowel_opening_fh": {k: round(float(np.mean(v)), 4) for k, v in speakers.items()},
            "pause_opening_rel": round(float(np.mean(pause_rel)), 3) if pause_rel else None,
            "pre_speech_opening_rel": round(float(np.mean(pre_rel)), 3) if pre_rel else None}
