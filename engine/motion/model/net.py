"""The audio-to-motion network: a causal audio encoder + a small window denoiser (torch).

Time layout (25 fps, 16 kHz, 100 Hz log-mel): motion frame ``k`` shows audio
``[k*640, (k+1)*640)``; its audio embedding is computed from the normalised log-mel frames
that end at mel frame ``4k + 3 + lookahead_mel`` (``lookahead_mel`` = 5 -> 50 ms), going back
``receptive_mel`` frames. The encoder uses only *valid* convolutions, so running it on a long
sequence or on a short window gives the same numbers (streaming parity by construction).

The denoiser sees a window of ``window`` motion frames: a known prefix (already emitted
frames, ``mask`` = 1) and the new frames to generate. It predicts the clean window (x0
prediction) from the noisy one, the diffusion time ``t`` in [0, 1] (cosine schedule:
x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps), the audio embeddings and a control vector
(state, emotion, intensity, head-motion scale, blink rate). ``sample`` runs DDIM in K steps.

Besides the posterior mean E[x0 | x_t] the denoiser predicts a per-dimension posterior
log-variance; the sampler's last step draws x0 ~ N(mean, var) with a second noise input
instead of returning the mean. Few-step DDIM that returns the mean collapses narrow
conditionals (the next frame of head sway given the past) to their mean, which would freeze
the head; drawing from the predicted posterior keeps the right spread at 1-4 steps. The
jaw/mouth dimensions are not drawn (their posterior mean is the output) and the known past
frames carry no jaw/mouth values: lips follow the audio, head/brows/eyes carry the randomness.
"""
from __future__ import annotations

import math
import torch
from torch import nn
import torch.nn.functional as F

from engine.motion.model.spec import COND_DIM, ModelSpec
from engine.motion.space import ARKIT_NAMES, VECTOR_DIM

LOGVAR_RANGE = (-12.0, 2.0)                         # clamp of the predicted log-variance
# jaw/mouth/tongue: driven by the audio alone (never by the model's own past output, which would
# let errors persist) and output as the posterior mean (precise, no sampling jitter)
MOUTH_DIMS = tuple(i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("jaw", "mouth", "tongue")))


def _mouth_mask(value_mouth: float, value_other: float) -> torch.Tensor:
    m = torch.full((VECTOR_DIM,), float(value_other))
    m[list(MOUTH_DIMS)] = float(value_mouth)
    return m


class AudioEncoder(nn.Module):
    """(B, T_mel, n_mels) -> (B, T_mel/4 - receptive + 1, C); valid causal convs only."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        c = spec.enc_channels
        self.spec = spec
        self.patch = nn.Conv1d(spec.n_mels, c, kernel_size=spec.mel_per_frame, stride=spec.mel_per_frame)
        self.dil = nn.ModuleList(nn.Conv1d(c, c, kernel_size=2, dilation=d) for d in spec.enc_dilations)
        self.mix = nn.ModuleList(nn.Conv1d(c, c, kernel_size=1) for _ in spec.enc_dilations)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.patch(mel.transpose(1, 2)))
        for dil, mix, d in zip(self.dil, self.mix, self.spec.enc_dilations):
            x = x[:, :, d:] + mix(F.gelu(dil(x)))
        return x.transpose(1, 2)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding, computed in fp32 (angles up to 1000 rad) and returned in t's dtype."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    ang = t.float()[:, None] * freqs[None, :] * 1000.0
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1).to(t.dtype)


class DenoiserBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, c)
        self.conv = nn.Conv1d(c, c, kernel_size=3, padding=1)
        self.out = nn.Conv1d(c, c, kernel_size=1)
        self.film = nn.Linear(c, 2 * c)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).unsqueeze(-1).chunk(2, dim=1)
        h = self.norm(x) * (1 + scale) + shift
        return x + self.out(F.gelu(self.conv(F.gelu(h))))


class Denoiser(nn.Module):
    """x0 mean and log-variance for a motion window (B, W, D), in normalised motion units."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        c, d = spec.den_channels, spec.motion_dim
        self.spec = spec
        self.inp = nn.Conv1d(2 * d + 1 + spec.enc_channels, c, kernel_size=1)
        self.cond = nn.Sequential(nn.Linear(spec.t_embed + COND_DIM, c), nn.GELU(), nn.Linear(c, c))
        self.blocks = nn.ModuleList(DenoiserBlock(c) for _ in range(spec.den_blocks))
        self.head = nn.Conv1d(c, 2 * d, kernel_size=1)
        self.register_buffer("known_keep", _mouth_mask(0.0, 1.0), persistent=False)

    def forward(self, x_t, t, audio, known, mask, cond):
        emb = self.cond(torch.cat([time_embedding(t, self.spec.t_embed), cond], dim=1))
        h = torch.cat([x_t, known * mask * self.known_keep, mask, audio], dim=2).transpose(1, 2)
        h = self.inp(h)
        for blk in self.blocks:
            h = blk(h, emb)
        mean, logvar = self.head(F.gelu(h)).transpose(1, 2).chunk(2, dim=2)
        return mean, logvar.clamp(*LOGVAR_RANGE)


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cos(0.5 * math.pi * t), torch.sin(0.5 * math.pi * t)


