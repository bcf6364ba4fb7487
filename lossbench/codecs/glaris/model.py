"""Glaris-style error-resilient transform coding in the RVQ backbone's latent space (Han et al.).

Per 20 ms frame t (all modules causal; C = a causal convolution stack)::

    l_t   the backbone's quantised latent (128-d, all 24 RVQ layers)
    y_t   = g_a(l, q)            C over l, conditioned on the rate index q
    y^Q_t = round(g_q * y_t)     scalar quantisation with the rate's gain vector g_q (step 1 / g_q
                                 in y), range-coded under N(g_q mu_t, g_q sigma_t); y^_t = y^Q_t / g_q
    z_t   = h_a(y_t)             per frame; RVQ of Q x 1024 codebooks (0.5 kbit/s each)
    s_t   = h_s(z^_{t-1}, z^_t)  hyper synthesis, two frames of context; a missing z is the
                                 learned mask token M
    (mu_t, sigma_t) = f_entropy(s_t, q)
    y^P_t = f_PLC(s_t, y^Q_{t-n..t-1} with loss flags) + (M_H if z_t arrived else M_L)   (eq. 5)
    y^_t  = y^Q_t if y_t arrived else y^P_t
    l^_t  = g_s(y^, q)           C with a few frames of context (bounded error propagation)

Rate control: q in {0..63} is embedded and added inside g_a, g_s and
f_entropy; lambda(q) = exp(ln lambda_min + q / 63 (ln lambda_max - ln lambda_min)) (eq. 3).
Each q also has a quantisation gain g_q (the "gain unit" of variable-rate
transform coding), fixed and log-linear from ``gain_max`` at q = 0 to
``gain_min`` at q = 63: the quantisation step in y is 1 / g_q, so the rate
follows q from the first step of training rather than only as far as the q
embeddings learn to rescale y. (Learned gains ran away at small lambda: with
the rate nearly free, finer steps always lower the rounding error, until y
hits the coder's clipping range.)

Training (stage II, backbone frozen): lambda R(y^Q) + D,
D = alpha D_prior(l, l^_con) + D_prior(l, l^_rec) + gamma ||y - y^_con||^2 (eqs. 8-11),
D_prior = beta CE(code predictor(l^), the backbone's first RVQ indices of l) + MSE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.codecs.neural.rvq import ResidualVQ


@dataclass(frozen=True)
class GlarisConfig:
    latent_dim: int = 128
    y_dim: int = 48
    z_dim: int = 32
    hidden: int = 192
    z_quantizers: int = 6  # Q at most; any first Q decode (quantizer dropout)
    codebook_size: int = 1024
    q_num: int = 64
    lambda_min: float = 0.00002
    lambda_max: float = 0.05
    plc_context: int = 16  # n past frames the PLC module sees
    gs_context: int = 4  # frames of y^ that g_s sees (error propagation bound)
    cp_layers: int = 2  # RVQ layers of l the code predictor predicts
    cp_frames: float = 0.25  # fraction of frames the code predictor's CE is computed on (training cost)
    y_range: int = 40  # y^Q is clipped to [-y_range, y_range] (64 for the gained models)
    latent_scale: float = 1.0  # l is divided by this (its global std on the training tokens)
    gain_max: float = 1.0  # quantisation gain at q = 0 (finer steps: more bits); 1.0 = the ungained first model
    gain_min: float = 1.0  # quantisation gain at q = q_num - 1
    skip: bool = False  # a linear path past g_a's and g_s's stacks (the transform starts near-invertible)

    def to_dict(self) -> dict:
        return asdict(self)

    def lam(self, q: torch.Tensor) -> torch.Tensor:
        a, b = math.log(self.lambda_min), math.log(self.lambda_max)
        return torch.exp(a + q.float() / (self.q_num - 1) * (b - a))


class CConv(nn.Module):
    """Causal conv1d: output t sees inputs t-(k-1)*d .. t."""

    def __init__(self, cin: int, cout: int, k: int = 3, d: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, dilation=d)
        self.pad = (k - 1) * d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class CondStack(nn.Module):
    """Causal residual conv stack with a rate embedding added after the input layer."""

    def __init__(self, cin: int, cout: int, hidden: int, kernels: list[tuple[int, int]], q_num: int | None,
                 skip: bool = False):
        super().__init__()
        self.skip = nn.Conv1d(cin, cout, 1, bias=False) if skip else None
        self.inp = nn.Conv1d(cin, hidden, 1)
        self.q = nn.Embedding(q_num, hidden) if q_num else None
        self.blocks = nn.ModuleList(CConv(hidden, hidden, k, d) for k, d in kernels)
        self.out = nn.Conv1d(hidden, cout, 1)

    @property
    def context(self) -> int:
        return 1 + sum(cast(CConv, b).pad for b in self.blocks)

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(x)
        if self.q is not None and q is not None:
            h = h + self.q(q)[:, :, None]
        for b in self.blocks:
            h = h + b(F.gelu(h))
        out = self.out(F.gelu(h))
        return out if self.skip is None else out + self.skip(x)


class Glaris(nn.Module):
    log_gain: torch.Tensor  # a buffer (register_buffer), typed for mypy

    def __init__(self, cfg: GlarisConfig = GlarisConfig()):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden
        self.g_a = CondStack(cfg.latent_dim, cfg.y_dim, H, [(3, 1), (3, 2)], cfg.q_num, cfg.skip)
        self.h_a = CondStack(cfg.y_dim, cfg.z_dim, H // 2, [], None)
        self.z_rvq = ResidualVQ(cfg.z_quantizers, cfg.codebook_size, cfg.z_dim)
        self.z_mask = nn.Parameter(torch.zeros(cfg.z_dim))  # M: stands in for a missing z
        self.h_s = CondStack(cfg.z_dim, H, H, [(2, 1)], None)  # two frames of z context
        self.f_entropy = CondStack(H, 2 * cfg.y_dim, H, [], cfg.q_num)
        # PLC: per frame [s_t, y^Q_{t-1} (zeroed where lost), lost flag_{t-1}], causal context n frames
        k_plc = [(3, 1), (3, 2), (3, 4), (2, 1)]  # receptive field 1 + 2 + 4 + 8 + 1 = 16
        self.f_plc = CondStack(H + cfg.y_dim + 1, cfg.y_dim, H, k_plc, cfg.q_num)
        self.m_high = nn.Parameter(torch.zeros(cfg.y_dim))  # M_H: z_t arrived
        self.m_low = nn.Parameter(torch.zeros(cfg.y_dim))  # M_L: z_t missing too
        n_gs = max(1, cfg.gs_context - 1)
        self.g_s = CondStack(cfg.y_dim, cfg.latent_dim, H, [(n_gs + 1, 1)], cfg.q_num, cfg.skip)
        self.code_pred = nn.Conv1d(cfg.latent_dim, cfg.cp_layers * cfg.codebook_size, 1)
        ramp = torch.linspace(math.log(cfg.gain_max), math.log(cfg.gain_min), cfg.q_num)
        self.register_buffer("log_gain", ramp[:, None].repeat(1, cfg.y_dim))  # (q_num, y_dim), fixed

    # ----------------------------------------------------------------- pieces shared by training and coding

    def analysis(self, lat: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """l (B, D, T) -> y (B, y_dim, T)."""
        return self.g_a(lat, q)

    def side(self, y: torch.Tensor, n_q: int | torch.Tensor, gen: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y -> (z^ quantised with straight-through, codes (B, Q, T), commitment loss).

        ``gen`` drives the EMA codebooks' re-seeding of dead codes in training (determinism on resume).
        """
        z = self.h_a(y)
        B = z.shape[0]
        nq = n_q if torch.is_tensor(n_q) else torch.full((B,), int(n_q), dtype=torch.long, device=z.device)
        if self.training:
            zq, commit = self.z_rvq(z, nq, gen)
            return zq, torch.zeros(0), commit
        k = int(nq.max())
        codes = self.z_rvq.encode(z, k)
        return self.z_rvq.decode(codes), codes, z.new_zeros(())

    def hyper(self, zq: torch.Tensor, z_missing: torch.Tensor) -> torch.Tensor:
        """z^ (B, z_dim, T) with missing frames (B, T) bool -> s (B, H, T)."""
        zin = torch.where(z_missing[:, None, :], self.z_mask[None, :, None].expand_as(zq), zq)
        return self.h_s(zin)

    def gain(self, q: torch.Tensor) -> torch.Tensor:
        """The quantisation gain g_q (B, y_dim, 1)."""
        return self.log_gain[q].exp()[:, :, None]

    def entropy_params(self, s: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, sigma) of the integer symbols y^Q = round(g_q y): the y-domain Gaussian scaled by g_q."""
        p = self.f_entropy(s, q)
        mu, log_sigma = p.chunk(2, 1)
        g = self.gain(q)
        return mu * g, (F.softplus(log_sigma) + 0.11) * g

    def plc(self, s: torch.Tensor, yq: torch.Tensor, y_missing: torch.Tensor, z_missing: torch.Tensor,
            q: torch.Tensor) -> torch.Tensor:
        """y^P (B, y_dim, T) from s_t and the previous frames' received y^ (y domain, causal)."""
        prev = F.pad(yq * (~y_missing)[:, None, :], (1, 0))[..., :-1]
        prev_flag = F.pad(y_missing.float(), (1, 0), value=1.0)[:, None, :-1]
        yp = self.f_plc(torch.cat([s, prev, prev_flag], 1), q)
        conf = torch.where(z_missing[:, None, :], self.m_low[None, :, None], self.m_high[None, :, None])
        return yp + conf

    def synthesis(self, y_hat: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat, q)

    def quantize(self, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Integer symbols round(g_q y), clipped to the coder's range."""
        r = self.cfg.y_range
        return torch.clamp(torch.round(y * self.gain(q)), -r, r)

    def dequantize(self, yq: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """y^ = y^Q / g_q."""
        return yq / self.gain(q)

    def quantize_ste(self, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """y^ with straight-through gradients to y."""
        r = self.cfg.y_range
        g = self.gain(q)
        u = y * g
        return (u + (torch.clamp(torch.round(u), -r, r) - u).detach()) / g


def gaussian_bits(yq: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """-log2 P(yq) under N(mu, sigma) discretised to unit bins, elementwise."""
    n = torch.distributions.Normal(mu, sigma)
    p = n.cdf(yq + 0.5) - n.cdf(yq - 0.5)
    return -torch.log2(p.clamp(min=1e-9))


def random_masks(B: int, T: int, gen: torch.Generator, y_ratio: tuple[float, float] = (0.05, 0.7),
                 z_ratio: tuple[float, float] = (0.0, 0.1), burst: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Training loss masks (B, T) for y and z: per example a ratio ~ U(range), half bursty (Gilbert-like)."""
    ry = torch.empty(B).uniform_(*y_ratio, generator=gen)
    rz = torch.empty(B).uniform_(*z_ratio, generator=gen)
    u = torch.rand(B, T, generator=gen)
    my = u < ry[:, None]
    # bursty variant: smear losses forward by a random run length
    bursty = torch.rand(B, generator=gen) < burst
    if bool(bursty.any()):
        runs = torch.randint(1, 6, (B, 1), generator=gen)
        start = (torch.rand(B, T, generator=gen) < (ry[:, None] / runs.float()))
        idx = torch.arange(T)[None, :]
        acc = torch.zeros(B, T, dtype=torch.bool)
        for k in range(5):
            acc |= torch.roll(start, k, 1) & (idx >= k) & (k < runs)
        my = torch.where(bursty[:, None], acc, my)
    mz = (torch.rand(B, T, generator=gen) < rz[:, None]) & my  # a lost z means its copies were lost too
    return my, mz


def glaris_losses(model: Glaris, lat: torch.Tensor, codes: torch.Tensor, q: torch.Tensor, n_q: torch.Tensor,
                  gen: torch.Generator, alpha: float = 1.0, beta: float = 0.5, gamma: float = 0.5
                  ) -> dict[str, torch.Tensor]:
    """One training pass. l (B, D, T) latents, codes (B, >=cp_layers, T) their RVQ indices."""
    cfg = model.cfg
    B, _, T = lat.shape
    y = model.analysis(lat, q)
    zq, _, commit = model.side(y, n_q, gen)
    none = torch.zeros(B, T, dtype=torch.bool)
    s = model.hyper(zq, none)
    mu, sigma = model.entropy_params(s, q)
    # rate: additive uniform noise proxy; decoder path: straight-through rounding
    u_noisy = y * model.gain(q) + torch.empty_like(y).uniform_(-0.5, 0.5, generator=gen)
    bits = gaussian_bits(u_noisy, mu, sigma).sum((1, 2)) / T  # bits per frame, per example
    yq = model.quantize_ste(y, q)
    l_rec = model.synthesis(yq, q)
    my, mz = random_masks(B, T, gen)
    s_con = model.hyper(zq, mz)
    yp = model.plc(s_con, yq, my, mz, q)
    y_con = torch.where(my[:, None, :], yp, yq)
    l_con = model.synthesis(y_con, q)

    n_cp = max(1, int(round(T * cfg.cp_frames)))
    cp_t = torch.randperm(T, generator=gen)[:n_cp]

    def d_prior(lh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mse = ((lh - lat) ** 2).mean((1, 2))
        logits = model.code_pred(lh[..., cp_t]).view(B, cfg.cp_layers, cfg.codebook_size, n_cp)
        ce = F.cross_entropy(logits.permute(0, 2, 1, 3), codes[:, : cfg.cp_layers, cp_t], reduction="none").mean((1, 2))
        return mse, ce

    mse_rec, ce_rec = d_prior(l_rec)
    mse_con, ce_con = d_prior(l_con)
    y_mse = (((y_con - y.detach()) ** 2).mean(1) * my).sum(1) / my.sum(1).clamp(min=1)
    D = alpha * (beta * ce_con + mse_con) + (beta * ce_rec + mse_rec) + gamma * y_mse
    lam = cfg.lam(q)
    loss = (lam * bits + D).mean() + commit
    return {"loss": loss, "bits": bits.mean(), "mse_rec": mse_rec.mean(), "mse_con": mse_con.mean(),
            "ce_rec": ce_rec.mean(), "ce_con": ce_con.mean(), "y_mse": y_mse.mean(), "commit": commit}
