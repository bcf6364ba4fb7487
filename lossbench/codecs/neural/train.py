"""``lossbench train codec``: reproducible, resumable training of the RVQ codec.

Everything random in a step (the crops, gains, quantiser-dropout depths,
dead-code re-seeding) is drawn from generators seeded by (seed, step), so a
run resumed from a checkpoint continues exactly as an uninterrupted one and
two runs with the same seed and data are identical on the same hardware.

Writes under ``--out``: ``ckpt.pt`` (model, discriminator, optimisers, step;
replaced atomically every ``ckpt_every`` steps), ``log.jsonl`` (losses every
50 steps) and ``eval.jsonl`` (PESQ-WB / STOI on held-out speech at K = 3, 6,
12, 24 every ``eval_every`` steps). ``export_weights`` writes the shipped
safetensors (weights only, float16).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lossbench.codecs.neural.losses import (
    MultiScaleSTFTDiscriminator,
    discriminator_loss,
    generator_losses,
    multi_resolution_stft,
    multi_scale_mel,
)
from lossbench.codecs.neural.model import CodecConfig, NeuralCodec
from lossbench.data.heldout import eval_clips
from lossbench.errors import ConfigError
from lossbench.training import LoopConfig, load_resume, run_loop

EVAL_K = (3, 6, 12, 24)


@dataclass
class TrainConfig:
    steps: int = 200_000
    batch: int = 16
    seconds: float = 1.0
    lr: float = 5e-4
    seed: int = 0
    adv_start: int = 20_000
    ckpt_every: int = 500
    eval_every: int = 2000
    eval_clips: int = 8
    w_mel: float = 1.0
    w_stft: float = 1.0
    w_wave: float = 0.1
    w_commit: float = 0.25
    w_adv: float = 0.1
    w_fm: float = 1.0


class SpeechData:
    """All training audio in one int16 array (cached as ``train_int16.npy``)."""

    def __init__(self, root: Path, split: str = "train"):
        man = root / "manifest.jsonl"
        if not man.exists():
            raise ConfigError(f"{root}: no manifest.jsonl; build the data with 'lossbench data prepare-speech {root}'")
        self.entries = [e for e in map(json.loads, man.read_text().splitlines()) if e["split"] == split]
        if not self.entries:
            raise ConfigError(f"{root}: no '{split}' files in the manifest")
        self.root = root
        cache = root / f"{split}_int16.npy"
        if cache.exists() and cache.stat().st_mtime >= man.stat().st_mtime:
            self.audio = np.load(cache, mmap_mode="r")
        else:
            import soundfile as sf

            parts = [sf.read(root / e["file"], dtype="int16")[0] for e in self.entries]
            self.audio = np.concatenate(parts)
            np.save(cache, self.audio)
        self.hours = self.audio.shape[0] / 16000 / 3600

    def batch(self, step: int, seed: int, batch: int, n: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, step, 1])
        starts = rng.integers(0, self.audio.shape[0] - n, batch)
        x = np.stack([self.audio[s : s + n] for s in starts]).astype(np.float32) / 32768.0
        gain = 10 ** (rng.uniform(-6, 4, (batch, 1)) / 20)
        return torch.from_numpy(np.clip(x * gain, -1, 1).astype(np.float32)).unsqueeze(1)


def dropout_depths(step: int, seed: int, batch: int, n_q: int) -> torch.Tensor:
    """Per-example layer counts, biased toward few layers: K = ceil(n_q * u^2)."""
    u = np.random.default_rng([seed, step, 2]).random(batch)
    return torch.from_numpy(np.maximum(1, np.ceil(n_q * u**2)).astype(np.int64))


def evaluate(model: NeuralCodec, clips: list[np.ndarray], device: torch.device) -> dict[str, float]:
    from lossbench.metrics import compute_metrics

    model.eval()
    res: dict[str, list[float]] = {}
    hop = model.cfg.hop
    with torch.no_grad():
        for x in clips:
            n = len(x) // hop * hop
            t = torch.from_numpy(x[:n]).view(1, 1, -1).to(device)
            for k in EVAL_K:
                y = model.decode_codes(model.encode(t, k))[0, 0].cpu().numpy()
                y = y[hop:]  # the decoder's one-hop delay
                m = compute_metrics(y, x[: y.size], 16000, ["pesq_wb", "stoi", "si_snr"])
                for name in ("pesq_wb", "stoi", "si_snr"):
                    res.setdefault(f"{name}@{k}", []).append(m[name])
    model.train()
    return {k: float(np.nanmean(v)) for k, v in res.items()}


def init_from_weights(model: NeuralCodec, weights: Path) -> int:
    """Start from shipped safetensors weights (no optimiser state: a warm start, not a resume).

    Returns the training step the weights were exported at (0 if unknown), so
    the step count, the data order and the eval log continue from there.
    """
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        exported_step = int((f.metadata() or {}).get("step", 0))
        if CodecConfig.from_dict(json.loads((f.metadata() or {})["model_cfg"])) != model.cfg:
            raise ConfigError(f"{weights} holds another model configuration than the one being trained")
        state = model.state_dict()
        for k in f.keys():
            state[k] = f.get_tensor(k).to(state[k].dtype)
    for name, _layer in model.quantizer.layers.named_children():
        p = f"quantizer.layers.{name}."
        state[p + "embed_sum"] = state[p + "embed"].clone()
        state[p + "cluster_size"] = torch.ones_like(state[p + "cluster_size"])
        state[p + "initted"] = torch.ones((), dtype=torch.bool)
    model.load_state_dict(state)
    return exported_step


def train_codec(data: Path, out: Path, cfg: TrainConfig, model_cfg: CodecConfig = CodecConfig(),
                threads: int | None = None, progress: bool = True, init_weights: Path | None = None) -> Path:
    """Train (or resume) the codec; returns the checkpoint path."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = NeuralCodec(model_cfg).to(device)
    disc = MultiScaleSTFTDiscriminator().to(device)
    opt_g = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.8, 0.99))
    step = 0
    ramp_from = None
    st = load_resume(out / "ckpt.pt")
    if st is not None:
        if st["model_cfg"] != model_cfg.to_dict():
            raise ConfigError(f"{out / 'ckpt.pt'} was trained with another model configuration: {st['model_cfg']}")
        model.load_state_dict(st["model"])
        disc.load_state_dict(st["disc"])
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        step = int(st["step"])
    elif init_weights is not None:
        step = init_from_weights(model, init_weights)
        ramp_from = step  # fresh optimiser moments after a warm start: ramp the learning rate again
    (out / "config.json").write_text(json.dumps({"train": cfg.__dict__, "model": model_cfg.to_dict()}, indent=1))
    ds = SpeechData(data, "train")
    evals = eval_clips(data, cfg.eval_clips)
    n = int(cfg.seconds * 16000) // model_cfg.hop * model_cfg.hop
    hop = model_cfg.hop
    model.train()

    def train_step(step: int, want: bool) -> dict | None:
        x = ds.batch(step, cfg.seed, cfg.batch, n).to(device)
        depths = dropout_depths(step, cfg.seed, cfg.batch, model_cfg.num_quantizers).to(device)
        gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + step)
        lr = cfg.lr * min(1.0, (step + 1) / 500, 1.0 if ramp_from is None else (step - ramp_from + 1) / 200)
        for g in opt_g.param_groups + opt_d.param_groups:
            g["lr"] = lr
        z = model.encoder(x)
        zq, commit = model.quantizer(z, depths, gen)
        y = model.decoder(zq)[:, 0, hop:]
        target = x[:, 0, : y.shape[1]]
        l_mel = multi_scale_mel(y, target)
        l_stft = multi_resolution_stft(y, target)
        l_wave = (y - target).abs().mean()
        loss = cfg.w_mel * l_mel + cfg.w_stft * l_stft + cfg.w_wave * l_wave + cfg.w_commit * commit
        adv_on = step >= cfg.adv_start
        l_adv = l_fm = l_d = torch.zeros(())
        if adv_on:
            real = disc(target)
            fake = disc(y)
            l_adv, l_fm = generator_losses(real, fake)
            loss = loss + cfg.w_adv * l_adv + cfg.w_fm * l_fm
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt_g.step()
        if adv_on:
            l_d = discriminator_loss(disc(target), disc(y.detach()))
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()
        if not want:
            return None
        return {"mel": l_mel.item(), "stft": l_stft.item(), "wave": l_wave.item(), "commit": commit.item(),
                "adv": float(l_adv), "fm": float(l_fm), "disc": float(l_d), "lr": lr}

    def state(step: int) -> dict:
        return {"model": model.state_dict(), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(), "step": step, "model_cfg": model_cfg.to_dict(), "train_cfg": cfg.__dict__}

    def evaluate_step(step: int) -> dict:
        return {k: round(v, 4) for k, v in evaluate(model, evals, device).items()}

    loop = LoopConfig(steps=cfg.steps, ckpt_every=cfg.ckpt_every, eval_every=cfg.eval_every, desc="train codec",
                      progress=progress, postfix=("mel", "stft"))
    return run_loop(out, loop, step, train_step, state, evaluate_step)


def export_weights(ckpt: Path, dest: Path, half: bool = True, metadata: dict[str, str] | None = None) -> Path:
    """Write the model weights (float16 unless ``half`` is off; no optimiser state, no EMA statistics)
    as safetensors, with the model configuration, the step and ``metadata``."""
    from safetensors.torch import save_file

    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    tensors = {}
    for k, v in st["model"].items():
        if k.endswith(("cluster_size", "embed_sum", "initted")):
            continue  # EMA training statistics
        tensors[k] = v.half().contiguous() if half and v.is_floating_point() else v.contiguous()
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dest), metadata={"model_cfg": json.dumps(st["model_cfg"]), "step": str(st["step"]),
                                             **(metadata or {})})
    return dest
