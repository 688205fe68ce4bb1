"""A lip-opening teacher fitted to real faces: per-phone openings learned by regression.

The hand-made viseme table (``visemes.py``) gives every phone a jaw target; on real speakers it
reaches r ~0.42 against the real inner-lip gap. This module learns the opening from real talking
video instead (``facecast train teacher --corpus data/real_av``):

* one control, the lip opening, pulled by every phone towards its own target ``theta[phone]``
  with a dominance that falls off ``exp(-(d / tau) ** power)`` around the phone's core
  (anticipation ``tau`` before the centre, carry-over after it), blended as a dominance-weighted
  mean, exactly like the hand teacher's controls;
* pauses are two phones (``sil`` for pauses longer than ``short_pause_s``, ``sil_short`` for the
  hesitations inside speech), and the last ``inhale_s`` of a pause before speech is ``inhale``:
  the pre-speech posture is a fitted value, not a rule;
* the curve is linear in ``theta`` once the timing is fixed, so ``theta`` is a ridge least-squares
  fit (shrunk towards the hand table) of every tracked frame of every clip, each clip's real
  opening scaled to unit standard deviation (per-speaker amplitude out); the timing
  (anticipation, carry-over) is chosen on the training clips' mean r;
* ``units_per_std`` turns the fitted curve back into weight units (the median clip's std of its
  real opening) and ``ArticulationStyle.jaw_scale`` gives each synthetic speaker its amplitude.

:func:`apply_opening` relabels teacher motion with it: the hand teacher keeps rounding, spreading,
seals and presses, and ``jawOpen`` is set so that ``metrics.mouth_opening`` equals the fitted
opening (the same rule real-video targets use). The table is a small JSON file
(``assets/teacher_opening.json``) that training reads with ``--teacher-opening``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.training import visemes

FPS = 25
PHONES: tuple[str, ...] = tuple(sorted(set(visemes.VISEMES) | {"sil_short"}))
DOMINANCE = 1.0                 # every phone pulls equally (fitted: the table's dominances did no better)
CORE_FRACTION = 0.35            # flat dominance over this fraction of the phone either side of its centre
PAUSE_EDGE_S = 0.06             # a pause's own target yields to its neighbours this close to them
REST_WEIGHT = 0.01              # weak pull to 0 where no phone is near
OFFGLIDE_AT = 0.55              # a diphthong's offglide takes over at this fraction of the phone
ANTICIPATION_GRID_S = (0.04, 0.05, 0.06, 0.08, 0.1)
CARRYOVER_GRID_S = (0.03, 0.04, 0.05, 0.07)
RIDGE = 0.3                     # shrinkage towards the hand table, per 1000 frames
MIN_CLIP_FRAMES = 50
LAG_FRAMES = 1                  # r is taken at the best lag within +-1 frame (+-40 ms)


class TeacherOpeningError(ValueError):
    """A table that cannot be used (unreadable, wrong phones, not finite) or a corpus too small."""


@dataclass(frozen=True)
class OpeningTable:
    theta: dict[str, float]               # per phone, in units of the clip's std of opening
    anticipation_s: float = 0.05
    carryover_s: float = 0.04
    power: float = 1.5
    short_pause_s: float = 0.25
    inhale_s: float = 0.3
    units_per_std: float = 0.25           # weight units (mouth_opening) per fitted unit
    fitted: dict = field(default_factory=dict)   # what it was fitted on and how well it fits

    def validate(self) -> "OpeningTable":
        missing = [p for p in PHONES if p not in self.theta]
        if missing:
            raise TeacherOpeningError(f"teacher opening table lacks phones {missing}")
        nums = [*self.theta.values(), self.anticipation_s, self.carryover_s, self.power, self.short_pause_s,
                self.inhale_s, self.units_per_std]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in nums):
            raise TeacherOpeningError("teacher opening table has non-finite values")
        if min(self.anticipation_s, self.carryover_s, self.power, self.units_per_std) <= 0:
            raise TeacherOpeningError("teacher opening table: timings, power and units must be > 0")
        return self

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "OpeningTable":
        try:
            d = json.loads(Path(path).read_text())
            table = cls(**d)
        except (OSError, json.JSONDecodeError, TypeError) as e:
            raise TeacherOpeningError(f"{path}: not a teacher opening table: {e}") from e
        return table.validate()


def _subtargets(phones, starts, ends, table: OpeningTable) -> list[tuple[str, float, float]]:
    out = []
    for i, (ph, s, e) in enumerate(zip(phones, starts, ends)):
        s, e = float(s), float(e)
        d = max(e - s, 1e-3)
        if ph == "sil":
            name = "sil" if d > table.short_pause_s else "sil_short"
            follows = i + 1 < len(phones) and phones[i + 1] != "sil"
            if follows and table.inhale_s > 0 and d >= 2 * table.inhale_s:
                out += [(name, s, e - table.inhale_s), ("inhale", e - table.inhale_s, e)]
            else:
                out.append((name, s, e))
            continue
        glide = visemes.offglide(ph)
        if glide is None:
            out.append((ph, s, e))
        else:
            out += [(ph, s, s + OFFGLIDE_AT * d), (glide, s + OFFGLIDE_AT * d, e)]
    return out


def design(phones, starts, ends, times: np.ndarray, table: OpeningTable) -> np.ndarray:
    """(len(times), len(PHONES)): each phone's normalised dominance at each instant; the opening
    curve is ``design @ theta``."""
    index = {p: i for i, p in enumerate(PHONES)}
    a = np.zeros((len(times), len(PHONES)))
    total = np.full(len(times), REST_WEIGHT)
    for ph, s, e in _subtargets(phones, starts, ends, table):
        if ph not in index:
            raise TeacherOpeningError(f"unknown phone {ph!r}")
        half = 0.5 * (e - s)
        dt = times - 0.5 * (s + e)
        core = max(half - PAUSE_EDGE_S, 2 * CORE_FRACTION * half) if ph.startswith("sil") else 2 * CORE_FRACTION * half
        dist = np.maximum(np.abs(dt) - core, 0.0)
        tau = np.where(dt < 0, table.anticipation_s, table.carryover_s)
        w = DOMINANCE * np.exp(-np.power(dist / tau, table.power))
        a[:, index[ph]] += w
        total += w
    return a / total[:, None]


def opening_curve(phones, starts, ends, n_frames: int, table: OpeningTable, fps: int = FPS) -> np.ndarray:
    """(n_frames,) lip opening in weight units at the instants k/fps (>= 0)."""
    theta = np.array([table.theta[p] for p in PHONES])
    times = np.arange(n_frames) / fps
    return np.maximum(design(phones, starts, ends, times, table) @ theta, 0.0) * table.units_per_std


def apply_opening(motion: np.ndarray, phones, starts, ends, table: OpeningTable, jaw_scale: float = 1.0,
                  fps: int = FPS) -> np.ndarray:
    """Teacher ``motion`` (T, >=52) relabelled so that its lip opening is the fitted one."""
    from engine.training.metrics import with_opening

    target = opening_curve(phones, starts, ends, len(motion), table, fps) * jaw_scale
    return with_opening(motion, target)


# --- fitting -----------------------------------------------------------------------------------

def _clips(corpus: Path):
    from engine.training.dataset import read_manifest
    from engine.training.metrics import mouth_opening

    for row in read_manifest(corpus):
        z = np.load(corpus / row["path"])
        if "mouth_valid" not in z.files:
            continue              # not a real-video clip: nothing real to fit
        real = mouth_opening(z["motion"]).astype(np.float64)
        valid = z["mouth_valid"] > 0.5
        if valid.sum() < MIN_CLIP_FRAMES or real[valid].std() <= 0:
            continue
        yield {"id": row["id"], "voice": row.get("voice", "?"), "real": np.where(valid, real, np.nan),
               "phones": [str(p) for p in z["phones"]], "starts": z["phone_starts"], "ends": z["phone_ends"]}


def best_r(real: np.ndarray, x: np.ndarray, max_lag: int = LAG_FRAMES) -> float:
    """Pearson r at the best lag within +-max_lag frames (NaN frames left out; -1 if none)."""
    from engine.training.lipsync_eval import lag_sweep

    rs = [v for v in lag_sweep(real, x, max_lag * 1000 // FPS, FPS).values() if math.isfinite(v)]
    return max(rs, default=-1.0)


def _hand_opening(c: dict) -> np.ndarray:
    """The hand teacher's opening (neutral speaker) for a clip's phones, one value per frame."""
    from engine.training.metrics import mouth_opening
    from engine.training.teacher import ArticulationStyle, teacher_mouth

    n = len(c["real"])
    return mouth_opening(teacher_mouth(c["phones"], c["starts"], c["ends"], n / FPS, FPS, ArticulationStyle.neutral()))[:n]


def _prior(units_per_std: float) -> np.ndarray:
    """The hand table's jaw targets in fitted units (pauses: the rest jaw)."""
    return np.array([visemes.targets("sil" if p.startswith("sil") else p)["jaw"][0] for p in PHONES]) / units_per_std


