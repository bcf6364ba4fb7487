"""How well each concealment predicts what a lost frame's coarse tokens carried (the MLM card's table).

The setting is the one the ``mlm`` concealments face in SoundSpring-S without FEC: a packet per frame, frames
lost at random (Bernoulli), and the MLM concealing the coarse layers of every lost frame in the stream
receiver's windows (``stream_windows``: the block, the frames before it, and its look-ahead). For the lost
frames (those after the first received one) it measures, against the true tokens:

- top-1 accuracy per coarse layer (token predictors only);
- the coarse latent error: the squared distance between the sum of the coarse layers' code vectors (on the
  fargan backbone the pitch rows and the first RVQ layer) and the true one;
- the pitch error (fargan backbone): mean absolute error of the integer period, in samples, over both 10 ms
  halves, and the fraction exactly right.

Predictors: the MLM's own argmax (``mlm``, the paper's rule), the codec's ``mlm-head`` (with the concealment
head where one is shipped: its continuous vector), its expected code vector (``mlm-soft``),
the zero latent, the last received frame repeated (``copy``), linear interpolation between the last received
frame and the next one inside the window (``interp``; it falls back to the copy when the window has none),
and on fargan Opus's deep-PLC feature predictor (``fargan-plc``: pitch only, it has no latent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.codecs.soundspring.conceal import conceal_tokens, stream_windows

PREDICTORS = ("mlm", "mlm-head", "mlm-soft", "zero", "copy", "interp", "fargan-plc")


def _periods(backbone, latent: np.ndarray) -> np.ndarray | None:
    """(frames, 2) integer pitch periods from a latent's pitch rows (None without pitch tokens)."""
    if backbone.pitch_token_table() is None:
        return None
    from lossbench.codecs.neural.fargan import period_of

    net = backbone.model.net
    D = backbone.latent_size - 4
    mean, std = float(net.feat_mean[18]), float(net.feat_std[18])
    with np.errstate(divide="ignore", over="ignore"):  # period_of clamps what overflows to 32..255
        return np.stack([period_of(latent[:, D] * std + mean), period_of(latent[:, D + 2] * std + mean)], 1)


def measure(codec, clips: list[np.ndarray], loss: float, seeds: tuple[int, ...] = (0, 1)
            ) -> dict[str, dict[str, Any]]:
    """Errors of every predictor on the lost frames of ``clips`` (16 kHz arrays) at Bernoulli ``loss``."""
    from lossbench.core import Clip

    nc = codec.layout.slicing.n_coarse
    cbs = codec._codebooks
    bb = codec.backbone
    K = codec.layers
    acc: dict[str, dict[str, list]] = {p: {"lat": [], "pitch": [], "top1": []} for p in PREDICTORS}
    for ci, x in enumerate(clips):
        clip = Clip(f"c{ci}", np.asarray(x, np.float32), codec.sample_rate_hz)
        xp = codec.padded_input(clip)
        toks = codec.tokens(xp)
        nf = toks.shape[0]
        blocks = codec.layout.blocks(nf)
        wins = stream_windows(blocks, codec.conceal_context, codec.lookahead, nf)
        true_lat = sum(cbs[k][toks[:, k]] for k in range(nc))
        true_per = _periods(bb, true_lat)
        block_end = np.concatenate([[b0 + T] * T for b0, T in blocks])
        for seed in seeds:
            rng = np.random.default_rng(1000 * seed + ci)
            lost = rng.random(nf) < loss
            got = np.flatnonzero(~lost)
            if not got.size:
                continue
            ev = np.flatnonzero(lost & (np.arange(nf) > got[0]))
            if not ev.size:
                continue
            prefix = np.where(lost, 0, K).astype(np.int64)
            masked = np.where(prefix[:, None] > np.arange(toks.shape[1])[None, :], toks, 0)
            K_frame = np.full(nf, K, dtype=np.int64)
            hard, _, _, soft = conceal_tokens(codec.mlm, masked, prefix, K_frame, wins, nc, cbs)
            preds: dict[str, np.ndarray] = {}
            tok_preds: dict[str, np.ndarray] = {"mlm": hard}
            preds["mlm"] = sum(cbs[k][hard[:, k]] for k in range(nc))
            assert soft is not None  # the codebooks were given, so the expected latent was computed
            preds["mlm-soft"] = soft
            if codec._head is not None:
                ht, _, _, corr = conceal_tokens(codec.mlm, masked, prefix, K_frame, wins, nc, None, head=codec._head)
                tok_preds["mlm-head"] = ht
                preds["mlm-head"] = sum(cbs[k][ht[:, k]] for k in range(nc)) + corr
            else:
                tok_preds["mlm-head"], preds["mlm-head"] = hard, preds["mlm"]
            preds["zero"] = np.zeros_like(true_lat)
            prev = got[np.searchsorted(got, np.arange(nf)) - 1]  # last received frame before each frame
            copy_tok = toks[prev]
            tok_preds["copy"] = copy_tok
            preds["copy"] = true_lat[prev]
            nxt_i = np.minimum(np.searchsorted(got, np.arange(nf)), got.size - 1)
            nxt = got[nxt_i]
            reach = (nxt > np.arange(nf)) & (nxt < block_end + codec.lookahead)
            w = np.where(reach, (np.arange(nf) - prev) / np.maximum(nxt - prev, 1), 0.0)[:, None]
            preds["interp"] = np.where(reach[:, None], (1 - w) * true_lat[prev] + w * true_lat[nxt], true_lat[prev])
            for name, lat in preds.items():
                acc[name]["lat"].append(((lat[ev] - true_lat[ev]) ** 2).sum(1))
                per = _periods(bb, lat)
                if true_per is not None and per is not None:
                    acc[name]["pitch"].append(np.abs(per[ev] - true_per[ev]).ravel())
            for name, tp in tok_preds.items():
                acc[name]["top1"].append(tp[ev, :nc] == toks[ev, :nc])
            if true_per is not None:
                from lossbench.codecs.neural.fargan import period_of

                lat_full = sum(cbs[k][masked[:, k]] * (prefix > k)[:, None] for k in range(K))
                _, feats = bb.conceal_features(lat_full, lost, with_features=True)
                per = period_of(feats[:, 18]).reshape(nf, 2)
                acc["fargan-plc"]["pitch"].append(np.abs(per[ev] - true_per[ev]).ravel())
    out: dict[str, dict[str, Any]] = {}
    for name, a in acc.items():
        if not (a["lat"] or a["pitch"]):
            continue
        r: dict[str, Any] = {}
        if a["lat"]:
            r["latent_error"] = float(np.concatenate(a["lat"]).mean())
            r["frames"] = int(np.concatenate(a["lat"]).size)
        if a["pitch"]:
            p = np.concatenate(a["pitch"])
            r["pitch_error"] = float(p.mean())
            r["pitch_exact"] = float((p == 0).mean())
        if a["top1"]:
            t = np.concatenate(a["top1"], 0)
            r["top1"] = [float(v) for v in t.mean(0)]
        out[name] = r
    return out
