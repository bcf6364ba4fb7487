"""``playout=tsm``: an adaptive jitter buffer that moves its delay by time-scale modification, after NetEq.

The decisions follow WebRTC NetEq's ``DelayManager`` and ``DecisionLogic``
(read in its source; the code here is our own):

- **Target level.** Each arriving packet's *relative delay* is its one-way
  delay minus the smallest one-way delay of the packets that arrived in the
  last ``history_s`` (2 s). It goes into a histogram of ``bucket_s`` (20 ms)
  buckets with forgetting: on each arrival every bucket is multiplied by the
  forget factor f and the packet's bucket gains 1 - f. f starts at 0 and
  rises as ``1 - start_forget_weight / (n + 1)`` towards ``forget`` (0.983),
  so the first packets are not drowned by an empty prior. The target level is
  (the ``quantile`` (0.95) bucket + 1) x ``bucket_s``, at least one frame,
  within [``min_delay_s``, ``max_delay_s``].
- **Buffer level.** The frames received and not yet played, filtered
  exponentially with NetEq's coefficients per 10 ms (251/256 for a target of
  one packet or less, 252/256 up to 3, 253/256 up to 7, 254/256 above), and
  corrected at once for what a time-scale action removed or added.
- **Decision, once per output chunk** (one frame, 1.5 frames after a
  time-scale action), with low = max(3/4 target, target - 85 ms) and high =
  max(target, low + 20 ms):

  - the next frame is here: *accelerate* (two frames played in 1.5) when the
    filtered level is at or above high and the frame after it is here too;
    *pre-emptive expand* (one frame played in 1.5) when the level is below
    low; else *normal*; a time-scale action needs ``timescale_gap`` chunks
    since the last one; after a wait, the frame is a *merge*;
  - NetEq's Accelerate and PreemptiveExpand act only where the signal allows
    (a pitch correlation above 0.9, or no active speech); here a time-scale
    action needs quiet frames, ``quiet_db`` (30 dB) below the clip's loud
    ones (:func:`quiet_frames`, measured on the sent clip, which is what the
    receiver decodes from the packets it has), except that acceleration goes
    ahead anywhere when the level is 4 x high (NetEq's fast accelerate);
  - it is not here: *expand*. While the buffer is empty the receiver waits
    (each chunk one *hold*). When later frames are here and the wait has
    lasted as long as the gap to the first of them, the missing frames are
    given up: the waiting chunks become the codec's concealment of those
    frames (*expand*), any beyond that stay waits, and the next frame merges.
    If the frame arrives first, every waiting chunk was a hold: the delay grew
    by them, and accelerations later win it back.

The clock starts at the first arrival; frames before that packet's are given
up. A frame's packet is usable (``Reception.usable``) when it had arrived by
the chunk that played it, so codecs conceal and recover (LBRR, DRED) with the
packets the buffer really held then. Simplification: a packet counts as usable
for a neighbour's in-band FEC if it arrived by its own frame's play time,
not by the neighbour's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from lossbench.errors import ConfigError
from lossbench.playout.plan import (
    ACCELERATE,
    EXPAND,
    HOLD,
    MERGE,
    NORMAL,
    PREEMPTIVE,
    PlanBuilder,
    PlayoutPlan,
    concealed_plan,
    frame_arrivals,
    packet_deadlines,
)

#: NetEq's low/high limits around the target level (DecisionLogic)
LOW_MARGIN_S = 0.085
HIGH_GAP_S = 0.020
#: an arrival within this of a chunk's start counts as in time (the clock is a float sum of frame durations)
EPS_S = 1e-9


@dataclass(frozen=True)
class TsmPlayout:
    """Parameters of the ``tsm`` buffer (defaults: NetEq's DelayManager)."""

    quantile: float = 0.95
    forget: float = 0.983
    start_forget_weight: float = 2.0
    bucket_s: float = 0.02
    history_s: float = 2.0
    min_delay_s: float = 0.0
    max_delay_s: float = 2.0
    timescale_gap: int = 2
    #: time-scale only frames this far below the clip's loud frames (dB), unless the buffer is far too full
    quiet_db: float = 30.0

    PARAMS = ("quantile", "forget", "start_forget_weight", "bucket_s", "history_s", "min_delay_s", "max_delay_s",
              "timescale_gap", "quiet_db")

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"tsm playout: quantile must lie in (0, 1), got {self.quantile!r}")
        if not 0.0 <= self.forget < 1.0:
            raise ConfigError(f"tsm playout: forget must lie in [0, 1), got {self.forget!r}")
        if not self.start_forget_weight >= 0:
            raise ConfigError(f"tsm playout: start_forget_weight must be >= 0, got {self.start_forget_weight!r}")
        for k in ("bucket_s", "history_s"):
            v = getattr(self, k)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"tsm playout: {k} must be a finite number of seconds > 0, got {v!r}")
        if not (0 <= self.min_delay_s <= self.max_delay_s and math.isfinite(self.max_delay_s)):
            raise ConfigError(f"tsm playout: need 0 <= min_delay_s <= max_delay_s (finite), got "
                              f"{self.min_delay_s!r}, {self.max_delay_s!r}")
        if not (self.quiet_db >= 0 and math.isfinite(self.quiet_db)):
            raise ConfigError(f"tsm playout: quiet_db must be a finite number of dB >= 0, got {self.quiet_db!r}")
        if int(self.timescale_gap) != self.timescale_gap or self.timescale_gap < 1:
            raise ConfigError(f"tsm playout: timescale_gap must be an integer >= 1, got {self.timescale_gap!r}")


