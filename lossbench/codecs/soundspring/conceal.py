"""SoundSpring's receiver-side token concealment (paper §III-C, Fig. 6–7).

After entropy decoding every token is R (received), L (lost) or I (invalid).
Because RVQ is recursive, a frame is usable up to its first non-R layer: its
*prefix*. MLM concealment walks through windows of at most T_C frames and
fills, layer by layer, the tokens between each frame's prefix and the
concealment depth, always with the maximum-likelihood token:

- Case 1 (coarse tokens lost): the MLM sees only the N_C coarse layers of the
  window (other frames' received coarse tokens, masks where lost) and predicts
  the missing coarse layers, lowest first;
- Cases 2 and 4 (fine tokens invalid because a condition token is missing) and
  Case 3 (lost fine tokens): with the frame's coarse layers known, the MLM sees
  all layers of the window and predicts the first missing fine layer, then the
  next, up to the depth; layers above the depth are not predicted (the paper
  finds that predicting all fine layers helps less than the first few).

Concealed tokens become context for later windows. Windows of SoundSpring-S
end at the block's look-ahead (causal up to T_F frames); with the stream's
schedule, the look-ahead frames show only the coarse tokens that arrived by
the block's decision time (``coarse_time``, ``window_cutoff``). The
non-streaming receiver centres its windows on the frames it conceals.

With ``codebooks`` the concealment also returns, per frame, the sum over its
concealed layers of the *expected* code vector under the MLM's PMF,
sum_v p(v) e_{k,v} (lossbench's ``mlm-soft``, not in the paper): where the
model is unsure this shrinks towards the codebook mean instead of committing
to one codeword; the maximum-likelihood tokens remain the context of later
predictions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lossbench.codecs.soundspring.coding import mlm_logits

if TYPE_CHECKING:
    from lossbench.codecs.soundspring.coarse_head import CoarsePredictor
    from lossbench.codecs.soundspring.mlm import MaskedTokenLM

MASKED, ABSENT = -1, -2


def stream_windows(blocks: list[tuple[int, int]], context: int, lookahead: int, n_frames: int
                   ) -> list[tuple[int, int, int, int]]:
    """(w0, c0, c1, w1): conceal frames [c0, c1) of each block in window [w0, w1) of at most ``context`` frames."""
    out = []
    for b0, T in blocks:
        w1 = min(n_frames, b0 + T + lookahead)
        out.append((max(0, min(b0, w1 - context)), b0, b0 + T, w1))
    return out


def centred_windows(n_frames: int, context: int) -> list[tuple[int, int, int, int]]:
    h = max(1, context // 2)
    out = []
    for c0 in range(0, n_frames, h):
        c1 = min(n_frames, c0 + h)
        w0 = max(0, c0 - (context - h) // 2)
        out.append((w0, c0, c1, min(n_frames, max(c1, w0 + context))))
    return out


def _visible(d: np.ndarray, w0: int, w1: int, ahead: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
    """Per frame of window [w0, w1), how many leading layers the MLM may see."""
    return d[w0:w1] if seen is None else np.where(ahead, seen, d[w0:w1])


def _head_fill(head, tok, d, target, concealed, expected, w0, c0, c1, w1, nc, dw) -> None:
    """Case-1 frames of [c0, c1) with a known earlier frame: every coarse layer from the head, in place."""
    fill = np.flatnonzero((d[c0:c1] == 0) & (target[c0:c1] >= nc)) + c0
    if not fill.size:
        return
    known = np.flatnonzero(d >= nc)
    pos = np.searchsorted(known, fill) - 1
    ok = pos >= 0
    fill, prev = fill[ok], known[np.maximum(pos[ok], 0)]
    if not fill.size:
        return
    vis = np.where(np.arange(nc)[None, :] < dw[:, None], tok[w0:w1, :nc], MASKED)
    out, vec = head.predict(vis, fill - w0, tok[prev, :nc], fill - prev)
    tok[fill, :nc] = out
    d[fill] = nc
    concealed[fill] = True
    expected[fill, : vec.shape[1]] += vec - head.codeword(out[:, nc - 1])


def conceal_tokens(model: MaskedTokenLM, tokens: np.ndarray, prefix: np.ndarray, K_frame: np.ndarray,
                   windows: list[tuple[int, int, int, int]], depth: int, codebooks: list[np.ndarray] | None = None,
                   coarse_time: np.ndarray | None = None, window_cutoff: np.ndarray | None = None,
                   head: CoarsePredictor | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Fill every frame's tokens from its prefix up to ``min(depth, K)`` with the MLM.

    Args:
        tokens: int (N, >= max K); valid below ``prefix``.
        prefix: int (N,) leading received layers per frame.
        K_frame: int (N,) layers sent in each frame's block (0: unknown, treated as ``depth``).
        windows: (w0, c0, c1, w1) in processing order.
        depth: layers to reach by concealment (the lower layers only).

        codebooks: per layer (V, D) code vectors; when given, also return the expected vectors.
        coarse_time, window_cutoff: the streaming receiver's view (``Received.coarse_time`` and each window's
            block cutoff): frames after a window's concealed block show only their coarse tokens, and only
            those sent by the cutoff; their fine tokens are decided later, so they stay masked.
        head: a :class:`~lossbench.codecs.soundspring.coarse_head.CoarsePredictor`: frames that lost every
            coarse layer (Case 1) and follow a frame whose coarse tokens are known get all their coarse
            tokens from it, as a change from that frame; the others go through the MLM's own heads.

    Returns:
        (tokens, new prefix per frame, bool (N,) frames where anything was concealed, expected):
        ``expected`` is float (N, D) with ``codebooks``, per frame the sum of the expected code vectors of
        its concealed layers; with a ``head`` (and no ``codebooks``), per frame the head's continuous
        correction (its predicted code vector minus the nearest codeword, zero elsewhere), which the
        decoder adds to the latent; None otherwise.
    """
    nc = model.cfg.n_coarse
    tok = tokens.copy()
    d = prefix.astype(np.int64).copy()
    K_eff = np.where(K_frame > 0, K_frame, depth)
    target = np.minimum(K_eff, depth)
    concealed = np.zeros(len(d), dtype=bool)
    expected: np.ndarray | None = None
    if codebooks is not None:
        expected = np.zeros((len(d), codebooks[0].shape[1]))
    elif head is not None:
        expected = np.zeros((len(d), head.latent_size))
    for wi, (w0, c0, c1, w1) in enumerate(windows):
        if not (d[c0:c1] < target[c0:c1]).any():
            continue
        ahead = np.arange(w0, w1) >= c1  # frames of later blocks in this window
        seen = None  # the depth the look-ahead frames show (streaming: their timely coarse tokens only)
        if coarse_time is not None and window_cutoff is not None:
            seen = np.minimum(d[w0:w1], nc) * (coarse_time[w0:w1] <= window_cutoff[wi])
        if head is not None and codebooks is None:
            _head_fill(head, tok, d, target, concealed, expected, w0, c0, c1, w1, nc, _visible(d, w0, w1, ahead, seen))
            if not (d[c0:c1] < target[c0:c1]).any():
                continue
        for k in range(int(d[c0:c1].min()), int(target[c0:c1].max())):
            fill = np.flatnonzero((d[c0:c1] == k) & (target[c0:c1] > k)) + c0
            if not fill.size:
                continue
            K_in = nc if k < nc else int(max(K_eff[w0:w1].max(), k + 1))
            dw = _visible(d, w0, w1, ahead, seen)
            vis = np.full((w1 - w0, K_in), MASKED, dtype=np.int64)
            lay = np.arange(K_in)[None, :]
            known = lay < dw[:, None]
            vis[known] = tok[w0:w1, :K_in][known]
            complete = dw >= K_eff[w0:w1]
            if seen is not None:
                complete &= ~ahead
            vis[complete[:, None] & (lay >= K_eff[w0:w1, None])] = ABSENT  # never sent: not a gap to fill
            logits = mlm_logits(model, vis, fill - w0, k)
            tok[fill, k] = logits.argmax(-1)
            if codebooks is not None and expected is not None:
                p = np.exp(logits - logits.max(-1, keepdims=True))
                expected[fill] += (p / p.sum(-1, keepdims=True)) @ codebooks[k]
            d[fill] = k + 1
            concealed[fill] = True
    return tok, d, concealed, expected
