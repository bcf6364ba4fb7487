"""Where SoundSpring's compression stops: the coding context, the data and the model's capacity, measured apart.

The MLM's code length for a fine token depends on what the coder lets it see. :func:`context_bits` measures the
ideal code length (bits per token, by layer) of the same tokens under five contexts, on SoundSpring-S's block
schedule (a block of ``stride`` frames, ``past`` frames before it, ``lookahead`` after)::

    unigram          no context: each layer's token frequencies counted on the training tokens (add-1/2)
    coarse           the window's coarse tokens only: what the shipped coder uses (one pass per block)
    coarse+past      also the coarse tokens of ``past`` earlier frames
    history          also every layer of the ``past`` earlier frames (their fine tokens decoded before)
    lower            the coarse tokens, and the block's own lower fine layers (one pass per layer, RVQ order)
    history+lower    both

The context that helps most is the one whose bits fall furthest below ``coarse``. ``history`` costs robustness
(a lost packet takes the fine tokens of the blocks that follow with it) and ``lower`` costs a pass per layer
(RTF); :func:`rtf_passes` times a pass. The same measurement on training tokens against held-out tokens shows
what more data could buy (:func:`data_gap`), and the same context under a larger model what capacity could buy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from lossbench.errors import ConfigError

if TYPE_CHECKING:
    from lossbench.codecs.soundspring.mlm import MaskedTokenLM

CONTEXTS = ("unigram", "coarse", "coarse+past", "history", "lower", "history+lower")


def sample_chunks(tokens: np.ndarray, frames: int, chunk: int = 400, seed: int = 0) -> np.ndarray:
    """``frames`` frames of a token array as seeded non-overlapping chunks of ``chunk`` frames, concatenated
    (chunk, K) blocks stacked: (n_chunks, chunk, K)."""
    n = max(1, frames // chunk)
    starts = np.arange(0, tokens.shape[0] - chunk, chunk)
    if starts.size < n:
        raise ConfigError(f"need {n} chunks of {chunk} frames, the tokens hold {starts.size}")
    pick = np.sort(np.random.default_rng(seed).choice(starts, n, replace=False))
    return np.stack([np.asarray(tokens[s : s + chunk], dtype=np.int64) for s in pick])


def unigram_bits(train: np.ndarray, test: np.ndarray, n_coarse: int, vocab: int = 1024) -> np.ndarray:
    """Bits per fine token by layer (K - N_C,) of ``test`` (frames, K) under ``train``'s per-layer frequencies."""
    K = test.shape[1]
    out = np.zeros(K - n_coarse)
    for k in range(n_coarse, K):
        c = np.bincount(train[:, k].astype(np.int64), minlength=vocab) + 0.5
        p = c / c.sum()
        out[k - n_coarse] = -np.log2(p[test[:, k]]).mean()
    return out