class _Target:
    """NetEq's relative-delay histogram and its quantile."""

    def __init__(self, pl: TsmPlayout, frame_s: float) -> None:
        self.pl = pl
        self.frame_s = frame_s
        self.n_buckets = max(2, int(math.ceil(pl.max_delay_s / pl.bucket_s)) + 1)
        self.hist = np.zeros(self.n_buckets)
        self.count = 0
        self.window: deque[tuple[float, float]] = deque()  # (arrival, one-way delay)
        self.level_s = float("nan")

    def add(self, arrival_s: float, delay_s: float) -> None:
        pl = self.pl
        w = self.window
        w.append((arrival_s, delay_s))
        while w and w[0][0] < arrival_s - pl.history_s:
            w.popleft()
        rel = delay_s - min(d for _, d in w)
        b = min(int(rel / pl.bucket_s), self.n_buckets - 1)
        self.count += 1
        f = pl.forget
        if pl.start_forget_weight > 0:
            f = max(0.0, min(f, 1.0 - pl.start_forget_weight / (self.count + 1)))
        self.hist *= f
        self.hist[b] += 1.0 - f
        c = np.cumsum(self.hist)
        q = int(np.searchsorted(c, pl.quantile * c[-1] - 1e-12))
        t = (q + 1) * pl.bucket_s
        self.level_s = float(min(max(t, self.frame_s, pl.min_delay_s), pl.max_delay_s))


def _filter_coef(target_s: float, frame_s: float) -> float:
    """NetEq's BufferLevelFilter coefficient (per 10 ms) for a target of ``target_s``."""
    packets = target_s / frame_s
    return (251 if packets <= 1 else 252 if packets <= 3 else 253 if packets <= 7 else 254) / 256.0


def quiet_frames(samples: np.ndarray, frame_samples: int, n_frames: int, below_db: float) -> np.ndarray:
    """bool[n_frames]: frames whose RMS is ``below_db`` under the clip's loud frames (their 95th percentile):
    pauses and weak unvoiced sounds, where time-scaling is inaudible."""
    x = np.asarray(samples, dtype=np.float64)
    n = n_frames * frame_samples
    x = np.pad(x[:n], (0, max(0, n - x.size)))
    rms = np.sqrt(np.mean(x.reshape(n_frames, frame_samples) ** 2, axis=1)) if n_frames else np.zeros(0)
    if not rms.size or not rms.max() > 0:
        return np.ones(n_frames, bool)
    loud = np.percentile(rms, 95)
    return rms < loud * 10 ** (-below_db / 20)


