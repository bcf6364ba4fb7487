"""``lossbench train soundspring``: the masked LM on the codec's tokens.

Tokens of the training audio are computed once with the shipped codec
(``tokens_<weights-hash>.npy`` in the data directory). Each step draws
windows of ``frames`` frames and masks them with the paper's schedule, all
from generators seeded by (seed, step): resumable and deterministic like
the codec trainer. ``eval.jsonl`` records, on held-out tokens, the bits per
masked token when all fine layers of every frame are masked (the sender's
hardest case) per layer, against 10 bits without a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.neural.backbones import backbone_class
from lossbench.codecs.neural.tokens import codec_sha, tokenize
from lossbench.codecs.soundspring.mlm import ABSENT, ConcealMasks, MaskedTokenLM, MLMConfig, masked_batch, masked_ce
from lossbench.errors import ConfigError
from lossbench.training import LoopConfig, load_resume, run_loop


@dataclass
class MLMTrainConfig:
    steps: int = 100_000
    batch: int = 16
    frames: int = 100
    lr: float = 3e-4
    warmup: int = 1000
    seed: int = 0
    ckpt_every: int = 500
    eval_every: int = 2000
    max_hours: float | None = None  # tokenize at most this much training audio
    backbone: str = DEFAULT_BACKBONE  # whose tokens: the waveform codec's or the fargan quantiser's
    conceal_fraction: float = 0.0  # share of examples with concealment-time masks (mlm.ConcealMasks)
    pitch_sigma: float = 0.0  # > 0: ordinal soft targets on the pitch layers, Gaussian of this many periods
    pitch_weight: float = 0.5  # the soft part's share of the pitch layers' targets
    #: a new run starts from these exported weights (safetensors) and their step, with a fresh optimiser: a
    #: shipped model trained further
    init: str | None = None


def windows(tokens: np.ndarray, step: int, seed: int, batch: int, frames: int) -> np.ndarray:
    rng = np.random.default_rng([seed, step, 11])
    starts = rng.integers(0, tokens.shape[0] - frames, batch)
    return np.stack([tokens[s : s + frames] for s in starts])


@torch.no_grad()
def bits_per_fine_token(model: MaskedTokenLM, tokens: np.ndarray, frames: int, n_windows: int = 8) -> dict[str, float]:
    """Bits per token with every fine layer of every frame masked, coarse layers given."""
    cfg = model.cfg
    model.eval()
    nll = np.zeros(cfg.num_quantizers)
    count = 0
    for i in range(n_windows):
        s = (i * tokens.shape[0]) // n_windows
        w = torch.from_numpy(tokens[s : s + frames].astype(np.int64)).unsqueeze(0)
        inp = w.clone()
        inp[:, :, cfg.n_coarse :] = cfg.mask_id
        logp = torch.log_softmax(model(inp), -1)
        nll += -logp.gather(-1, w.unsqueeze(-1))[0, :, :, 0].sum(0).numpy()
        count += w.shape[1]
    model.train()
    bits = nll / count / np.log(2)
    return {f"bits@{k + 1}": round(float(bits[k]), 3) for k in range(cfg.n_coarse, cfg.num_quantizers)} | {
        "bits_fine_mean": round(float(bits[cfg.n_coarse :].mean()), 3)}


def train_mlm(data: Path, out: Path, cfg: MLMTrainConfig, model_cfg: MLMConfig = MLMConfig(),
              tokens: np.ndarray | None = None, valid: np.ndarray | None = None,
              threads: int | None = None, progress: bool = True) -> Path:
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    step = 0
    ckpt = out / "ckpt.pt"
    st = load_resume(ckpt)
    if st is not None:  # a resumed run keeps the size it was started with
        model_cfg = MLMConfig(**st["model_cfg"])
    elif cfg.init:  # and a run from exported weights their size
        from safetensors import safe_open

        with safe_open(cfg.init, "pt") as f:
            model_cfg = MLMConfig(**json.loads((f.metadata() or {})["model_cfg"]))
    model = MaskedTokenLM(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    if st is not None:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = int(st["step"])
    elif cfg.init:
        step = _init_from(model, Path(cfg.init), cfg.backbone)
    sha = codec_sha(backbone=cfg.backbone)
    if st is not None and st.get("backbone", "waveform") != cfg.backbone:
        raise ConfigError(f"{ckpt} was trained on the {st.get('backbone', 'waveform')!r} backbone's tokens, not the "
                          f"{cfg.backbone!r} backbone's: use another --out directory")
    if st is not None and st.get("codec_sha", sha) != sha:
        raise ConfigError(f"{ckpt} was trained on the tokens of codec weights {st['codec_sha']}, but the codec "
                          f"weights now are {sha}: start a new run in another --out directory")
    train = tokens if tokens is not None else tokenize(data, "train", max_hours=cfg.max_hours, backbone=cfg.backbone)
    val = valid if valid is not None else tokenize(data, "valid", backbone=cfg.backbone)
    model.train()
    conceal = ConcealMasks(fraction=cfg.conceal_fraction)
    pitch = None
    table = backbone_class(cfg.backbone).pitch_token_table()
    if cfg.pitch_sigma > 0 and table is not None:
        pitch = (backbone_class(cfg.backbone).pitch_layers, torch.from_numpy(table[0]), torch.from_numpy(table[1]),
                 float(cfg.pitch_sigma), float(cfg.pitch_weight))

    def train_step(step: int, want: bool) -> dict | None:
        w = windows(train, step, cfg.seed, cfg.batch, cfg.frames)
        inp, tgt, lm = masked_batch(w, model_cfg, np.random.default_rng([cfg.seed, step, 12]), conceal)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
        loss = masked_ce(model, inp, tgt, lm, pitch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"ce": loss.item()} if want else None

    def state(step: int) -> dict:
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "model_cfg": model_cfg.to_dict(), "codec_sha": sha, "backbone": cfg.backbone,
                "train_cfg": dict(cfg.__dict__)}

    def evaluate(step: int) -> dict:
        return bits_per_fine_token(model, val, min(cfg.frames, val.shape[0]))

    loop = LoopConfig(steps=cfg.steps, ckpt_every=cfg.ckpt_every, eval_every=cfg.eval_every,
                      desc="train soundspring", progress=progress, postfix=("ce",))
    return run_loop(out, loop, step, train_step, state, evaluate)


def _init_from(model: MaskedTokenLM, path: Path, backbone: str) -> int:
    """Load exported weights into ``model``; returns their training step. Refuses another backbone's."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("backbone", "waveform") != backbone:
        raise ConfigError(f"--init {str(path)!r} holds an MLM of the {meta.get('backbone', 'waveform')!r} backbone's "
                          f"tokens, not the {backbone!r} backbone's")
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return int(meta.get("step", 0))


def export_mlm(ckpt: Path, dest: Path, codec_weights: Path | None = None) -> Path:
    """Checkpoint -> float16 safetensors with the model configuration, step and backbone hash in metadata."""
    from safetensors.torch import save_file

    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in st["model"].items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    backbone = st.get("backbone", "waveform")
    save_file(tensors, str(dest), metadata={"model_cfg": json.dumps(st["model_cfg"]), "step": str(st["step"]),
                                            "codec_sha": st.get("codec_sha", codec_sha(codec_weights, backbone)),
                                            "backbone": backbone})
    return dest


__all__ = ["ABSENT", "MLMTrainConfig", "bits_per_fine_token", "export_mlm", "train_mlm"]