def _solve(clips: list[dict], table: OpeningTable, ridge: float) -> np.ndarray:
    rows, ys = [], []
    for c in clips:
        ok = np.isfinite(c["real"])
        times = np.arange(len(c["real"])) / FPS
        rows.append(design(c["phones"], c["starts"], c["ends"], times, table)[ok])
        ys.append(c["real"][ok] / np.nanstd(c["real"]))
    a, y = np.concatenate(rows), np.concatenate(ys)
    lam = ridge * len(y) / 1000.0
    return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y + lam * _prior(table.units_per_std))


def clip_scores(clips: list[dict], table: OpeningTable) -> list[float]:
    return [best_r(c["real"], opening_curve(c["phones"], c["starts"], c["ends"], len(c["real"]), table))
            for c in clips]


def fit_opening(corpus: str | Path, progress=lambda msg: None, ridge: float = RIDGE) -> OpeningTable:
    """Fit the table on a real-video corpus (``facecast data real-av``); see the module docstring."""
    corpus = Path(corpus)
    clips = list(_clips(corpus))
    if len(clips) < 2:
        raise TeacherOpeningError(f"{corpus}: needs at least 2 real-video clips with a tracked face "
                                  f"(facecast data real-av), found {len(clips)}")
    units = float(np.median([np.nanstd(c["real"]) for c in clips]))
    best = None
    grid = [(a, c) for a in ANTICIPATION_GRID_S for c in CARRYOVER_GRID_S]
    for i, (ant, carry) in enumerate(grid):
        trial = OpeningTable(theta={p: 0.0 for p in PHONES}, anticipation_s=ant, carryover_s=carry, units_per_std=units)
        theta = _solve(clips, trial, ridge)
        trial = OpeningTable(**{**asdict(trial), "theta": dict(zip(PHONES, map(float, theta)))})
        r = float(np.mean(clip_scores(clips, trial)))
        progress(f"[{i + 1}/{len(grid)}] anticipation {ant * 1000:.0f} ms, carry-over {carry * 1000:.0f} ms: "
                 f"mean r {r:.3f}")
        if best is None or r > best[0]:
            best = (r, trial)
    r, table = best
    hand = [best_r(c["real"], _hand_opening(c)) for c in clips]
    theta = {p: round(v, 4) for p, v in table.theta.items()}
    return OpeningTable(**{**asdict(table), "theta": theta, "units_per_std": round(units, 4), "fitted": {
        "corpus": str(corpus), "clips": len(clips), "speakers": len({c["voice"] for c in clips}),
        "frames": int(sum(np.isfinite(c["real"]).sum() for c in clips)), "ridge": ridge,
        "mean_r_train": round(r, 4), "hand_teacher_mean_r_train": round(float(np.mean(hand)), 4)}}).validate()


def compare_on(corpus: str | Path, table: OpeningTable) -> dict:
    """Per clip r of the hand teacher and the fitted one against the real opening of ``corpus``
    (e.g. the test speakers' ``facecast data real-av --subset test``)."""
    rows = []
    for c in _clips(Path(corpus)):
        fitted = opening_curve(c["phones"], c["starts"], c["ends"], len(c["real"]), table)
        rows.append({"clip": c["id"], "hand": round(best_r(c["real"], _hand_opening(c)), 3),
                     "fitted": round(best_r(c["real"], fitted), 3)})
    if not rows:
        raise TeacherOpeningError(f"{corpus}: no real-video clips")
    return {"clips": rows, "mean_hand": round(float(np.mean([r["hand"] for r in rows])), 3),
            "mean_fitted": round(float(np.mean([r["fitted"] for r in rows])), 3)}