def plan_tsm(pl: TsmPlayout, send_s: np.ndarray, arrival_s: np.ndarray, spans: np.ndarray, primary: np.ndarray,
             n_frames: int, frame_s: float, quiet: np.ndarray | None = None) -> tuple[PlayoutPlan, np.ndarray]:
    """The plan and the per-packet deadlines (see the module docstring). ``quiet``: bool[n_frames], the frames
    that may be time-scaled (NetEq stretches only where the signal allows; see :func:`quiet_frames`); None: all."""
    quiet = np.ones(n_frames, bool) if quiet is None else np.asarray(quiet, bool)
    if quiet.size != n_frames:
        raise ConfigError(f"tsm playout: {quiet.size} activity flags for {n_frames} frames")
    send_s = np.asarray(send_s, float)
    arrival_s = np.asarray(arrival_s, float)
    avail = frame_arrivals(arrival_s, spans, primary, n_frames)
    due = np.full(n_frames, -np.inf)  # when each frame was played or given up
    b = PlanBuilder(frame_s)
    got = np.flatnonzero(~np.isnan(arrival_s))
    if n_frames == 0 or got.size == 0:  # nothing to play, or nothing arrived: every frame concealed
        return concealed_plan(send_s, n_frames, frame_s, spans, primary, "tsm")
    order = got[np.argsort(arrival_s[got], kind="stable")]
    first = int(order[0])
    t = float(arrival_s[first])
    j = int(spans[first, 0]) if primary[first] else 0
    start = t - j * frame_s
    for k in range(j):  # frames before the first packet the receiver got: given up before it began
        b.add(EXPAND, 1.0, k, k + 1)
        due[k] = start + k * frame_s
    target = _Target(pl, frame_s)
    ptr = 0
    filt: float | None = None
    since_ts = pl.timescale_gap
    pending: list[int] = []  # chunk indices of the current wait
    merge_next = False
    # the frames the receiver will ever get, to end a wait that nothing can end
    last_arrival_from = np.maximum.accumulate(np.where(np.isfinite(avail), avail, -np.inf)[::-1])[::-1]
    while j < n_frames:
        while ptr < order.size and arrival_s[order[ptr]] <= t + EPS_S:
            p = int(order[ptr])
            target.add(float(arrival_s[p]), float(arrival_s[p] - send_s[p]))
            ptr += 1
        tgt = target.level_s
        here = avail[j:] <= t + EPS_S
        level = float(np.count_nonzero(here)) * frame_s
        filt = level if filt is None else filt
        if here[0]:
            if pending or merge_next:
                act, consume, out = MERGE, 1, 1.0
                pending, merge_next = [], False
            else:
                low = max(0.75 * tgt, tgt - LOW_MARGIN_S)
                high = max(tgt, low + HIGH_GAP_S)
                act, consume, out = NORMAL, 1, 1.0
                if since_ts >= pl.timescale_gap:
                    if filt >= high and here.size > 1 and here[1] and ((quiet[j] and quiet[j + 1])
                                                                      or filt >= 4 * high):
                        act, consume, out = ACCELERATE, 2, 1.5
                    elif filt < low and quiet[j]:
                        act, consume, out = PREEMPTIVE, 1, 1.5
            b.add(act, out, j, j + consume, tgt, level)
            due[j: j + consume] = t + EPS_S
            since_ts = 0 if act in (ACCELERATE, PREEMPTIVE) else since_ts + 1
            filt += (out - consume) * frame_s  # what the time-scale action added (or removed) counts at once
            j += consume
        else:
            later = np.flatnonzero(here)
            if later.size and len(pending) >= int(later[0]):
                # give up the missing frames: the first waiting chunks were their concealment
                g = int(later[0])
                for i, c in enumerate(pending[:g]):
                    b.rows[c][0], b.rows[c][2], b.rows[c][3] = EXPAND, j + i, j + i + 1
                for c in pending[g:]:
                    b.rows[c][2] = b.rows[c][3] = j + g
                due[j: j + g] = t
                j += g
                pending, merge_next = [], True
                continue  # the next frame is here: merge it at this same instant
            if not later.size and last_arrival_from[j] <= t + EPS_S:
                # nothing the receiver has not got will ever come: conceal the rest
                g = n_frames - j
                for i in range(g):
                    if i < len(pending):
                        c = pending[i]
                        b.rows[c][0], b.rows[c][2], b.rows[c][3] = EXPAND, j + i, j + i + 1
                    else:
                        b.add(EXPAND, 1.0, j + i, j + i + 1, tgt, level)
                    due[j + i] = t + max(0, i - len(pending)) * frame_s
                for c in pending[g:]:
                    b.rows[c][2] = b.rows[c][3] = n_frames
                j = n_frames
                pending = []
                break
            pending.append(b.add(HOLD, 1.0, j, j, tgt, level))
            since_ts += 1
            out = 1.0
        coef = _filter_coef(tgt, frame_s) ** ((out * frame_s) / 0.01)
        filt = coef * filt + (1.0 - coef) * level
        t += out * frame_s
    plan = b.build(start, "tsm", first_arrival_s=float(arrival_s[first]))
    return plan, packet_deadlines(due, spans, primary)
