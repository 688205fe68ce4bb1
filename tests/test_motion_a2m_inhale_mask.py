"""Training option --mask-inhale: the teacher's pre-speech inhale frames leave the jaw/mouth loss."""
import numpy as np
import torch

from engine.motion.model.spec import control_vector
from engine.training.dataset import inhale_free_frames
from engine.motion.model.net import MOUTH_DIMS, Audio2Motion
from engine.motion.model.spec import ModelSpec
from engine.training.train import _loss, mouth_weights
from engine.motion.space import VECTOR_DIM
from engine.training.teacher import ArticulationStyle, inhale_windows

PHONES = np.array(["sil", "hh", "ah", "sil", "m", "aa", "sil"])
STARTS = np.array([0.0, 1.2, 1.3, 1.5, 2.6, 2.7, 2.9])
ENDS = np.array([1.2, 1.3, 1.5, 2.6, 2.7, 2.9, 3.5])
VOICE = "flite:slt"


def test_inhale_frames_are_the_teachers_windows_before_speech():
    n = 88
    keep = inhale_free_frames(PHONES, STARTS, ENDS, VOICE, n)
    windows = inhale_windows(PHONES, STARTS, ENDS, ArticulationStyle.for_speaker(VOICE))
    assert [round(e, 3) for _, e in windows] == [1.2, 2.6]        # pauses before speech only
    t = np.arange(n) / 25
    for s, e in windows:
        inside = (t >= s) & (t + 1 / 25 <= e)
        assert inside.any() and (keep[inside] == 0).all()
    assert keep[int(1.2 * 25)] == 1 and keep[int(2.6 * 25)] == 1   # the speech-onset frames stay
    assert (keep[: int(windows[0][0] * 25)] == 1).all() and (keep[int(3.0 * 25):] == 1).all()


def test_masked_mouth_targets_do_not_change_the_loss():
    torch.manual_seed(0)
    spec = ModelSpec()
    model = Audio2Motion(spec)
    B, crop = 2, 16
    mel = torch.randn(B, spec.mel_window(crop), spec.n_mels)
    x0 = torch.randn(B, crop, VECTOR_DIM)
    valid = torch.ones(B, crop)
    cond = torch.from_numpy(np.stack([control_vector("speaking", "neutral", 0.0, 1.0, 10.0)] * B))
    mouth_valid = torch.ones(B, crop)
    mouth_valid[:, 10:14] = 0.0
    sel = torch.zeros(VECTOR_DIM)
    sel[list(MOUTH_DIMS)] = 1.0
    dim_w = torch.tensor(mouth_weights())
    # a denoiser that predicts x0 = 0 with unit variance, so the loss depends on the targets only
    class ZeroDenoiser(torch.nn.Module):
        def forward(self, x_t, *rest):
            return torch.zeros_like(x_t), torch.zeros_like(x_t)

    model.denoiser = ZeroDenoiser()

    def loss(target):
        torch.manual_seed(1)
        return _loss(model, spec, mel, target, valid, cond, dim_w, np.random.default_rng(1), spec.window,
                     mouth_valid, sel).item()

    masked = x0.clone()
    masked[:, 10:14, list(MOUTH_DIMS)] += 5.0          # inside the mask: no effect
    assert loss(masked) == loss(x0)
    counted = x0.clone()
    counted[:, 2:6, list(MOUTH_DIMS)] += 5.0           # outside it: counts
    assert loss(counted) > loss(x0) + 1e-3
