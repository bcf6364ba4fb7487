"""Glaris stage III (paper §III-D 3, eqs. 12-13): fine-tune the backbone's latent decoder to Glaris's errors.

Stage II trains the transform coding with the backbone frozen, so the backbone's decoder keeps expecting
clean RVQ latents while it is fed g_s's reconstructions, whose errors have their own structure (and, under
loss, the PLC module's predictions). Stage III fine-tunes only that decoder, with Glaris frozen:

    L = alpha D_x(x, x^_con) + D_x(x, x^_rec) + lambda_l L_l        (eq. 12-13)

On the fargan backbone the "source" the decoder produces is the LPCNet feature frame that FARGAN voices
(FARGAN itself is a fixed C vocoder, not fine-tuned), so D_x is a weighted squared error of the learned
features in z units, like the backbone's training error: the 18 cepstral values and the pitch correlation of
both 10 ms halves, c0 weighing twice the others (the backbone's default cepstral weights; its correlation
weighs 1 here, 0.5 in the backbone's training). L_l re-encodes the decoded features
with the backbone's (frozen) encoder and compares the latent with the one Glaris coded (lambda_l = 0.05, the
paper's default). x^_rec decodes Glaris's lossless reconstruction, x^_con the one with random frame losses
(y and z masks as in stage II) concealed by the side-information PLC. The result is a second decoder, shipped
beside Glaris's modules (``glaris_decoder_fargan.safetensors``); the rvq, SoundSpring and plain backbone
paths keep the original one.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

NB = 20


def train_stage3(data: Path, out: Path | None = None, steps: int = 3000, batch: int = 16, pairs: int = 48,
                 lr: float = 2e-4, alpha: float = 1.0, lambda_l: float = 0.05, seed: int = 0,
                 q_range: tuple[int, int] = (0, 63), threads: int | None = None, progress: bool = True,
                 glaris_weights: str | None = None, ckpt_dir: Path | None = None, feats: np.ndarray | None = None,
                 valid: np.ndarray | None = None) -> tuple[Path, dict]:
    """Fine-tune the fargan backbone's feature decoder on the shipped Glaris's reconstructions, on
    :func:`~lossbench.training.run_loop` (resumable from ``ckpt_dir``, default ``checkpoints/glaris_stage3_fargan``:
    every step's draws come from generators seeded by (seed, step)); write it. ``feats``/``valid``: feature arrays
    instead of the data directory's (tests)."""

    from lossbench.codecs.neural.backbones import backbone_class
    from lossbench.codecs.neural.threads import torch_threads

    ck = Path(ckpt_dir) if ckpt_dir else backbone_class("fargan").checkpoint_dir("glaris_stage3")
    ck.mkdir(parents=True, exist_ok=True)
    with torch_threads(threads):
        return _train(data, out, steps, batch, pairs, lr, alpha, lambda_l, seed, q_range, progress, glaris_weights,
                      ck, feats, valid)


def _train(data, out, steps, batch, pairs, lr, alpha, lambda_l, seed, q_range, progress, glaris_weights, ck,
           feats, valid) -> tuple[Path, dict]:
    from safetensors.torch import save_file

    from lossbench.codecs.glaris.model import random_masks
    from lossbench.codecs.glaris.weights import glaris_path, load_glaris
    from lossbench.codecs.neural.backbones import backbone_class, get_backbone
    from lossbench.codecs.neural.tokens import codec_sha
    from lossbench.codecs.neural.train_fargan import feature_cache
    from lossbench.files import file_hash
    from lossbench.training import LoopConfig, load_resume, run_loop

    torch.manual_seed(seed)
    bb = get_backbone("fargan", None)
    net = bb.model.net
    for p in net.parameters():
        p.requires_grad_(False)
    gl = load_glaris(glaris_weights, "fargan")
    for p in gl.parameters():
        p.requires_grad_(False)
    gl.eval()
    dec = copy.deepcopy(net.decoder_net)
    for p in dec.parameters():
        p.requires_grad_(True)
    dec.train()
    opt = torch.optim.AdamW(dec.parameters(), lr=lr, weight_decay=0.0)
    feats = feature_cache(Path(data), "train") if feats is None else feats
    valid = feature_cache(Path(data), "valid") if valid is None else valid
    cfg = bb.model.cfg
    P = cfg.frames_per_hop
    learned = [f * NB + i for f in range(P) for i in list(range(18)) + [19]]
    w = torch.ones(len(learned))
    w[[f * 19 for f in range(P)]] = 2.0  # c0 weighs twice, as the backbone's feature weights do
    w = (w / w.mean()).view(1, -1, 1)
    D = gl.cfg.latent_dim
    scale = gl.cfg.latent_scale
    n_rvq = cfg.num_quantizers - cfg.pitch_layers

    def latents(x: torch.Tensor):
        """Features (B, 2T, 20) -> (pairs, pitch values, clean latent l (B, D, T), its pre-quantisation z)."""
        pr = net.normalise(x)
        pv = net.pitch_values(net.pitch_tokens(x))
        z = net.encode_latent(pr)
        codes = net.quantizer.encode(z, n_rvq)
        return pr, pv, net.quantizer.decode(codes), z

    def reconstructions(lat: torch.Tensor, q: torch.Tensor, gen: torch.Generator):
        B, _, T = lat.shape
        y = gl.analysis(lat / scale, q)
        zq, _, _ = gl.side(y, 2)
        yq = gl.dequantize(gl.quantize(y, q), q)
        l_rec = gl.synthesis(yq, q) * scale
        my, mz = random_masks(B, T, gen)
        s_con = gl.hyper(zq, mz)
        yp = gl.plc(s_con, yq, my, mz, q)
        l_con = gl.synthesis(torch.where(my[:, None, :], yp, yq), q) * scale
        return l_rec, l_con

    def err(out: torch.Tensor, pr: torch.Tensor) -> torch.Tensor:
        return ((out[:, learned] - pr[:, learned]) ** 2 * w).mean()

    def evaluate(module, n: int = 8) -> dict[str, float]:
        rng = np.random.default_rng(77)
        gen = torch.Generator().manual_seed(77)
        e = {"rec": 0.0, "con": 0.0, "rvq12": 0.0}
        with torch.no_grad():
            for _ in range(n):
                st = rng.integers(0, (valid.shape[0] - 2 * pairs) // 2, batch) * 2
                x = torch.from_numpy(np.stack([valid[s : s + 2 * pairs] for s in st]))
                pr, pv, lq, _ = latents(x)
                q = torch.full((batch,), 48, dtype=torch.long)
                l_rec, l_con = reconstructions(lq[:, :D], q, gen)
                e["rec"] += float(err(net.decode_latent(torch.cat([l_rec, pv], 1), module), pr)) / n
                e["con"] += float(err(net.decode_latent(torch.cat([l_con, pv], 1), module), pr)) / n
                codes = net.quantizer.encode(net.encode_latent(pr), 10)
                lat12 = torch.cat([net.quantizer.decode(codes), pv], 1)
                e["rvq12"] += float(err(net.decode_latent(lat12, net.decoder_net), pr)) / n
        return e

    before = evaluate(net.decoder_net)
    t0 = time.time()
    log: list[dict] = []
    step = 0
    if (st := load_resume(ck / "ckpt.pt")) is not None:
        dec.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        log, step = st["log"], st["step"]

    def train_step(step: int, want: bool) -> dict | None:
        rng = np.random.default_rng([seed, step, 3])
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        st = rng.integers(0, (feats.shape[0] - 2 * pairs) // 2, batch) * 2
        x = torch.from_numpy(np.stack([feats[s : s + 2 * pairs] for s in st]))
        q = torch.from_numpy(rng.integers(q_range[0], q_range[1] + 1, batch))
        with torch.no_grad():
            pr, pv, lq, z = latents(x)
            l_rec, l_con = reconstructions(lq[:, :D], q, gen)
        f_rec = net.decode_latent(torch.cat([l_rec, pv], 1), dec)
        f_con = net.decode_latent(torch.cat([l_con, pv], 1), dec)
        loss_x = alpha * err(f_con, pr) + err(f_rec, pr)
        z_hat = net.encode_latent(f_rec)
        loss_l = ((z_hat - z) ** 2).mean()
        loss = loss_x + lambda_l * loss_l
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 200)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 5.0)
        opt.step()
        if not want:
            return None
        log.append({"step": step + 1, "loss_x": float(loss_x), "loss_l": float(loss_l)})
        return {"loss_x": float(loss_x), "loss_l": float(loss_l)}

    def state(step: int) -> dict:
        return {"model": dec.state_dict(), "opt": opt.state_dict(), "log": log, "step": step, "backbone": "fargan"}

    run_loop(ck, LoopConfig(steps=steps, ckpt_every=500, eval_every=steps + 1, log_every=250,
                            desc="train glaris-stage3", progress=progress), step, train_step, state)
    dec.eval()
    after = evaluate(dec)
    ev = {"before": before, "after": after, "seconds": time.time() - t0, "threads": torch.get_num_threads()}
    dest = Path(out) if out else backbone_class("fargan").shipped_path("glaris_decoder")
    meta = {"step": str(steps), "backbone": "fargan", "codec_sha": codec_sha(backbone="fargan"),
            "glaris_sha": file_hash(glaris_path(glaris_weights, "fargan")), "evaluation": json.dumps(ev),
            "log": json.dumps(log), "alpha": str(alpha), "lambda_l": str(lambda_l), "lr": str(lr),
            "q_range": f"{q_range[0]}-{q_range[1]}"}
    save_file({k: v.detach().contiguous() for k, v in dec.state_dict().items()}, str(dest), metadata=meta)
    return dest, ev
