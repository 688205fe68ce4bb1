"""Train the few-step diffusion model on a speech corpus.

Deterministic for a given corpus, seed and step count (one CPU thread by default), so the
shipped weights can be reproduced: the exact command is stored in the checkpoint's metadata.
Objective: x0 prediction under the cosine schedule on randomly noised motion windows with a
random known prefix (the already-emitted frames at run time), loss only on the new frames,
mouth/jaw dimensions weighted up. An EMA of the weights is what gets saved.

Fine-tuning (``init``): start from a checkpoint and keep its spec and normalisation statistics;
``extra_corpus`` (e.g. real-video targets, ``engine.training.real_av``) is mixed in, each of its
utterances sampled ``extra_weight`` times as often per frame. ``opening_loss`` adds a term centred
on the lip opening (``metrics.OPENING_TERMS`` of the predicted clean motion): 1 - concordance
correlation + L1, with frames whose target opening is nearly closed (b/p/m, pauses) weighted up
``CLOSED_WEIGHT`` times, so closures count as much as openings. ``teacher_lead_ms``: teacher
targets (not real-video ones) show the mouth that far ahead of the sound, as real mouths do
(``dataset.lead_articulation``). ``real_opening_std``: every real-video clip's lip opening is
scaled to one std (``dataset.scale_opening``): how wide a speaker opens is not in the audio.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.motion.space import ARKIT_NAMES, NUM_BLENDSHAPES, VECTOR_DIM

EVAL_DIMS = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthClose")
CLOSED_OPENING = 0.05      # target opening (weight units) below which a frame counts as closed
CLOSED_WEIGHT = 3.0


@dataclass(frozen=True)
class TrainOptions:
    """What one training run does (``facecast train audio2motion`` fills it from its options)."""
    corpus: str | Path
    out: str | Path = "assets/audio2motion.pt"
    steps: int = 6000
    batch: int = 16               # crops per step (each crop = crop/window windows)
    crop: int = 32                # frames per crop
    lr: float = 2e-3
    seed: int = 0
    threads: int = 1              # torch intra-op threads
    limit: int | None = None      # use at most this many utterances (smoke tests)
    quiet_clips: int = 40         # listening/idle clips added for the state control
    lookahead_ms: int = 50        # future audio per frame (multiple of 10 ms)
    mask_inhale: bool = False     # leave the teacher's pre-speech inhale out of the jaw/mouth loss
    eval_every: int = 500
    progress: bool = True
    init: str | Path | None = None          # fine-tune from this checkpoint (keeps its spec and stats)
    extra_corpus: tuple = ()                # more corpora mixed in (e.g. real-video targets, real speech)
    extra_weight: float = 1.0               # sampling weight per frame of the extra corpus
    opening_loss: float = 0.0               # weight of the lip-opening term (CCC + L1)
    teacher_lead_ms: float = 0.0            # teacher targets show the mouth this far ahead of the sound
    teacher_opening: str | Path | None = None   # lip-opening table fitted to real faces (facecast train teacher)
    real_opening_std: float | None = None   # real-video targets: each clip's opening scaled to this std

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.crop < 8:
            raise ValueError(f"steps and batch must be >= 1 and crop >= 8 (got {self.steps}, {self.batch}, {self.crop})")
        if self.lookahead_ms < 0 or self.lookahead_ms % 10:
            raise ValueError(f"lookahead_ms must be a non-negative multiple of 10 (got {self.lookahead_ms})")
        if isinstance(self.extra_corpus, (str, Path)):
            object.__setattr__(self, "extra_corpus", (self.extra_corpus,))
        if not 0 <= self.teacher_lead_ms <= 80:
            raise ValueError(f"teacher_lead_ms must be within 0..80 ms (got {self.teacher_lead_ms})")
        if self.real_opening_std is not None and not 0 < self.real_opening_std <= 1:
            raise ValueError(f"real_opening_std must be within (0, 1] weight units (got {self.real_opening_std})")
        if self.extra_weight <= 0 or self.opening_loss < 0:
            raise ValueError(f"extra_weight must be > 0 and opening_loss >= 0 (got {self.extra_weight}, {self.opening_loss})")


def mouth_weights() -> np.ndarray:
    w = np.ones(VECTOR_DIM, np.float32)
    for i, n in enumerate(ARKIT_NAMES):
        if n.startswith(("jaw", "mouth")):
            w[i] = 3.0
    return w


def train(opts: TrainOptions) -> dict:
    """Train, write ``opts.out`` (the EMA weights + metadata) and return the run's summary."""
    import torch
    from tqdm import tqdm

    from engine.training import dataset as D
    from engine.motion.model.checkpoint import load_checkpoint, save_checkpoint
    from engine.motion.model.spec import ModelMeta, ModelSpec
    from engine.motion.model.net import MOUTH_DIMS, Audio2Motion, count_parameters
    from engine.motion.features import MelSpec

    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    init_model, init_meta = load_checkpoint(opts.init) if opts.init else (None, None)
    spec = init_meta.spec if init_meta else ModelSpec(lookahead_mel=opts.lookahead_ms // 10)
    t_start = time.time()
    lead = opts.teacher_lead_ms
    from engine.training.teacher_opening import OpeningTable
    opening = OpeningTable.load(opts.teacher_opening) if opts.teacher_opening else None
    train_utts = D.load_corpus(opts.corpus, ("train",), spec, limit=opts.limit, mask_inhale=opts.mask_inhale,
                               teacher_lead_ms=lead, teacher_opening=opening)
    extra = [u for c in opts.extra_corpus for u in D.load_corpus(c, ("train",), spec, limit=opts.limit,
                                                                 teacher_lead_ms=lead, teacher_opening=opening,
                                                                 real_opening_std=opts.real_opening_std)]
    val_utts = D.load_corpus(opts.corpus, ("val",), spec, limit=opts.limit and max(4, opts.limit // 10),
                             teacher_lead_ms=lead, teacher_opening=opening) \
        if any(r.get("split") == "val" for r in D.read_manifest(opts.corpus)) else train_utts[:4]
    quiet = D.quiet_clips(opts.quiet_clips, 16.0, spec, opts.seed) if opts.quiet_clips else []
    stats = init_meta.mel_norm if init_meta else D.mel_stats(train_utts)
    pool = train_utts + extra + quiet
    weights = np.r_[np.ones(len(train_utts)), np.full(len(extra), opts.extra_weight), np.ones(len(quiet))]
    sampler = D.WindowSampler(pool, D.normalise_all(pool, stats), spec, opts.crop, opts.seed, weights=weights)
    val_sampler = D.WindowSampler(val_utts, D.normalise_all(val_utts, stats), spec, opts.crop, opts.seed + 1)
    n_speech_s = sum(len(u.audio) for u in train_utts) / MODEL_RATE
    n_extra_s = sum(len(u.audio) for u in extra) / MODEL_RATE
    for u in pool + val_utts:                          # the samplers hold what training needs
        u.audio, u.mel = u.audio[:0], u.mel[:0]
    probe = [sampler.sample(64)[1] for _ in range(8)]
    cat = np.concatenate([p.reshape(-1, VECTOR_DIM) for p in probe])
    floor = np.r_[np.full(NUM_BLENDSHAPES, 0.02), np.full(VECTOR_DIM - NUM_BLENDSHAPES, 0.005)]
    m_mean, m_std = cat.mean(0), np.maximum(cat.std(0), floor)
    if init_meta:     # the network's input/output scales stay those it was trained with
        m_mean, m_std = np.asarray(init_meta.motion_mean, np.float32), np.asarray(init_meta.motion_std, np.float32)
    meta = ModelMeta(spec=spec, mel_spec=MelSpec(), mel_mean=stats.mean.tolist(), mel_std=stats.std.tolist(),
                     norm_time_constant_frames=stats.time_constant_frames, norm_gate_db=stats.gate_db,
                     norm_prior_frames=stats.prior_frames,
                     motion_mean=m_mean.tolist(), motion_std=m_std.tolist(), diffusion_steps=2)
    if init_meta:
        meta.draw_temperature = init_meta.draw_temperature
    print(f"[train] {len(train_utts)} train utterances ({n_speech_s / 60:.1f} min), {len(extra)} extra "
          f"({n_extra_s / 60:.1f} min, weight {opts.extra_weight}), {len(val_utts)} val, "
          f"{len(quiet)} listening/idle clips; loaded in {time.time() - t_start:.0f} s", flush=True)

    model = init_model.train() if init_model is not None else Audio2Motion(spec)
    ema = Audio2Motion(spec)
    ema.load_state_dict(model.state_dict())
    print(f"[train] {count_parameters(model) / 1e6:.2f} M parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / opts.steps))))
    mean_t, std_t = torch.tensor(m_mean, dtype=torch.float32), torch.tensor(m_std, dtype=torch.float32)
    dim_w = torch.tensor(mouth_weights())
    mouth_sel = torch.zeros(VECTOR_DIM)
    mouth_sel[list(MOUTH_DIMS)] = 1.0
    rng = np.random.default_rng(opts.seed + 7)
    W = spec.window
    val_batch = val_sampler.sample(64)
    history = []
    bar = tqdm(range(opts.steps), disable=not opts.progress, desc="train audio2motion", file=sys.stdout,
               mininterval=5.0)
    smooth = None
    for step in bar:
        mel, mot, valid, cond = sampler.sample(opts.batch)
        loss = _loss(model, spec, torch.from_numpy(mel), (torch.from_numpy(mot) - mean_t) / std_t,
                     torch.from_numpy(valid), torch.from_numpy(cond), dim_w, rng, W,
                     torch.from_numpy(sampler.last_mouth_valid), mouth_sel,
                     opening=(opts.opening_loss, mean_t, std_t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if (step + 1) % opts.eval_every == 0 or step + 1 == opts.steps:
            mae = _val_mae(ema, spec, val_batch, mean_t, std_t)
            history.append({"step": step + 1, "loss": round(smooth, 5), "val_mouth_mae": round(mae, 5)})
            bar.set_postfix(loss=f"{smooth:.4f}", val_mae=f"{mae:.4f}")
            if not opts.progress:
                print(f"[train] step {step + 1}: loss {smooth:.4f} val mouth MAE {mae:.4f}", flush=True)
        elif step % 50 == 0:
            bar.set_postfix(loss=f"{smooth:.4f}")
    minutes = (time.time() - t_start) / 60
    meta.train = {"corpus": str(opts.corpus), "steps": opts.steps, "batch": opts.batch, "crop": opts.crop,
                  "lr": opts.lr, "seed": opts.seed, "threads": opts.threads, "minutes": round(minutes, 1),
                  "train_utterances": len(train_utts), "train_speech_min": round(n_speech_s / 60, 1),
                  "lookahead_ms": spec.lookahead_mel * 10, "mask_inhale": bool(opts.mask_inhale),
                  "init": str(opts.init) if opts.init else None, "init_train": init_meta.train if init_meta else None,
                  "extra_corpus": [str(c) for c in opts.extra_corpus],
                  "extra_speech_min": round(n_extra_s / 60, 1), "extra_weight": opts.extra_weight,
                  "opening_loss": opts.opening_loss, "teacher_lead_ms": lead, "history": history,
                  "teacher_opening": str(opts.teacher_opening) if opts.teacher_opening else None,
                  "real_opening_std": opts.real_opening_std,
                  "command": f"facecast train audio2motion --corpus {opts.corpus} --out {opts.out} "
                             f"--steps {opts.steps} --batch {opts.batch} --seed {opts.seed}"
                             + (f" --lr {opts.lr}" if opts.lr != 2e-3 else "")
                             + (f" --lookahead-ms {opts.lookahead_ms}" if opts.lookahead_ms != 50 else "")
                             + (" --mask-inhale" if opts.mask_inhale else "")
                             + (f" --init {opts.init}" if opts.init else "")
                             + "".join(f" --extra-corpus {c}" for c in opts.extra_corpus)
                             + (f" --extra-weight {opts.extra_weight}" if opts.extra_corpus else "")
                             + (f" --opening-loss {opts.opening_loss}" if opts.opening_loss else "")
                             + (f" --teacher-lead-ms {lead:g}" if lead else "")
                             + (f" --teacher-opening {opts.teacher_opening}" if opts.teacher_opening else "")
                             + (f" --real-opening-std {opts.real_opening_std:g}" if opts.real_opening_std else "")}
    save_checkpoint(opts.out, ema, meta)
    print(f"[train] wrote {opts.out} after {minutes:.1f} min; final loss {smooth:.4f}", flush=True)
    return meta.train


def _loss(model, spec, mel, x0, valid, cond, dim_w, rng, W, mouth_valid=None, mouth_sel=None, opening=None):
    import torch
    from engine.motion.model.net import alpha_sigma, step_times

    B, crop, D = x0.shape
    nw = crop // W
    audio = model.encoder(mel)[:, :nw * W].reshape(B * nw, W, -1)
    x0 = x0[:, :nw * W].reshape(B * nw, W, D)
    valid = valid[:, :nw * W].reshape(B * nw, W, 1)
    cond = cond.repeat_interleave(nw, dim=0)
    n = B * nw
    # per-dimension loss weight: 0 on jaw/mouth dims of frames whose targets are masked out
    keep = torch.ones(1, 1, D) if mouth_valid is None else \
        1 - mouth_sel[None, None, :] * (1 - mouth_valid[:, :nw * W].reshape(B * nw, W, 1))
    known_len = rng.choice(W, size=n, p=_known_probs(W))
    mask = (np.arange(W)[None, :] < known_len[:, None]).astype(np.float32)[..., None]
    mask = torch.from_numpy(mask) * valid
    # sampler times get extra weight so 1-4 step sampling sees them in training
    disc = np.array([t for k in (1, 2, 4) for t in step_times(k)[:-1]])
    t = np.where(rng.random(n) < 0.3, rng.choice(disc, size=n), rng.random(n))
    t = torch.from_numpy(t.astype(np.float32))
    a, s = alpha_sigma(t)
    eps = torch.randn_like(x0)
    x_t = a[:, None, None] * x0 + s[:, None, None] * eps
    known = x0 + 0.05 * torch.randn_like(x0)          # run-time past frames are the model's own
    mean, logvar = model.denoiser(x_t, t, audio, known, mask, cond)
    w = (1 - mask) * valid * keep
    wd = w * dim_w[None, None, :]
    mse = (wd * (mean - x0) ** 2).sum() / wd.sum().clamp_min(1.0)
    # posterior variance: Gaussian NLL around the (stop-gradient) mean
    nll = (w * (logvar + (x0 - mean.detach()) ** 2 * torch.exp(-logvar))).sum() / w.sum().clamp_min(1.0)
    loss = mse + 0.1 * nll
    if opening is not None and opening[0] > 0:
        loss = loss + opening[0] * _opening_loss(mean, x0, w[..., 0], opening[1], opening[2])
    return loss


def _opening_loss(pred, x0, w, mean_t, std_t):
    """1 - concordance correlation + L1 between the lip openings of the predicted and the target
    clean motion over the weighted frames; nearly closed target frames count CLOSED_WEIGHT times."""
    import torch
    from engine.motion.space import INDEX
    from engine.training.metrics import OPENING_TERMS

    coef = torch.zeros(pred.shape[-1])
    for name, c in OPENING_TERMS.items():
        for n in ([name] if name in INDEX else [name + "Left", name + "Right"]):
            coef[INDEX[n]] = c if name in INDEX else 0.5 * c
    op_p = ((pred * std_t + mean_t) * coef).sum(-1).clamp_min(0.0)   # as the engine clips it
    op_t = ((x0 * std_t + mean_t) * coef).sum(-1).clamp_min(0.0)
    w = w * (1 + (CLOSED_WEIGHT - 1) * (op_t < CLOSED_OPENING).float())
    total = w.sum().clamp_min(1.0)
    mp, mt = (w * op_p).sum() / total, (w * op_t).sum() / total
    vp, vt = (w * (op_p - mp) ** 2).sum() / total, (w * (op_t - mt) ** 2).sum() / total
    cov = (w * (op_p - mp) * (op_t - mt)).sum() / total
    ccc = 2 * cov / (vp + vt + (mp - mt) ** 2 + 1e-6)
    return (1 - ccc) + (w * (op_p - op_t).abs()).sum() / total


def _known_probs(W: int) -> np.ndarray:
    p = np.full(W, 0.3 / max(1, W - 3))
    p[0], p[W - 1], p[W // 2 - 1] = 0.1, 0.5, 0.1
    return p / p.sum()


def _val_mae(model, spec, batch, mean_t, std_t, steps: int = 2) -> float:
    import torch
    from engine.motion.space import INDEX

    mel, mot, valid, cond = (torch.from_numpy(x) for x in batch)
    W = spec.window
    B, crop, D = mot.shape
    nw = crop // W
    x0 = ((mot - mean_t) / std_t)[:, :nw * W].reshape(B * nw, W, D)
    valid = valid[:, :nw * W].reshape(B * nw, W, 1)
    mask = torch.zeros(B * nw, W, 1)
    mask[:, : W // 2] = 1.0
    mask = mask * valid
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=gen)
    with torch.no_grad():
        audio = model.encoder(mel)[:, :nw * W].reshape(B * nw, W, -1)
        out = model.sample_from_audio(audio, x0, mask, noise, torch.zeros_like(noise),
                                      cond.repeat_interleave(nw, 0), steps)
    raw_pred = out * std_t + mean_t
    raw_true = x0 * std_t + mean_t
    idx = [INDEX[n] for n in EVAL_DIMS]
    w = ((1 - mask) * valid).expand_as(raw_pred)[..., idx]
    return float((w * (raw_pred[..., idx] - raw_true[..., idx]).abs()).sum() / w.sum().clamp_min(1.0))
