"""``lossbench train glaris``: stage II with the backbone frozen.

Training data are the backbone's latents of the training audio, rebuilt from
the token cache that ``lossbench train soundspring`` also uses (all 24 RVQ
layers: l = sum of the code vectors), so no audio is re-encoded. Windows,
rate indices q, side-information depths Q and loss masks are drawn from
generators seeded by (seed, step): deterministic and resumable like the other
trainers. ``eval.jsonl`` records, on held-out latents, the rate (kbit/s of y
at the ideal code length) and the latent MSE without and with 20 % frame loss
at q = 0, 32, 63.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.glaris.model import Glaris, GlarisConfig, gaussian_bits, glaris_losses
from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.neural.tokens import codec_sha, token_layers, tokenize
from lossbench.errors import ConfigError
from lossbench.training import LoopConfig, load_resume, run_loop


@dataclass
class GlarisTrainConfig:
    steps: int = 30_000
    batch: int = 16
    frames: int = 96
    lr: float = 1e-3
    warmup: int = 500
    seed: int = 0
    alpha: float = 1.0
    beta: float = 0.5
    gamma: float = 0.5
    ckpt_every: int = 500
    eval_every: int = 2000
    max_hours: float | None = None
    backbone: str = DEFAULT_BACKBONE  # whose latents: the waveform codec's or the fargan quantiser's RVQ part


def codebooks(backbone: str = DEFAULT_BACKBONE) -> torch.Tensor:
    """The backbone's RVQ code vectors, (layers, V, D): the latent of a frame is their sum over its tokens
    past the first ``token_layers(backbone)``."""
    from lossbench.codecs.neural.backbones import get_backbone

    return torch.stack([layer.embed.detach().float() for layer in get_backbone(backbone).rvq_layers()])


def latents_of(tokens: np.ndarray, cbs: torch.Tensor) -> torch.Tensor:
    """Tokens (T, 24) -> latents (T, D) = sum over layers of the code vectors."""
    t = torch.from_numpy(tokens.astype(np.int64))
    return torch.stack([cbs[k][t[:, k]] for k in range(t.shape[1])]).sum(0)


def _batch(tokens: np.ndarray, cbs: torch.Tensor, step: int, seed: int, batch: int, frames: int):
    """A window batch of the RVQ tokens (the columns of ``tokens`` that make the latent)."""
    rng = np.random.default_rng([seed, step, 21])
    starts = rng.integers(0, tokens.shape[0] - frames, batch)
    tok = np.stack([tokens[s : s + frames] for s in starts])  # (B, T, 24)
    lat = torch.stack([latents_of(t, cbs) for t in tok])  # (B, T, D)
    q = torch.from_numpy(rng.integers(0, 64, batch))
    return lat.permute(0, 2, 1).contiguous(), torch.from_numpy(tok.astype(np.int64)).permute(0, 2, 1), q, rng


@torch.no_grad()
def evaluate(model: Glaris, tokens: np.ndarray, cbs: torch.Tensor, frames: int = 200, windows: int = 8) -> dict:
    model.eval()
    cfg = model.cfg
    out = {}
    gen = torch.Generator().manual_seed(99)
    for qv in (0, 32, 63):
        bits = mse = mse_con = 0.0
        for i in range(windows):
            s = (i * (tokens.shape[0] - frames)) // windows
            lat = latents_of(tokens[s : s + frames], cbs).T[None] / cfg.latent_scale
            q = torch.tensor([qv])
            y = model.analysis(lat, q)
            zq, _, _ = model.side(y, cfg.z_quantizers // 2)
            none = torch.zeros(1, frames, dtype=torch.bool)
            sh = model.hyper(zq, none)
            mu, sigma = model.entropy_params(sh, q)
            yi = model.quantize(y, q)
            bits += float(gaussian_bits(yi, mu, sigma).sum()) / frames
            yq = model.dequantize(yi, q)
            mse += float(((model.synthesis(yq, q) - lat) ** 2).mean())
            lost = torch.rand(1, frames, generator=gen) < 0.2
            yp = model.plc(model.hyper(zq, none), yq, lost, none, q)
            mse_con += float(((model.synthesis(torch.where(lost[:, None], yp, yq), q) - lat) ** 2).mean())
        out[f"kbps@{qv}"] = round(bits / windows * 50 / 1000, 3)
        out[f"mse@{qv}"] = round(mse / windows, 4)
        out[f"mse_loss20@{qv}"] = round(mse_con / windows, 4)
    model.train()
    return out


def train_glaris(data: Path, out: Path, cfg: GlarisTrainConfig, model_cfg: GlarisConfig = GlarisConfig(),
                 tokens: np.ndarray | None = None, valid: np.ndarray | None = None,
                 threads: int | None = None, progress: bool = True) -> Path:
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    sha = codec_sha(backbone=cfg.backbone)
    P = token_layers(cfg.backbone)
    train = tokens if tokens is not None else tokenize(data, "train", max_hours=cfg.max_hours, backbone=cfg.backbone)
    val = valid if valid is not None else tokenize(data, "valid", backbone=cfg.backbone)
    train, val = train[:, P:], val[:, P:]
    cbs = codebooks(cfg.backbone)
    if model_cfg.latent_dim != cbs.shape[-1]:
        model_cfg = replace(model_cfg, latent_dim=int(cbs.shape[-1]))
    ckpt = out / "ckpt.pt"
    st = load_resume(ckpt)
    if st is not None and st.get("backbone", "waveform") != cfg.backbone:
        raise ConfigError(f"{ckpt} was trained on the {st.get('backbone', 'waveform')!r} backbone's latents, not the "
                          f"{cfg.backbone!r} backbone's: use another --out directory")
    if st is not None:
        if st.get("codec_sha", sha) != sha:
            raise ConfigError(f"{ckpt} was trained on the latents of codec weights {st['codec_sha']}, but the codec "
                              f"weights now are {sha}: start a new run in another --out directory")
        model_cfg = GlarisConfig(**st["model_cfg"])
    elif model_cfg.latent_scale == 1.0:
        sample = latents_of(train[:: max(1, train.shape[0] // 20000)], cbs)
        model_cfg = replace(model_cfg, latent_scale=round(float(sample.std()), 4))
    torch.manual_seed(cfg.seed)
    model = Glaris(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step = 0
    if st is not None:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = int(st["step"])
    model.train()

    def train_step(step: int, want: bool) -> dict | None:
        lat, tok, q, rng = _batch(train, cbs, step, cfg.seed, cfg.batch, cfg.frames)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        n_q = torch.from_numpy(rng.integers(1, model_cfg.z_quantizers + 1, cfg.batch))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
        losses = glaris_losses(model, lat / model_cfg.latent_scale, tok, q, n_q, gen, cfg.alpha, cfg.beta, cfg.gamma)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {k: round(float(v.detach()), 4) for k, v in losses.items()} if want else None

    def state(step: int) -> dict:
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "model_cfg": model_cfg.to_dict(), "codec_sha": sha, "backbone": cfg.backbone,
                "train_cfg": dict(cfg.__dict__)}

    loop = LoopConfig(steps=cfg.steps, ckpt_every=cfg.ckpt_every, eval_every=cfg.eval_every, max_hours=None,
                      desc="train glaris", progress=progress, postfix=("loss", "bits"))
    return run_loop(out, loop, step, train_step, state, lambda step: evaluate(model, val, cbs))


def export_glaris(ckpt: Path, dest: Path) -> Path:
    """Checkpoint -> float16 safetensors with the configuration, step and backbone hash in metadata."""
    from safetensors.torch import save_file

    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    tensors = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in st["model"].items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dest), metadata={"model_cfg": json.dumps(st["model_cfg"]), "step": str(st["step"]),
                                            "codec_sha": st["codec_sha"], "backbone": st.get("backbone", "waveform")})
    return dest
