"""The masked token language model of SoundSpring (paper §III-A, §IV-D).

::

    tokens (T frames x K layers, 1024 values, [MASK] = 1024, absent layers)
      --per-layer embedding tables, summed per frame (+ position)-->
    bidirectional Transformer over frames
      --N_q heads--> one PMF over 1024 codes per layer and frame

Training masks, per example: tau ~ U(0, 1); floor(T * beta(tau)) frames with
beta(tau) = (1 + cos(pi tau)) / 2; K ~ U{N_C..N_q} layers present; k ~ U{1..K};
layers k..K of the chosen frames become [MASK]; cross-entropy on masked
tokens only. One model thus learns both the sender's coding dependency
(many frames masked, fine layers only) and the receiver's concealment
dependencies (few frames, any layers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ABSENT = -1


@dataclass(frozen=True)
class MLMConfig:
    num_quantizers: int = 24
    vocab: int = 1024
    n_coarse: int = 3
    dim: int = 128  # the shipped model's size; the first model (mlm_large) had 192 / 4 blocks / 768
    depth: int = 3
    heads: int = 4
    ff: int = 512
    max_frames: int = 256

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def mask_id(self) -> int:
        return self.vocab


class MaskedTokenLM(nn.Module):
    offsets: torch.Tensor  # a buffer (register_buffer), typed for mypy

    def __init__(self, cfg: MLMConfig = MLMConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_quantizers * (cfg.vocab + 1), cfg.dim)
        self.pos = nn.Embedding(cfg.max_frames, cfg.dim)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ff, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.transformer = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        # output heads tied to the input tables: logits_k = (W_k h) . E_k^T + b_k
        self.head_proj = nn.Parameter(torch.randn(cfg.num_quantizers, cfg.dim, cfg.dim) / math.sqrt(cfg.dim))
        self.head_bias = nn.Parameter(torch.zeros(cfg.num_quantizers, cfg.vocab))
        self.register_buffer("offsets", torch.arange(cfg.num_quantizers) * (cfg.vocab + 1), persistent=False)

    def hidden(self, tokens: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T, Q) -> the Transformer's output (B, T, dim), or (B, len(frames), dim) at ``frames``.

        With ``frames`` (outside training) the last block computes its queries,
        attention output and feed-forward only at those frames: every frame
        still serves as key and value, so the result is the full pass's at
        those frames, for a fraction of the last block's cost (a coder needs
        the PMFs of a few frames of a window of 15-30).
        """
        B, T, Q = tokens.shape
        if T > self.cfg.max_frames:
            raise ValueError(f"at most {self.cfg.max_frames} frames per window, got {T}")
        present = tokens >= 0
        idx = tokens.clamp(min=0) + self.offsets[:Q]
        e = (self.embed(idx) * present.unsqueeze(-1)).sum(2)
        e = e + self.pos(torch.arange(T, device=tokens.device))
        if frames is None or self.training or torch.is_grad_enabled():
            h = self.norm(self.transformer(e))
            return h if frames is None else h[:, frames]
        frozen = self._frozen_body()
        if frozen is not None:
            return frozen(e, frames)
        layers = self.transformer.layers
        for i in range(len(layers) - 1):
            e = layers[i](e)
        return self.norm(_LastBlockAt(layers[-1])(e, frames))

    def freeze(self) -> MaskedTokenLM:
        """Compile the inference path: a frozen TorchScript graph of the blocks (the last at the coded frames).

        Freezing pre-packs the linear layers' weights for the CPU's matrix
        kernels and drops the per-call Python work: a pass over a 15-frame
        window takes about half the eager time. Used by :meth:`hidden` with
        ``frames`` outside training and autograd, while the weights are the
        ones frozen (any change to them falls back to the eager path). The
        graph is fixed at freezing, so every call of the same shapes computes
        the same floating-point results, at the sender and at the receiver.
        """
        import warnings

        self.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(_Body(self).eval())))
        self._params = list(self.parameters())
        self._frozen = (body, self._weights_key())
        return self

    def _weights_key(self) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in self._params)

    def _frozen_body(self):
        fz = getattr(self, "_frozen", None)
        if fz is None or fz[1] != self._weights_key():
            return None
        return fz[0]

    def logits_at(self, h: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
        """Logits (n, vocab) of n hidden vectors (n, dim), each for its own layer (n,)."""
        V = self.cfg.vocab
        table = self.embed.weight.view(self.cfg.num_quantizers, V + 1, -1)[:, :V]
        out = h.new_empty(h.shape[0], V)
        for q in torch.unique(layer).tolist():
            m = layer == q
            out[m] = (h[m] @ self.head_proj[q]) @ table[q].T + self.head_bias[q]
        return out

    def _out_table(self) -> torch.Tensor:
        """The tied output embeddings (Q, vocab, dim), contiguous; cached outside training.

        A strided view of the input table (which also holds [MASK]) would be
        copied by every batched matmul: 7 MB per call for 9 layers, more than
        the matmul itself costs at a few frames.
        """
        w = self.embed.weight
        key = (w.data_ptr(), w._version)
        cache = getattr(self, "_table_cache", None)
        if self.training or cache is None or cache[0] != key:
            t = w.view(self.cfg.num_quantizers, self.cfg.vocab + 1, -1)[:, : self.cfg.vocab]
            if self.training:
                return t
            cache = self._table_cache = (key, t.detach().contiguous())  # replaced whole (threads share it)
        return cache[1]

    def forward(self, tokens: torch.Tensor, frames: torch.Tensor | None = None,
                layers: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T, Q) in [0, vocab] (vocab = [MASK]) or negative (absent) -> logits (B, T, Q, vocab).

        ``frames`` / ``layers`` (index tensors) restrict the output heads to
        those frames and layers: (B, len(frames), len(layers), vocab).
        """
        return self.heads(self.hidden(tokens, frames), None, layers, tokens.shape[2])

    def heads(self, h: torch.Tensor, frames: torch.Tensor | None = None, layers: torch.Tensor | None = None,
              Q: int | None = None) -> torch.Tensor:
        """Logits (B, len(frames), len(layers), vocab) from hidden states (B, T, dim)."""
        Q = self.cfg.num_quantizers if Q is None else Q
        if frames is not None:
            h = h[:, frames]
        V = self.cfg.vocab
        if layers is None:
            lay: slice | torch.Tensor = slice(0, Q)
        elif layers.numel() and bool((layers[1:] - layers[:-1] == 1).all()):
            lay = slice(int(layers[0]), int(layers[-1]) + 1)  # a range: views, no copies of the tables
        else:
            lay = layers
        B, T, D = h.shape
        proj, tab = self.head_proj[lay], self._out_table()[lay]
        hq = torch.einsum("btd,qde->qbte", h, proj).reshape(proj.shape[0], B * T, D)
        out = torch.bmm(hq, tab.transpose(1, 2)).view(proj.shape[0], B, T, V)
        return out.permute(1, 2, 0, 3) + self.head_bias[lay]


class _LastBlockAt(nn.Module):
    """A pre-norm encoder block's output at ``frames`` only: (B, T, d) -> (B, len(frames), d).

    Every frame serves as key and value; queries, attention output and the
    feed-forward are computed at ``frames``. Shares the block's parameters.
    """

    def __init__(self, layer: nn.TransformerEncoderLayer):
        super().__init__()
        self.norm1, self.norm2, self.linear1, self.linear2 = layer.norm1, layer.norm2, layer.linear1, layer.linear2
        self.out_proj = layer.self_attn.out_proj
        self.in_w, self.in_b = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
        self.heads = layer.self_attn.num_heads

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        H = self.heads
        h = self.norm1(x)
        q = F.linear(h[:, frames], self.in_w[:d], self.in_b[:d]).view(B, -1, H, d // H).transpose(1, 2)
        kv = F.linear(h, self.in_w[d:], self.in_b[d:]).view(B, T, 2, H, d // H).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, kv[0], kv[1]).transpose(1, 2).reshape(B, -1, d)
        y = x[:, frames] + self.out_proj(o)
        return y + self.linear2(F.gelu(self.linear1(self.norm2(y))))


class _Body(nn.Module):
    """The Transformer blocks and final norm of a model, the last block at ``frames`` only (for freezing)."""

    def __init__(self, m: MaskedTokenLM):
        super().__init__()
        self.layers = nn.ModuleList(list(m.transformer.layers[:-1]))
        self.last = _LastBlockAt(m.transformer.layers[-1])
        self.norm = m.norm

    def forward(self, e: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            e = layer(e)
        return self.norm(self.last(e, frames))


def beta(tau: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * tau))


def sample_mask(T: int, cfg: MLMConfig, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """One example's masking (paper §IV-D): returns (K, mask bool[T, N_q]); layers >= K are absent."""
    tau = rng.random()
    n = int(math.floor(T * beta(tau)))
    K = int(rng.integers(cfg.n_coarse, cfg.num_quantizers + 1))
    k = int(rng.integers(1, K + 1))
    mask = np.zeros((T, cfg.num_quantizers), dtype=bool)
    if n:
        frames = rng.choice(T, n, replace=False)
        mask[np.ix_(frames, np.arange(k - 1, K))] = True
    return K, mask


@dataclass(frozen=True)
class ConcealMasks:
    """Concealment-time masks, mixed into training (lossbench's, not the paper's schedule).

    At the receiver SoundSpring-S conceals a contiguous gap of lost frames
    near the end of a window of ``window`` frames (the block and its
    look-ahead end the window), with all layers of the gap masked when the
    coarse tokens went with the packet (Case 1, no FEC) or only the fine ones
    (Case 3, coarse tokens recovered by FEC), at the deployed K. The paper's
    schedule scatters masks over 100-frame windows and draws K uniformly,
    so these cases are rare in it.
    """

    fraction: float = 0.0  # share of the examples that get a concealment-time mask
    window: int = 20  # frames of such an example (the rest of the 100-frame crop is cut off)
    tail: int = 5  # the gap ends within the window's last ``tail`` frames (stride + look-ahead)
    max_gap: int = 4
    ks: tuple[int, ...] = (6, 6, 12, 3)  # K drawn from these (the deployed K most often)
    case1: float = 0.6  # share of gaps that lose every layer (else only the fine layers)


def sample_conceal_mask(T: int, cfg: MLMConfig, cm: ConcealMasks, rng: np.random.Generator
                        ) -> tuple[int, np.ndarray, int]:
    """(K, mask bool[T, N_q], first frame of the window): a contiguous gap ending near the window's end."""
    K = int(cm.ks[rng.integers(len(cm.ks))])
    W = min(cm.window, T)
    w0 = int(rng.integers(0, T - W + 1))
    L = int(min(cm.max_gap, rng.geometric(0.5)))  # 1, 2, 3... halving in frequency
    end = w0 + W - int(rng.integers(0, min(cm.tail, W - L) + 1))  # gap = [end - L, end)
    lo = 0 if (K <= cfg.n_coarse or rng.random() < cm.case1) else cfg.n_coarse  # K = N_C has no fine layers
    mask = np.zeros((T, cfg.num_quantizers), dtype=bool)
    mask[end - L : end, lo:K] = True
    return K, mask, w0


def masked_batch(tokens: np.ndarray, cfg: MLMConfig, rng: np.random.Generator,
                 conceal: ConcealMasks = ConcealMasks()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens (B, T, N_q) -> (model input, targets, loss mask) under the training schedule.

    With ``conceal.fraction`` > 0 that share of the examples gets a concealment-time mask
    (:class:`ConcealMasks`); its frames outside its window become absent, so the model sees what a
    receiver's window holds.
    """
    B, T, Q = tokens.shape
    inp = tokens.astype(np.int64).copy()
    lm = np.zeros((B, T, Q), dtype=bool)
    for b in range(B):
        if conceal.fraction > 0 and rng.random() < conceal.fraction:
            K, m, w0 = sample_conceal_mask(T, cfg, conceal, rng)
            W = min(conceal.window, T)
            inp[b, :w0] = ABSENT
            inp[b, w0 + W :] = ABSENT
        else:
            K, m = sample_mask(T, cfg, rng)
        inp[b, :, K:] = ABSENT
        inp[b][m] = cfg.mask_id
        lm[b] = m
    return torch.from_numpy(inp), torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(lm)


def ordinal_targets(target: torch.Tensor, periods: torch.Tensor, corr: torch.Tensor, sigma: float,
                    weight: float) -> torch.Tensor:
    """Soft targets (n, V) over pitch tokens: ``1 - weight`` on the true token, ``weight`` spread over the
    tokens of the same correlation level by a Gaussian in the pitch period (``sigma`` periods), so that
    predicting 104 for 105 costs less than predicting 30. ``periods``/``corr`` (V,) give each id's period
    and correlation level (period < 0: an unused id)."""
    n = target.shape[0]
    tp, tc = periods[target], corr[target]
    d = (periods[None, :] - tp[:, None]).float()
    g = torch.exp(-0.5 * (d / sigma) ** 2) * ((corr[None, :] == tc[:, None]) & (periods[None, :] >= 0))
    g = g / g.sum(1, keepdim=True).clamp_min(1e-12)
    out = weight * g
    out[torch.arange(n), target] += 1.0 - weight
    return out


def masked_ce(model: MaskedTokenLM, inp: torch.Tensor, target: torch.Tensor, lmask: torch.Tensor,
              pitch: tuple[int, torch.Tensor, torch.Tensor, float, float] | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats) over the masked tokens (logits computed for those only).

    ``pitch`` = (pitch layers P, period per id, correlation level per id, sigma, weight): the first P
    layers are scored against :func:`ordinal_targets` instead of one-hot targets.
    """
    h = model.hidden(inp)
    if not bool(lmask.any()):
        return h.sum() * 0.0
    b, t, q = lmask.nonzero(as_tuple=True)
    logits = model.logits_at(h[b, t], q)
    tgt = target[b, t, q]
    if pitch is None or pitch[0] == 0:
        return F.cross_entropy(logits, tgt)
    P, periods, corr, sigma, weight = pitch
    isp = q < P
    logp = F.log_softmax(logits, -1)
    loss = -logp[~isp].gather(1, tgt[~isp, None])[:, 0]
    if bool(isp.any()):
        soft = ordinal_targets(tgt[isp], periods, corr, sigma, weight)
        loss = torch.cat([loss, -(soft * logp[isp]).sum(1)])
    return loss.mean()
