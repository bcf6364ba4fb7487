"""A concealment head on the masked LM: the lost coarse tokens as a change from the last known frame.

The shipped MLM predicts a lost frame's coarse tokens badly (top-1 about 2 % on each of the three coarse
layers, where repeating the previous frame gets 13 %): each is one class of 1024, read from a frame
embedding that sums every layer's table, and the paper's masking schedule rarely masks them. The head keeps
the MLM (frozen) as the context model and changes what is predicted (issue #22: "a delta from the
neighbouring frames, or an equivalent"): from the MLM's hidden state at the lost frame and the last known
frame's coarse tokens, it predicts

- each 10 ms half's pitch period as a change from the last known period (a class in -DELTA..DELTA) and its
  correlation level (one of 4);
- the first RVQ layer's code vector as a residual from the last known one (then the nearest codeword).

lossbench's, not the paper's (``mlm-head`` uses it when the backbone has pitch tokens and the head weights are
shipped; ``mlm-paper`` keeps the argmax over the MLM's own coarse heads). Trained by
``lossbench train soundspring-head`` on concealment-time masks (a contiguous gap ending near the end of a
20-frame window, coarse layers only visible).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lossbench.codecs.neural.fargan import CORR_LEVELS, PERIOD_LEVELS, PERIOD_MIN  # the pitch token format

DELTA = 24  # largest period change a class stands for (larger ones are clamped)


@dataclass(frozen=True)
class HeadConfig:
    dim: int = 128  # the MLM's width
    hidden: int = 256
    latent: int = 64  # the RVQ code vectors' size
    corr_levels: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class CoarseHead(nn.Module):
    def __init__(self, cfg: HeadConfig = HeadConfig()):
        super().__init__()
        self.cfg = cfg
        cin = cfg.dim + 2 + 2 * cfg.corr_levels + cfg.latent + 4
        self.net = nn.Sequential(nn.Linear(cin, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU())
        nd = 2 * DELTA + 1
        self.delta = nn.Linear(cfg.hidden, 2 * nd)
        self.corr = nn.Linear(cfg.hidden, 2 * cfg.corr_levels)
        self.res = nn.Linear(cfg.hidden, cfg.latent)

    def inputs(self, h: torch.Tensor, prev_period: torch.Tensor, prev_corr: torch.Tensor, prev_vec: torch.Tensor,
               gap: torch.Tensor) -> torch.Tensor:
        """h (n, dim); prev_period (n, 2) float; prev_corr (n, 2) long; prev_vec (n, latent); gap (n,) long 1..4."""
        oc = F.one_hot(prev_corr, self.cfg.corr_levels).float().reshape(len(h), -1)
        og = F.one_hot((gap - 1).clamp(0, 3), 4).float()
        return torch.cat([h, (prev_period - 128.0) / 64.0, oc, prev_vec, og], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.net(x)
        nd = 2 * DELTA + 1
        return (self.delta(z).view(-1, 2, nd), self.corr(z).view(-1, 2, self.cfg.corr_levels), self.res(z))


# --------------------------------------------------------------------------- prediction



def periods_of(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens) // CORR_LEVELS + PERIOD_MIN


class CoarsePredictor:
    """The head with its MLM and the backbone's first RVQ layer's code vectors, ready to conceal."""

    def __init__(self, head: CoarseHead, mlm, rvq_codebook: np.ndarray, pitch_layers: int = 2) -> None:
        self.head = head.eval()
        self.mlm = mlm
        self.cb = torch.from_numpy(np.asarray(rvq_codebook, np.float32))
        self.P = pitch_layers

    @property
    def latent_size(self) -> int:
        """The size of the backbone latent the head's corrections are added to (RVQ part + 4 pitch rows)."""
        return int(self.cb.shape[1]) + 4

    def codeword(self, tokens: np.ndarray) -> np.ndarray:
        return self.cb[torch.from_numpy(np.asarray(tokens, np.int64))].numpy()

    def features(self, h: torch.Tensor, prev: np.ndarray, gap: np.ndarray) -> torch.Tensor:
        P = self.P
        pp = torch.from_numpy(periods_of(prev[:, :P]).astype(np.float32))
        pc = torch.from_numpy((prev[:, :P] % CORR_LEVELS).astype(np.int64))
        pv = self.cb[torch.from_numpy(prev[:, P].astype(np.int64))]
        return self.head.inputs(h, pp, pc, pv, torch.from_numpy(np.asarray(gap, np.int64)))

    def predict(self, visible: np.ndarray, frames: np.ndarray, prev: np.ndarray, gap: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Coarse tokens (n, P + 1) and the continuous first-RVQ-layer vector (n, latent) of ``frames``.

        ``visible`` is the window's coarse tokens (-1 masked); ``prev`` the coarse tokens of each frame's last
        known frame, ``gap`` how many frames back it is. The period is the median of the change's distribution
        (the estimate of least expected absolute error), the correlation level the most likely one, the RVQ
        token the codeword nearest the predicted vector.
        """
        from lossbench.codecs.neural.threads import single_thread

        inp = np.where(visible == -1, self.mlm.cfg.mask_id, visible)
        with torch.no_grad(), single_thread():
            h = self.mlm.hidden(torch.from_numpy(inp.astype(np.int64)).unsqueeze(0), torch.from_numpy(frames))[0]
            dl, cl, res = self.head(self.features(h, prev, gap))
            med = (dl.softmax(-1).cumsum(-1) < 0.5).sum(-1).numpy() - DELTA  # (n, 2)
            corr = cl.argmax(-1).numpy()
            vec = self.cb[torch.from_numpy(prev[:, self.P].astype(np.int64))] + res
            tok = torch.cdist(vec, self.cb).argmin(1).numpy()
        base = periods_of(prev[:, self.P - 1])[:, None]  # the last known period (the later half)
        per = np.clip(base + med, PERIOD_MIN, PERIOD_MIN + PERIOD_LEVELS - 1)
        out = np.empty((len(frames), self.P + 1), dtype=np.int64)
        out[:, : self.P] = (per - PERIOD_MIN) * CORR_LEVELS + corr
        out[:, self.P] = tok
        return out, vec.numpy()


def first_rvq_codebook(backbone) -> np.ndarray:
    """(V, D) code vectors of the backbone's first RVQ layer (the coarse layer after the pitch tokens)."""
    return backbone.rvq_layers()[0].embed.detach().float().numpy()


# --------------------------------------------------------------------------- training

def concealment_batch(tokens: np.ndarray, rng: np.random.Generator, mask_id: int, batch: int = 64, window: int = 20,
                      nc: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of coarse tokens with a gap of 1-4 frames ending in the last 4 frames (what the stream receiver
    conceals): (true (B, W, nc), input with the gap masked, rows (b, frame, last known frame, gap))."""
    st = rng.integers(0, len(tokens) - window, batch)
    win = np.stack([tokens[s : s + window, :nc] for s in st]).astype(np.int64)
    L = np.minimum(4, rng.geometric(0.5, batch))
    end = window - rng.integers(0, 4, batch)
    inp = win.copy()
    rows = []
    for b in range(batch):
        g0 = end[b] - L[b]
        inp[b, g0 : end[b]] = mask_id
        rows += [(b, j, g0 - 1, j - g0 + 1) for j in range(g0, end[b])]
    return win, inp, np.array(rows)


def head_loss(pred: CoarsePredictor, win: np.ndarray, inp: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    P = pred.P
    with torch.no_grad():
        h = pred.mlm.hidden(torch.from_numpy(inp))
    b, j, p, g = rows.T
    prev, tgt = win[b, p], win[b, j]
    dl, cl, res = pred.head(pred.features(h[b, j], prev, g))
    base = torch.from_numpy(periods_of(prev[:, P - 1]).astype(np.int64))[:, None]
    d = (torch.from_numpy(periods_of(tgt[:, :P]).astype(np.int64)) - base).clamp(-DELTA, DELTA) + DELTA
    tc = torch.from_numpy(tgt[:, :P] % CORR_LEVELS)
    tv = pred.cb[torch.from_numpy(tgt[:, P])]
    pv = pred.cb[torch.from_numpy(prev[:, P])]
    return (F.cross_entropy(dl.reshape(-1, dl.shape[-1]), d.reshape(-1))
            + F.cross_entropy(cl.reshape(-1, CORR_LEVELS), tc.reshape(-1))
            + ((pv + res - tv) ** 2).sum(1).mean() / 10.0)


def evaluate_head(pred: CoarsePredictor, tokens: np.ndarray, batches: int = 8, seed: int = 99) -> dict[str, float]:
    """Mean absolute period error and squared first-RVQ-layer vector error on held-out gaps: head vs copy."""
    rng = np.random.default_rng(seed)
    e: dict[str, list] = {"pitch_head": [], "pitch_copy": [], "vec_head": [], "vec_copy": []}
    P = pred.P
    for _ in range(batches):
        win, inp, rows = concealment_batch(tokens, rng, pred.mlm.cfg.mask_id)
        b, j, p, g = rows.T
        for i in np.unique(b):
            r = rows[b == i]
            out, vec = pred.predict(inp[i], r[:, 1], win[i, r[:, 2]], r[:, 3])
            tgt, prev = win[i, r[:, 1]], win[i, r[:, 2]]
            e["pitch_head"].append(np.abs(periods_of(out[:, :P]) - periods_of(tgt[:, :P])).ravel())
            e["pitch_copy"].append(np.abs(periods_of(prev[:, :P]) - periods_of(tgt[:, :P])).ravel())
            tv = pred.cb[torch.from_numpy(tgt[:, P])].numpy()
            e["vec_head"].append(((vec - tv) ** 2).sum(1))
            e["vec_copy"].append(((pred.cb[torch.from_numpy(prev[:, P])].numpy() - tv) ** 2).sum(1))
    return {k: float(np.concatenate(v).mean()) for k, v in e.items()}


def train_head(data, out, backbone: str = "fargan", steps: int = 3000, lr: float = 1e-3, seed: int = 0,
               threads: int | None = None, max_hours: float | None = 3.0, progress: bool = True,
               ckpt_dir: Path | None = None, tokens: np.ndarray | None = None, valid: np.ndarray | None = None):
    """Train the head on the shipped MLM (frozen) and codec, on :func:`~lossbench.training.run_loop` (resumable
    from ``ckpt_dir``, default ``checkpoints/coarse_head_<backbone>``); write ``coarse_head_<backbone>.safetensors``
    (or ``out``) and return (path, the held-out evaluation). ``tokens``/``valid``: token arrays instead of the
    data directory's (tests).

    The batches come from one generator seeded with ``seed`` whose state the checkpoint keeps (with torch's), so
    a resumed run draws what an unbroken one would."""
    import json

    from safetensors.torch import save_file

    from lossbench.codecs.neural.backbones import backbone_class, get_backbone
    from lossbench.codecs.neural.threads import torch_threads
    from lossbench.codecs.neural.tokens import codec_sha, tokenize
    from lossbench.codecs.soundspring.weights import load_mlm, mlm_path
    from lossbench.errors import ConfigError
    from lossbench.files import file_hash
    from lossbench.training import LoopConfig, load_resume, run_loop

    bc = backbone_class(backbone)
    if bc.pitch_token_table() is None:
        raise ConfigError(f"the coarse head predicts pitch periods; backbone {backbone!r} has no pitch tokens")
    ck = Path(ckpt_dir) if ckpt_dir else bc.checkpoint_dir("coarse_head")
    ck.mkdir(parents=True, exist_ok=True)
    with torch_threads(threads):
        mlm = load_mlm(None, backbone)
        bb = get_backbone(backbone, None)
        P = bc.pitch_layers
        cb = first_rvq_codebook(bb)
        # seeded here, after the loaders: a model built on first load would draw from torch's generator, and the
        # loaders are cached per process, so seeding before them made the head's start depend on what ran before
        torch.manual_seed(seed)
        head = CoarseHead(HeadConfig(dim=mlm.cfg.dim, latent=cb.shape[1]))
        pred = CoarsePredictor(head, mlm, cb, P)
        train = (tokens if tokens is not None else
                 tokenize(Path(data), "train", max_hours=max_hours, backbone=backbone)).astype(np.int64)
        held = (valid if valid is not None else tokenize(Path(data), "valid", backbone=backbone)).astype(np.int64)
        opt = torch.optim.AdamW(head.parameters(), lr=lr)
        rng = np.random.default_rng(seed)
        log: list[dict] = []
        step = 0
        if (st := load_resume(ck / "ckpt.pt")) is not None:
            head.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            rng.bit_generator.state = st["rng"]
            torch.set_rng_state(st["torch_rng"])
            log, step = st["log"], st["step"]
        head.train()

        def train_step(step: int, want: bool) -> dict | None:
            win, inp, rows = concealment_batch(train, rng, mlm.cfg.mask_id)
            loss = head_loss(pred, win, inp, rows)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not want:
                return None
            rec = {"step": step + 1, "loss": float(loss.item())}
            log.append(rec)
            return {"loss": rec["loss"]}

        def state(step: int) -> dict:
            return {"model": head.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "log": log, "step": step, "backbone": backbone}

        run_loop(ck, LoopConfig(steps=steps, ckpt_every=500, eval_every=steps + 1, log_every=250,
                                desc="train soundspring-head", progress=progress), step, train_step, state)
        head.eval()
        ev = evaluate_head(pred, held)
    dest = Path(out) if out else bc.shipped_path("coarse_head")
    meta = {"config": json.dumps(head.cfg.to_dict()), "step": str(steps), "backbone": backbone,
            "codec_sha": codec_sha(backbone=backbone), "mlm_sha": file_hash(mlm_path(None, backbone)),
            "evaluation": json.dumps(ev), "log": json.dumps(log)}
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(dest), metadata=meta)
    return dest, ev


def load_head(backbone: str, mlm, path=None) -> CoarsePredictor | None:
    """The shipped (or given) head of ``backbone``'s MLM, or None where the backbone has none."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    from lossbench.codecs.neural.backbones import backbone_class, get_backbone
    from lossbench.codecs.soundspring.weights import mlm_path
    from lossbench.errors import ConfigError
    from lossbench.files import file_hash

    bc = backbone_class(backbone)
    if "coarse_head" not in bc.shipped and path is None:
        return None
    p = bc.shipped_path("coarse_head", path)
    if not p.exists():
        return None
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata() or {}
    if path is None and meta.get("mlm_sha") not in (None, file_hash(mlm_path(None, backbone))):
        raise ConfigError(f"{p} was trained on another masked LM (sha {meta.get('mlm_sha')}); retrain it with "
                          f"'lossbench train soundspring-head --backbone {backbone}'")
    head = CoarseHead(HeadConfig(**json.loads(meta["config"])))
    head.load_state_dict({k: v.float() for k, v in load_file(str(p)).items()})
    return CoarsePredictor(head, mlm, first_rvq_codebook(get_backbone(backbone, None)), bc.pitch_layers)
