"""WSOLA: waveform-similarity overlap-add time-scale modification (Verhelst & Roelands, ICASSP 1993).

The output is built from Hann-windowed segments of the input, one per hop of
``hop`` samples, each overlapping the previous by half. Segment ``k`` should
come from around input position ``centers[k]`` (the time map); WSOLA moves it
by up to ``tolerance`` samples to where it best continues the segment before
it (the input that naturally follows the previous segment), so the period of
a voiced sound is kept: the time axis stretches, the pitch does not.

One call follows any monotone or piecewise time map, which is how the
playout buffers use it: :func:`stretch` applies a constant rate; the
``tsm`` buffer's renderer applies its per-frame actions (accelerate,
pre-emptive expand, wait) as one map, and the aligner applies the inverse.
"""

from __future__ import annotations

import numpy as np

from lossbench.errors import ConfigError


def default_sizes(sample_rate_hz: int) -> tuple[int, int, int]:
    """(window, hop, tolerance) in samples: a 20 ms window, a 10 ms hop and a 5 ms search either side (one
    period of a 100 Hz voice fits in the +-5 ms span)."""
    win = int(round(0.020 * sample_rate_hz)) // 2 * 2
    return win, win // 2, int(round(0.005 * sample_rate_hz))


def wsola(x: np.ndarray, centers: np.ndarray, win: int, tolerance: int | np.ndarray, gain: np.ndarray | None = None,
          max_end: np.ndarray | None = None, tail: bool = False, starts: np.ndarray | None = None) -> np.ndarray:
    """Synthesise ``len(centers) * win // 2`` samples from ``x`` following the time map ``centers``.

    Args:
        x: float[n] input.
        centers: float[K], the input position around which output segment k (centred at output sample
            ``k * hop + win // 2``, hop = win // 2) is taken.
        win: segment length (even); the hop is half of it.
        tolerance: how far (samples) a segment may move from its map position to match the previous one; one
            value, or int[K], one per segment.
        gain: optional float[K], a gain per segment (0 writes silence).
        max_end: optional int[K], the latest input sample (exclusive) segment k may read: a receiver that is
            waiting for a frame may only stretch what it has already played.
        tail: also return the last segment's falling half (``K * hop + hop`` samples), for a caller that
            cross-fades the result into other audio.
        starts: optional int[K], filled with where in ``x`` each segment was taken from (the realised time
            map: where ``starts[k + 1] == starts[k] + hop`` the output between the two centres is ``x`` itself).
    """
    x = np.asarray(x, dtype=np.float64)
    if win < 4 or win % 2:
        raise ConfigError(f"WSOLA window must be an even number of samples >= 4, got {win}")
    hop = win // 2
    k_n = int(len(centers))
    out = np.zeros(k_n * hop + win)
    n_out = k_n * hop + (hop if tail else 0)
    if x.size == 0 or k_n == 0:
        return out[:n_out].astype(np.float32)
    # pad so every candidate segment exists; positions below are in padded coordinates
    tols = np.broadcast_to(np.asarray(tolerance, dtype=np.int64), (k_n,))
    if tols.min() < 0:
        raise ConfigError(f"WSOLA tolerance must be >= 0 samples, got {int(tols.min())}")
    pad = win + int(tols.max())
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad + win)])
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)  # periodic Hann: halves overlap-add to 1
    c2 = np.concatenate([[0.0], np.cumsum(xp * xp)])
    prev = None
    for k in range(k_n):
        tolerance = int(tols[k])
        ideal = int(round(float(centers[k]))) - hop + pad
        hi = min(ideal + tolerance, xp.size - win)
        if max_end is not None:
            hi = min(hi, int(max_end[k]) + pad - win)
        hi = max(hi, 0)
        lo = min(max(ideal - tolerance, 0), hi)
        tmpl = None if prev is None else xp[prev + hop: prev + win]  # what naturally follows the previous segment
        if tmpl is None or hi == lo or not np.any(tmpl):
            s = min(max(ideal, lo), hi)
        else:  # the candidate whose first half best matches that continuation (normalised correlation)
            cc = np.correlate(xp[lo: hi + hop], tmpl, mode="valid")  # cc[i] = <xp[lo+i : lo+i+hop], tmpl>
            e = c2[lo + hop: hi + hop + 1] - c2[lo: hi + 1]
            s = lo + int(np.argmax(cc / np.sqrt(np.maximum(e, 1e-12))))
        g = 1.0 if gain is None else float(gain[k])
        if g:
            out[k * hop: k * hop + win] += (g * w) * xp[s: s + win]
        if starts is not None:
            starts[k] = s - pad
        prev = s
    return out[:n_out].astype(np.float32)


def stretch(x: np.ndarray, rate: float, sample_rate_hz: int) -> np.ndarray:
    """``x`` played ``rate`` times slower (rate 2 doubles the duration), pitch unchanged."""
    if not np.isfinite(rate) or rate <= 0:
        raise ConfigError(f"stretch rate must be a finite number > 0, got {rate!r}")
    win, hop, tol = default_sizes(sample_rate_hz)
    n_out = int(round(len(x) * rate))
    k_n = -(-n_out // hop)
    centers = (np.arange(k_n) * hop + hop) / rate
    return wsola(x, centers, win, tol)[:n_out]
