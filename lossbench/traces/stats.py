"""Statistics of a loss pattern: loss rate, bursts, gaps, conditional loss."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from lossbench.core import LossTrace


@dataclass(frozen=True)
class TraceStats:
    """Empirical statistics of one loss pattern.

    Attributes:
        packets: number of slots.
        lost: number of lost slots.
        loss_rate: lost / packets.
        mean_burst: mean length of runs of consecutive losses (0 if none).
        mean_gap: mean length of runs of consecutive received slots.
        longest_burst: the longest run of losses.
        p_loss_given_loss: P(slot t lost | slot t-1 lost) (NaN if no loss).
        bursts: burst-length histogram, ``bursts[k]`` = number of bursts of length k.
        gaps: gap-length histogram, likewise.
    """

    packets: int
    lost: int
    loss_rate: float
    mean_burst: float
    mean_gap: float
    longest_burst: int
    p_loss_given_loss: float
    bursts: dict[int, int] = field(default_factory=dict)
    gaps: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int]:
        d = asdict(self)
        d.pop("bursts")
        d.pop("gaps")
        return d


def run_lengths(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, lengths) of the runs of equal values in a 1-D array."""
    x = np.asarray(x)
    if x.size == 0:
        return x[:0], np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(x[1:] != x[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [x.size]]))
    return x[starts], lengths


def _hist(lengths: np.ndarray) -> dict[int, int]:
    if lengths.size == 0:
        return {}
    counts = np.bincount(lengths)
    return {int(k): int(c) for k, c in enumerate(counts) if c}


def trace_stats(trace: LossTrace | np.ndarray, cyclic: bool = False) -> TraceStats:
    """Statistics of a loss pattern.

    Args:
        trace: a LossTrace or a bool array (True = lost).
        cyclic: treat the pattern as a loop (for replay with wrap-around):
            a burst that runs over the end continues at the start.
    """
    lost = trace.lost if isinstance(trace, LossTrace) else np.asarray(trace, dtype=bool)
    n = int(lost.size)
    k = int(lost.sum())
    if cyclic and 0 < k < n:
        # rotate so the pattern starts right after a loss->receive boundary
        first_recv_after_loss = int(np.flatnonzero(lost & ~np.roll(lost, -1))[0]) + 1
        lost = np.roll(lost, -first_recv_after_loss)
    vals, lens = run_lengths(lost)
    b = lens[vals] if vals.size else lens
    g = lens[~vals] if vals.size else lens
    if n > 1:
        prev = np.concatenate([lost[-1:], lost[:-1]]) if cyclic else lost[:-1]
        cur = lost if cyclic else lost[1:]
        n_prev_lost = int(prev.sum())
        p11 = float((prev & cur).sum() / n_prev_lost) if n_prev_lost else float("nan")
    else:
        p11 = float("nan")
    return TraceStats(
        packets=n,
        lost=k,
        loss_rate=k / n if n else float("nan"),
        mean_burst=float(b.mean()) if b.size else 0.0,
        mean_gap=float(g.mean()) if g.size else 0.0,
        longest_burst=int(b.max()) if b.size else 0,
        p_loss_given_loss=p11,
        bursts=_hist(b),
        gaps=_hist(g),
    )
