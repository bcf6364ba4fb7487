"""``lossbench train codec --backbone fargan``: the feature quantiser, resumable and seeded.

The training audio's LPCNet features are computed once with Opus 1.5's C
analysis and cached next to the data (``train_features.npy``); a step draws
random crops of feature pairs, runs encoder, residual VQ (a random depth per
example: quantiser dropout) and decoder, and minimises a weighted squared
error in z-scored feature units (pitch period weighted most: it is what
FARGAN is most sensitive to). Every random choice comes from generators
seeded by (seed, step), so a resumed run continues exactly.

Evaluation decodes held-out clips through FARGAN and scores PESQ-WB / STOI at
K = 3, 6, 12, 24 next to the unquantised ceiling (``eval.jsonl``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.neural.fargan import DEFAULT_WEIGHTS, NB_FEATURES, FarganBackbone, FarganConfig
from lossbench.codecs.neural.train import (
    EVAL_K,
    SpeechData,
    dropout_depths,
    export_weights,
)
from lossbench.data.heldout import eval_clips
from lossbench.errors import ConfigError
from lossbench.training import LoopConfig, load_resume, run_loop


@dataclass
class FarganTrainConfig:
    steps: int = 60_000
    batch: int = 32
    pairs: int = 32  # 20 ms feature pairs per crop (0.64 s)
    lr: float = 1e-3
    lr_end: float = 1e-4
    seed: int = 0
    ckpt_every: int = 500
    eval_every: int = 2000
    eval_clips: int = 8
    w_commit: float = 0.1
    w_corr: float = 0.5  # the pitch correlation's weight next to a cepstral value's (mean 1)
    ae_warmup: int = 0  # steps that train the transform on the unquantised latent before the RVQ joins
    # how quantiser dropout draws K per example: "square" (K = ceil(24 u^2), most weight on few layers)
    # or "mid" (half uniform over 3..24, half uniform over 6..12, the rates the codec is used at)
    dropout: str = "square"
    feature_weights: tuple[float, ...] = field(default=DEFAULT_WEIGHTS)


def feature_cache(data: Path, split: str = "train") -> np.ndarray:
    """(N, 20) LPCNet features of all ``split`` audio, computed once and cached as ``<split>_features.npy``."""
    from lossbench.native.fargan import FeatureAnalyzer

    cache = data / f"{split}_features.npy"
    man = data / "manifest.jsonl"
    if cache.exists() and cache.stat().st_mtime >= man.stat().st_mtime:
        return np.load(cache)
    audio = SpeechData(data, split).audio
    an = FeatureAnalyzer()
    parts = []
    step = 160 * 6000
    for i in range(0, audio.shape[0], step):
        parts.append(an.push(np.asarray(audio[i : i + step], np.float32) / 32768.0))
    f = np.concatenate(parts).astype(np.float32)
    np.save(cache, f)
    return f


def lloyd_levels(x: np.ndarray, n: int, iters: int = 30) -> np.ndarray:
    """``n`` scalar-quantiser levels for the values ``x`` (Lloyd's algorithm from quantiles)."""
    x = np.asarray(x, np.float64)
    lv = np.quantile(x, (np.arange(n) + 0.5) / n)
    for _ in range(iters):
        idx = np.abs(x[:, None] - lv[None]).argmin(1)
        lv = np.array([x[idx == i].mean() if np.any(idx == i) else lv[i] for i in range(n)])
    return np.sort(lv).astype(np.float32)


def evaluate_fargan(model: FarganBackbone, clips: list[np.ndarray], ks=EVAL_K, ceiling: bool = False) -> dict:
    """Mean PESQ-WB / STOI over ``clips`` at each K (and of the unquantised features with ``ceiling``)."""
    from lossbench.metrics import compute_metrics

    model.eval()
    res: dict[str, list[float]] = {}
    for x in clips:
        feats = model.clip_features(x)
        with torch.no_grad():
            ft = torch.from_numpy(feats)[None]
            pairs = model.net.normalise(ft)
            z = model.net.encode_latent(pairs)
            tokens = model.net.pitch_tokens(ft)
            outs = {}
            if ceiling:
                outs["ceiling"] = feats
                # the pitch tokens alone, cepstrum exact: what coding the pitch costs
                pv = model.net.pitch_values(tokens)
                pf = model.net.denormalise(torch.cat([pairs[:, :18], pv[:, :2], pairs[:, 20:38], pv[:, 2:]], 1))
                outs["pitch_tokens_only"] = pf[0].numpy()
            for k in ks:
                codes = model.quantizer.encode_parts(tokens, z, k)
                outs[str(k)] = model.net.denormalise(model.net.decode_latent(model.quantizer.decode(codes)))[0].numpy()
        for name, f in outs.items():
            y = model.voice(f, len(x))
            m = compute_metrics(y, x, 16000, ["pesq_wb", "stoi"])
            for metric in ("pesq_wb", "stoi"):
                res.setdefault(f"{metric}@{name}", []).append(m[metric])
    model.train()
    return {k: float(np.nanmean(v)) for k, v in res.items()}


DROPOUTS = ("square", "mid")


def fargan_depths(kind: str, step: int, seed: int, batch: int, n_q: int) -> torch.Tensor:
    """Per-example K (layers including the pitch layers) for quantiser dropout, seeded by (seed, step)."""
    if kind == "square":
        return dropout_depths(step, seed, batch, n_q)
    if kind == "mid":
        rng = np.random.default_rng([seed, step, 3])
        wide = rng.integers(3, n_q + 1, batch)
        mid = rng.integers(6, min(12, n_q) + 1, batch)
        return torch.from_numpy(np.where(rng.random(batch) < 0.5, wide, mid).astype(np.int64))
    raise ConfigError(f"dropout must be one of {', '.join(DROPOUTS)}, got {kind!r}")


def train_fargan(data: Path, out: Path, cfg: FarganTrainConfig, model_cfg: FarganConfig = FarganConfig(),
                 threads: int | None = None, progress: bool = True, max_hours: float | None = None,
                 until: int | None = None) -> Path:
    """Train (or resume) the feature quantiser; returns the checkpoint path.

    ``until`` stops at that step with the schedule of ``cfg.steps`` (a run in phases, e.g. a change of
    quantiser dropout part-way, resumes where the first phase stopped)."""
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = FarganBackbone(model_cfg)
    net = model.net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    feats = feature_cache(data, "train")
    step = 0
    ckpt = out / "ckpt.pt"
    st = load_resume(ckpt)
    if st is not None:
        if st["model_cfg"] != model_cfg.to_dict():
            raise ConfigError(f"{ckpt} was trained with another model configuration: {st['model_cfg']}")
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = int(st["step"])
    else:
        net.feat_mean.copy_(torch.from_numpy(feats.mean(0)))
        net.feat_std.copy_(torch.from_numpy(feats.std(0) + 1e-3))
        net.corr_levels.copy_(torch.from_numpy(lloyd_levels(feats[:, 19], net.corr_levels.numel())))
    (out / "config.json").write_text(json.dumps({"train": {**cfg.__dict__}, "model": model_cfg.to_dict(),
                                                 "backbone": "fargan", "train_frames": int(feats.shape[0])}, indent=1))
    evals = eval_clips(data, cfg.eval_clips, real_only=True, min_s=2.0)
    if len(cfg.feature_weights) != 18:
        raise ConfigError(f"feature_weights needs 18 values (the cepstrum), got {len(cfg.feature_weights)}")
    w = torch.tensor(list(cfg.feature_weights), dtype=torch.float32)
    w = (w / w.mean()).view(1, -1, 1)
    # cepstrum and pitch correlation are learned (the period is exact in its tokens)
    ceps = [i for f in range(model_cfg.frames_per_hop) for i in range(f * NB_FEATURES, f * NB_FEATURES + 18)]
    learned = [i for f in range(model_cfg.frames_per_hop) for i in list(range(f * NB_FEATURES, f * NB_FEATURES + 18))
               + [f * NB_FEATURES + 19]]
    wl = torch.cat([w.view(-1), torch.tensor([cfg.w_corr])]).repeat(model_cfg.frames_per_hop).view(1, -1, 1)
    T = cfg.pairs
    n_frames = feats.shape[0]
    net.train()

    def train_step(step: int, want: bool) -> dict | None:
        rng = np.random.default_rng([cfg.seed, step, 1])
        starts = rng.integers(0, (n_frames - 2 * T) // 2, cfg.batch) * 2
        x = torch.from_numpy(np.stack([feats[s : s + 2 * T] for s in starts]))
        pairs = net.normalise(x)
        pv = net.pitch_values(net.pitch_tokens(x))
        depths = (fargan_depths(cfg.dropout, step, cfg.seed, cfg.batch, model_cfg.num_quantizers)
                  - model_cfg.pitch_layers).clamp(min=0)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        frac = step / max(cfg.steps, 1)
        lr = cfg.lr * min(1.0, (step + 1) / 500) * (cfg.lr_end / cfg.lr) ** frac
        for g in opt.param_groups:
            g["lr"] = lr
        z = net.encode_latent(pairs)
        if step < cfg.ae_warmup:
            zq, commit = z, z.new_zeros(())
        else:
            zq, commit = net.quantizer(z, depths, gen)
        y = net.decode_latent(torch.cat([zq, pv], 1))
        err = ((y[:, learned] - pairs[:, learned]) ** 2 * wl).mean()
        loss = err + cfg.w_commit * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if not want:
            return None
        with torch.no_grad():
            yc, pc = y[:, ceps], pairs[:, ceps]
            per = ((y - pairs) ** 2).mean((0, 2)).view(model_cfg.frames_per_hop, NB_FEATURES).mean(0)
            full = depths >= model_cfg.rvq_layers - 12  # examples at K >= 12
            c12 = ((yc - pc) ** 2)[full].mean().item() if bool(full.any()) else float("nan")
        return {"loss": err.item(), "commit": commit.item(), "ceps_mse": per[:18].mean().item(),
                "ceps_mse_k12plus": c12, "c0_mse": per[0].item(), "corr_mse": per[19].item(), "lr": lr}

    def state(step: int) -> dict:
        return {"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                "model_cfg": model_cfg.to_dict(), "train_cfg": cfg.__dict__}

    def evaluate(step: int) -> dict:
        m = evaluate_fargan(model, evals, ceiling=not (out / "eval.jsonl").exists())
        return {k: round(v, 4) for k, v in m.items()}

    loop = LoopConfig(steps=min(cfg.steps, until or cfg.steps), ckpt_every=cfg.ckpt_every, eval_every=cfg.eval_every,
                      max_hours=max_hours,
                      desc="train fargan codec", progress=progress, postfix=("loss", "ceps_mse", "ceps_mse_k12plus"))
    return run_loop(out, loop, step, train_step, state, evaluate)


def export_fargan(ckpt: Path, dest: Path) -> Path:
    """Write the quantiser's weights as safetensors, float32 (the features need the precision)."""
    return export_weights(ckpt, dest, half=False, metadata={"backbone": "fargan"})