def step_times(steps: int) -> list[float]:
    """DDIM times from pure noise (1) to clean (0)."""
    return [1.0 - i / steps for i in range(steps + 1)]


class Audio2Motion(nn.Module):
    def __init__(self, spec: ModelSpec = ModelSpec()):
        super().__init__()
        self.spec = spec
        self.encoder = AudioEncoder(spec)
        self.denoiser = Denoiser(spec)
        self.register_buffer("draw_scale", _mouth_mask(0.0, 1.0), persistent=False)
        # jaw/mouth start from the mode (zero noise): a deterministic, jitter-free path for the lips
        self.register_buffer("start_noise", _mouth_mask(0.0, 1.0), persistent=False)

    def set_draw_temperature(self, temperature: float) -> None:
        """Scale of the final posterior draw for the non-mouth dimensions (1 = as trained)."""
        self.draw_scale.copy_(_mouth_mask(0.0, temperature))

    def sample(self, mel, known, mask, noise, noise_out, cond, steps: int) -> torch.Tensor:
        """Sample one window. mel: (B, mel_window(W), n_mels); others (B, W, .)."""
        return self.sample_from_audio(self.encoder(mel), known, mask, noise, noise_out, cond, steps)

    def sample_from_audio(self, audio, known, mask, noise, noise_out, cond, steps: int) -> torch.Tensor:
        """DDIM on the posterior mean for ``steps`` steps, then x0 ~ N(mean, var) via ``noise_out``."""
        x = noise * self.start_noise
        b = noise.shape[0]
        times = step_times(steps)
        mean, logvar = noise, noise
        for t_now, t_next in zip(times[:-1], times[1:]):
            tt = torch.full((b,), t_now, dtype=noise.dtype, device=noise.device)
            mean, logvar = self.denoiser(x, tt, audio, known, mask, cond)
            a_now, s_now = math.cos(0.5 * math.pi * t_now), math.sin(0.5 * math.pi * t_now)
            a_next, s_next = math.cos(0.5 * math.pi * t_next), math.sin(0.5 * math.pi * t_next)
            eps = (x - a_now * mean) / max(s_now, 1e-4)
            x = a_next * mean + s_next * eps
        x0 = mean + torch.exp(0.5 * logvar) * noise_out * self.draw_scale
        return mask * known + (1 - mask) * x0


class Sampler(nn.Module):
    """The exported graph: encoder + ``steps`` unrolled DDIM steps (static shapes)."""

    def __init__(self, model: Audio2Motion, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps

    def forward(self, mel, known, mask, noise, noise_out, cond):
        return self.model.sample(mel, known, mask, noise, noise_out, cond, self.steps)


def count_parameters(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