def pair_bits(train: np.ndarray, test: np.ndarray, layer: int, ctx_layer: int, lag: int, vocab: int = 1024) -> float:
    """Bits per token of ``layer`` in ``test`` (frames, K) under a count model of it given one context token:
    ``ctx_layer``'s token ``lag`` frames earlier (lag 0: the same frame), Witten-Bell interpolated with the layer's
    frequencies, counted on ``train``. A table over every context value: no capacity limit, only data."""
    def pairs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.int64)
        return t[: len(t) - lag, ctx_layer], t[lag:, layer]

    c_tr, x_tr = pairs(train)
    c_te, x_te = pairs(test)
    key = c_tr * vocab + x_tr
    uniq, cnt = np.unique(key, return_counts=True)
    n_ctx = np.bincount(c_tr, minlength=vocab).astype(np.float64)
    types = np.bincount(uniq // vocab, minlength=vocab).astype(np.float64)
    lam = n_ctx / np.maximum(n_ctx + types, 1e-12)
    uni = np.bincount(x_tr, minlength=vocab) + 0.5
    uni = uni / uni.sum()
    pos = np.searchsorted(uniq, c_te * vocab + x_te)
    pos = np.minimum(pos, uniq.size - 1)
    hit = np.where(uniq[pos] == c_te * vocab + x_te, cnt[pos], 0)
    ml = hit / np.maximum(n_ctx[c_te], 1)
    p = lam[c_te] * ml + (1 - lam[c_te]) * uni[x_te]
    return float(-np.log2(p).mean())


def _windows(chunks: np.ndarray, stride: int, past: int, lookahead: int) -> tuple[np.ndarray, int]:
    """Every full window (past + stride + lookahead frames) of every chunk: (n, W, K), and the block's offset."""
    W = past + stride + lookahead
    wins = [c[b0 - past : b0 - past + W] for c in chunks for b0 in range(past, c.shape[0] - stride - lookahead + 1,
                                                                           stride)]
    return np.stack(wins), past


def context_bits(model: MaskedTokenLM, chunks: np.ndarray, context: str, K: int = 24, stride: int = 3, past: int = 15,
                 lookahead: int = 2, batch: int = 256) -> np.ndarray:
    """Mean bits per fine token by layer (K - N_C,) of the blocks of ``chunks`` (n, frames, >= K) under one of
    :data:`CONTEXTS` other than ``unigram``."""
    import torch

    from lossbench.codecs.neural.threads import single_thread

    if context not in CONTEXTS[1:]:
        raise ConfigError(f"context must be one of {', '.join(CONTEXTS[1:])}; got {context!r}")
    nc = model.cfg.n_coarse
    wins, off = _windows(chunks[:, :, :K], stride, past, lookahead)
    mask = model.cfg.mask_id
    blk = np.arange(off, off + stride)
    base = np.full_like(wins, mask)
    base[:, :, :nc] = wins[:, :, :nc]
    if context in ("history", "history+lower"):
        base[:, :off] = wins[:, :off]
    per_layer = context in ("lower", "history+lower")
    steps = [(k, np.arange(k, k + 1)) for k in range(nc, K)] if per_layer else [(K, np.arange(nc, K))]
    nll = np.zeros(K - nc)
    start = 0 if context != "coarse" else off
    with torch.no_grad(), single_thread():
        for k, lay in steps:
            inp = base.copy()
            if per_layer:
                inp[:, blk, nc:k] = wins[:, blk, nc:k]
            x = inp[:, start:]
            fr = torch.from_numpy(blk - start)
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(x[i : i + batch])
                logp = torch.log_softmax(model(xb, fr, torch.from_numpy(lay)).double(), -1)
                tgt = torch.from_numpy(wins[i : i + batch][:, blk][:, :, lay])
                nll[lay - nc] += -logp.gather(-1, tgt.unsqueeze(-1))[..., 0].sum((0, 1)).numpy()
    return nll / (len(wins) * stride) / np.log(2)


def rtf_passes(model: MaskedTokenLM, window: int, frames: int = 3, layers: int = 21, reps: int = 20) -> float:
    """Seconds of one coder pass (a window of ``window`` frames, PMFs of ``frames`` frames x ``layers`` layers),
    single-threaded, as the codec runs it; the median of ``reps``."""
    import torch

    from lossbench.codecs.neural.threads import single_thread

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, model.cfg.vocab, (1, window, model.cfg.num_quantizers)))
    fr = torch.arange(window - frames, window)
    lay = torch.arange(model.cfg.n_coarse, model.cfg.n_coarse + layers)
    out = []
    with torch.no_grad(), single_thread():
        for _ in range(reps + 2):
            t = time.perf_counter()
            torch.softmax(model.heads(model.hidden(x, fr), None, lay), -1)
            out.append(time.perf_counter() - t)
    return float(np.median(out[2:]))


def kbps(bits: np.ndarray, K: int, n_coarse: int = 3, frame_s: float = 0.02) -> float:
    """Token rate (kbit/s) at K layers: coarse layers at 10 bits, fine layers at ``bits`` (by layer from N_C)."""
    return (10 * n_coarse + float(np.sum(bits[: K - n_coarse]))) / frame_s / 1000


__all__ = ["CONTEXTS", "context_bits", "kbps", "pair_bits", "rtf_passes", "sample_chunks", "unigram_bits"]
