"""Aligning what a real client played to the clip it was sent, through concealment and time-stretching.

Three steps, each narrowing the last:

1. **Placement.** Where the client says which RTP timestamp its first output sample belongs to (GStreamer: the
   first packet it decoded, and ``audiorate`` keeps every later sample at its timestamp), the received audio is
   placed on the clip's timeline by that timestamp: ``offset = (ts_first_decoded - ts_first_sent) / clock``.
   Otherwise (``offset=None``) the whole signals are cross-correlated over ``search_s``.
2. **One lag for the whole clip**: the cross-correlation peak within ``lag_ms`` of the placement (the codec's and
   resamplers' delays: Opus's 6.5 ms look-ahead and a few ms more).
3. **One lag per utterance** (a stretch of the clip with speech, found from its energy), within ``utterance_ms``
   of the global lag: a client that stretched or shrank time between utterances (NetEq's accelerate and
   pre-emptive expand) moves each by another amount; each utterance is then taken at its own lag, and the gaps
   between them at the lag of the utterance before.

The result says how far the client moved audio (``spread_ms``: the largest departure of an utterance's lag from the
global one) and how well the aligned audio matches (``residual_ms``: the largest lag left when each aligned
utterance is cross-correlated again, which is 0 unless a peak was ambiguous; ``corr``: the mean normalised peak).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Alignment:
    audio: np.ndarray  # the received audio on the clip's timeline, as long as the clip
    offset_ms: float  # the placement (RTP timestamp or whole-signal correlation)
    lag_ms: float  # the global lag found after placement
    utterance_lags_ms: list[float] = field(default_factory=list)
    spread_ms: float = 0.0
    residual_ms: float = 0.0
    corr: float = float("nan")
    placed_by: str = "rtp-timestamp"

    def columns(self) -> dict[str, object]:
        return {"live_align_by": self.placed_by, "live_align_offset_ms": round(self.offset_ms, 3),
                "live_align_lag_ms": round(self.lag_ms, 3), "live_align_utterances": len(self.utterance_lags_ms),
                "live_align_spread_ms": round(self.spread_ms, 3), "live_align_residual_ms": round(self.residual_ms, 3),
                "live_align_corr": round(self.corr, 4)}


def _xcorr_lag(ref: np.ndarray, deg: np.ndarray, start: int, max_lag: int) -> tuple[int, float]:
    """The lag L in [-max_lag, max_lag] maximising the normalised correlation of ref with deg[start + L:...]."""
    n = ref.size
    lo = start - max_lag
    seg = np.zeros(n + 2 * max_lag)
    a, b = max(lo, 0), min(lo + seg.size, deg.size)
    if b > a:
        seg[a - lo:b - lo] = deg[a:b]
    m = 1 << int(np.ceil(np.log2(seg.size + n)))
    c = np.fft.irfft(np.fft.rfft(seg, m) * np.conj(np.fft.rfft(ref, m)), m)[:2 * max_lag + 1]
    # local energy of deg under each lag, for normalisation
    cs = np.concatenate([[0.0], np.cumsum(seg * seg)])
    e = cs[n:n + 2 * max_lag + 1] - cs[:2 * max_lag + 1]
    er = float(ref @ ref)
    norm = np.sqrt(np.maximum(e, 1e-12) * max(er, 1e-12))
    r = c / norm
    k = int(np.argmax(r))
    return k - max_lag, float(r[k])


def utterances(ref: np.ndarray, sr: int, gap_s: float = 0.3, min_s: float = 0.25,
               floor_db: float = -35.0) -> list[tuple[int, int]]:
    """Stretches of ``ref`` with speech: 20 ms frames within ``floor_db`` of the loudest, joined across pauses
    shorter than ``gap_s``, kept when at least ``min_s`` long."""
    hop = max(1, int(0.02 * sr))
    nf = ref.size // hop
    if nf == 0:
        return []
    e = (ref[:nf * hop].reshape(nf, hop) ** 2).mean(axis=1)
    db = 10 * np.log10(e + 1e-12)
    active = db > db.max() + floor_db
    out: list[tuple[int, int]] = []
    i = 0
    gap = int(gap_s / 0.02)
    while i < nf:
        if not active[i]:
            i += 1
            continue
        j = i
        while j < nf:
            k = j + 1
            while k < nf and not active[k] and k - j <= gap:
                k += 1
            if k < nf and active[k] and k - j <= gap:
                j = k
            else:
                break
        if (j + 1 - i) * 0.02 >= min_s:
            out.append((i * hop, (j + 1) * hop))
        i = j + 1
    return out


def align(received: np.ndarray, ref: np.ndarray, sr: int, offset_samples: int | None, lag_ms: float = 100.0,
          utterance_ms: float = 60.0, search_s: float = 3.0) -> Alignment:
    """Put ``received`` (at ``sr``, like ``ref``) on the clip's timeline; see the module docstring."""
    x = np.asarray(received, float)
    r = np.asarray(ref, float)
    placed_by = "rtp-timestamp"
    if offset_samples is None:
        placed_by = "correlation"
        lag0, _ = _xcorr_lag(r, x, 0, int(search_s * sr))
        offset_samples = -lag0
    # deg[t] = x[t - offset]: sample 0 of the received audio is the clip's sample `offset`
    lag, corr = _xcorr_lag(r, x, -offset_samples, int(lag_ms * sr / 1000))
    base = lag - offset_samples  # clip sample t is received sample t + base
    utts = utterances(r, sr)
    lags: list[int] = []
    corrs: list[float] = []
    mu = int(utterance_ms * sr / 1000)
    for a, b in utts:
        lg, c = _xcorr_lag(r[a:b], x, a + base, mu)
        lags.append(base + lg)
        corrs.append(c)
    out = np.zeros_like(r)

    def take(a: int, b: int, shift: int) -> None:
        src = np.arange(a, b) + shift
        ok = (src >= 0) & (src < x.size)
        out[a:b][ok] = x[src[ok]]

    if not utts:
        take(0, r.size, base)
    else:
        edges = [u[0] for u in utts[1:]] + [r.size]
        take(0, utts[0][0], lags[0])
        for (a, _), end, lg in zip(utts, edges, lags):
            take(a, end, lg)
    residual = 0
    for (a, b) in utts:
        lg, _ = _xcorr_lag(r[a:b], out, a, max(1, int(0.01 * sr)))
        residual = max(residual, abs(lg))
    ms = 1000.0 / sr
    rel = [(lg - base) * ms for lg in lags]
    return Alignment(out, offset_samples * ms, lag * ms, rel, max((abs(v) for v in rel), default=0.0),
                     residual * ms, float(np.mean(corrs)) if corrs else corr, placed_by)
