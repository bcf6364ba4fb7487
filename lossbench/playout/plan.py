"""A playout plan: what a time-warping receiver played, chunk by chunk, and how to render and undo it.

A receiver that stretches time (``playout=tsm``) or inserts and drops frames
(``playout=speex``) no longer plays frame k at ``start + k * frame``. Its
:class:`PlayoutPlan` records, per output chunk, the action, the output time it
took and the media (the codec's frame timeline) it consumed:

======================  =====================================  =================================
action                  output                                 media consumed
======================  =====================================  =================================
``normal``              one frame                              one frame (decoded from its packet)
``accelerate``          1.5 frames                             two frames (WSOLA compression)
``preemptive``          1.5 frames                             one frame (WSOLA expansion)
``expand``              one frame                              one frame, declared lost: the codec's
                                                               concealment
``hold``                one frame                              none: the receiver waits for a late
                                                               packet, stretching what it has played
``merge``               one frame                              one frame, the first after a wait
``drop``                none                                   frames the buffer threw away
======================  =====================================  =================================

The codec decodes once, with the mask of the packets that were in the buffer
when their frame was due (``Reception.usable``: a packet's deadline is when its
frame was played or given up). :func:`render` then follows the plan's time map
with WSOLA (:mod:`lossbench.playout.wsola`) to give what the listener hears,
and records the map WSOLA really followed (:class:`RenderMap`);
:func:`align` inverts it to bring that audio back onto the reference's time
axis for the intrusive metrics: what was heard as a plain copy of the decoded
audio comes back sample for sample, waits (``hold``) are cut out, and what
was compressed, stretched or dropped is re-timed by WSOLA (so it is scored
after two WSOLA passes), cross-faded into the copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossbench.errors import ConfigError
from lossbench.playout.wsola import default_sizes, wsola

ACTIONS = ("normal", "accelerate", "preemptive", "expand", "hold", "merge", "drop")
NORMAL, ACCELERATE, PREEMPTIVE, EXPAND, HOLD, MERGE, DROP = range(len(ACTIONS))

#: a wait's stretch searches this far back for the best continuation (> the longest pitch period, 12.5 ms)
HOLD_SEARCH_S = 0.015
#: a wait keeps full level for this long, then fades by half every HOLD_FADE_HALF_S (as NetEq's expand mutes a
#: long expansion). Chosen on held-out speech with delay spikes: fading after 40 ms (halving every 20 ms) gave
#: PLCMOS 3.26 under 250 ms spikes every 4 s, fading after 200 ms 3.58 (4 clips, Opus 24k, deep PLC)
HOLD_FULL_S = 0.2
HOLD_FADE_HALF_S = 0.1


@dataclass
class PlayoutPlan:
    """The chunks a playout played, in output order.

    Attributes:
        frame_s: the codec frame's duration.
        start_s: the output time (receiver clock) of the first chunk.
        action: int[c], indices into :data:`ACTIONS`.
        out_s: float[c], each chunk's output duration in seconds.
        media0, media1: float[c], the media (in frames) each chunk consumed, [media0, media1).
        target_s: float[c], the buffer's target level when the chunk was decided (NaN where it has none).
        level_s: float[c], the buffer level it saw (NaN where it has none).
        policy: "tsm" or "speex".
    """

    frame_s: float
    start_s: float
    action: np.ndarray
    out_s: np.ndarray
    media0: np.ndarray
    media1: np.ndarray
    target_s: np.ndarray
    level_s: np.ndarray
    policy: str = "tsm"
    facts: dict = field(default_factory=dict)

    @property
    def num_chunks(self) -> int:
        return int(self.action.size)

    @property
    def output_s(self) -> float:
        return float(self.out_s.sum())

    def out_start_s(self) -> np.ndarray:
        """float[c]: each chunk's start on the output axis, from the first chunk."""
        return np.concatenate([[0.0], np.cumsum(self.out_s)[:-1]]) if self.num_chunks else np.zeros(0)

    def rates(self) -> dict[str, float]:
        """NetEq-style rates, each a fraction of the output time: ``expand_rate`` (concealment and waiting,
        all of it synthesised), ``hold_rate`` (the waiting part alone), ``accelerate_rate`` (media removed by
        compression), ``preemptive_rate`` (time added by expansion), ``merge_rate`` (chunks that join a wait
        to the next packet), ``drop_rate`` (media the buffer discarded, per output time)."""
        total = self.output_s
        if total <= 0:
            return {k: float("nan") for k in ("expand_rate", "hold_rate", "accelerate_rate", "preemptive_rate",
                                              "merge_rate", "drop_rate")}
        a, o = self.action, self.out_s
        media = (self.media1 - self.media0) * self.frame_s
        return {
            "expand_rate": float(o[(a == EXPAND) | (a == HOLD)].sum() / total),
            "hold_rate": float(o[a == HOLD].sum() / total),
            "accelerate_rate": float((media - o)[a == ACCELERATE].sum() / total),
            "preemptive_rate": float((o - media)[a == PREEMPTIVE].sum() / total),
            "merge_rate": float(o[a == MERGE].sum() / total),
            "drop_rate": float(media[a == DROP].sum() / total),
        }

    def log(self) -> list[dict]:
        """The per-chunk action log, as plain rows (output time from the receiver's clock)."""
        t = self.start_s + self.out_start_s()
        return [{"t_s": round(float(t[i]), 6), "action": ACTIONS[int(self.action[i])],
                 "out_ms": round(1e3 * float(self.out_s[i]), 3),
                 "media_frames": [round(float(self.media0[i]), 3), round(float(self.media1[i]), 3)],
                 "target_ms": None if np.isnan(self.target_s[i]) else round(1e3 * float(self.target_s[i]), 2),
                 "level_ms": None if np.isnan(self.level_s[i]) else round(1e3 * float(self.level_s[i]), 2)}
                for i in range(self.num_chunks)]


class PlanBuilder:
    """Accumulates chunks; the planners use it."""

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self.rows: list[list[float]] = []

    def add(self, action: int, out_frames: float, m0: float, m1: float, target: float = np.nan,
            level: float = np.nan) -> int:
        self.rows.append([action, out_frames * self.frame_s, m0, m1, target, level])
        return len(self.rows) - 1

    def build(self, start_s: float, policy: str, **facts) -> PlayoutPlan:
        r = np.asarray(self.rows, dtype=np.float64).reshape(-1, 6)
        return PlayoutPlan(self.frame_s, float(start_s), r[:, 0].astype(np.int8), r[:, 1], r[:, 2], r[:, 3],
                           r[:, 4], r[:, 5], policy, facts)


def _segment_map(plan: PlayoutPlan, sr: int, n_media: int):
    """Per output hop: WSOLA centre (media samples), tolerance, gain and the latest media sample it may read."""
    win, hop, tol = default_sizes(sr)
    total = int(round(plan.output_s * sr))
    k_n = -(-total // hop) if total else 0
    o0 = plan.out_start_s() * sr
    o1 = o0 + plan.out_s * sr
    m0, m1 = plan.media0 * plan.frame_s * sr, plan.media1 * plan.frame_s * sr
    seg_center = np.arange(k_n) * hop + hop  # each output segment's centre, output samples
    ci = np.clip(np.searchsorted(o1, seg_center, side="right"), 0, max(plan.num_chunks - 1, 0))
    frac = np.where(o1[ci] > o0[ci], (seg_center - o0[ci]) / np.maximum(o1[ci] - o0[ci], 1e-9), 0.0)
    centers = m0[ci] + np.clip(frac, 0.0, 1.0) * (m1[ci] - m0[ci])
    # a segment may read no media that had not been played (or received) by the time it ends
    ends = np.maximum.accumulate(m1)
    seg_end_chunk = np.clip(np.searchsorted(o0, seg_center + hop, side="left") - 1, 0, max(plan.num_chunks - 1, 0))
    max_end = np.minimum(ends[seg_end_chunk], n_media).astype(np.int64)
    tols = np.full(k_n, tol, dtype=np.int64)
    gain = np.ones(k_n)
    hold = plan.action[ci] == HOLD
    if hold.any():
        search = int(round(HOLD_SEARCH_S * sr))
        # a waiting segment is taken from the last ``search`` samples before the wait, pitch-synchronously
        centers[hold] = m0[ci[hold]] - hop - search / 2
        tols[hold] = search // 2
        # how long each waiting segment has been waiting: the output since the hold run began
        run_start = np.zeros(plan.num_chunks)
        for i in range(plan.num_chunks):
            if plan.action[i] == HOLD:
                run_start[i] = run_start[i - 1] if i and plan.action[i - 1] == HOLD else o0[i]
        waited = (seg_center[hold] - run_start[ci[hold]]) / sr
        gain[hold] = np.where(waited < HOLD_FULL_S, 1.0, 0.5 ** ((waited - HOLD_FULL_S) / HOLD_FADE_HALF_S))
    return win, centers, tols, gain, max_end, total


def _hybrid(x: np.ndarray, n: int, off: np.ndarray, centers: np.ndarray, tols, win: int) -> np.ndarray:
    """``n`` samples: copied from ``x`` where a whole WSOLA segment lies in one piece of constant offset ``off``
    (source - destination; NaN: no copy), WSOLA (the map ``centers``) elsewhere, each WSOLA run cross-faded in
    and out over one hop against the copies around it."""
    hop = win // 2
    k_n = centers.size
    out = np.zeros(n + win, dtype=np.float64)
    valid = ~np.isnan(off)
    src = np.where(valid, np.arange(n) + np.nan_to_num(off), 0).astype(np.int64)
    ok = valid & (src >= 0) & (src < x.size)
    out[:n][ok] = x[src[ok]]
    # a hop is exact when its whole segment maps by one constant offset
    offp = np.concatenate([off, np.full(win, np.nan)])
    seg = np.lib.stride_tricks.sliding_window_view(offp, win)[: k_n * hop: hop][:k_n]
    exact = np.all(seg == seg[:, :1], axis=1) & ~np.isnan(seg[:, 0])
    tols_a = np.broadcast_to(np.asarray(tols), (k_n,))
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    k = 0
    while k < k_n:
        if exact[k]:
            k += 1
            continue
        j = k
        while j < k_n and not exact[j]:
            j += 1
        a, b = max(k - 1, 0), min(j, k_n - 1)  # one exact hop each side, for the cross-fades
        sl = slice(a, b + 1)
        y = wsola(x, centers[sl], win, tols_a[sl], tail=True)
        lo = a * hop
        seg_out = out[lo: lo + y.size]
        y = y[: seg_out.size]
        mix = y.astype(np.float64).copy()
        if a < k:  # the first segment sits on the exact copy: its rising half fades the copy out
            mix[:hop] += seg_out[:hop] * w[hop:]
        if b >= j and b * hop + win <= n:  # the last one too: its falling half fades the copy back in
            mix[-hop:] += seg_out[-hop:] * w[:hop]
        out[lo: lo + mix.size] = mix
        k = j
    return out[:n].astype(np.float32)


@dataclass(frozen=True)
class RenderMap:
    """Where :func:`render` took each WSOLA segment from (``starts``, media samples) and at what ``gain``: the
    time map it really followed, which :func:`align` inverts exactly where the output is a plain copy."""

    starts: np.ndarray
    gain: np.ndarray
    hop: int


def render(audio: np.ndarray, plan: PlayoutPlan, sample_rate_hz: int,
           return_map: bool = False) -> np.ndarray | tuple[np.ndarray, RenderMap]:
    """What the listener hears: the decoded (media-timeline) ``audio`` played through ``plan`` by WSOLA (with
    ``return_map``, also the :class:`RenderMap` it followed). WSOLA keeps the waveform continuous, so after a
    stretch the audio may run up to its 5 ms search behind or ahead of the plan's nominal map; the realised map
    records by how much."""
    audio = np.asarray(audio, dtype=np.float32)
    win, centers, tols, gain, max_end, total = _segment_map(plan, sample_rate_hz, audio.size)
    starts = np.zeros(centers.size, np.int64)
    y = wsola(audio, centers, win, tols, gain=gain, max_end=max_end, starts=starts)[:total]
    return (y, RenderMap(starts, gain, win // 2)) if return_map else y


def align(heard: np.ndarray, plan: PlayoutPlan, sample_rate_hz: int, n_media: int,
          rmap: RenderMap | None = None) -> np.ndarray:
    """``heard`` (the output of :func:`render`) brought back onto the media time axis, ``n_media`` samples
    long, for intrusive metrics: each media position is read from where the plan played it.

    With ``rmap`` (render's realised map), every stretch of media that the listener heard as a plain copy is
    copied back sample for sample from where it was played; WSOLA re-times only the rest (what was compressed
    away, stretched, or dropped), cross-faded into the copies. Without it, the plan's nominal map drives WSOLA
    everywhere."""
    sr = sample_rate_hz
    win, hop, tol = default_sizes(sr)
    k_n = -(-n_media // hop) if n_media else 0
    played = plan.action != HOLD
    if not played.any() or k_n == 0:
        return np.zeros(n_media, dtype=np.float32)
    o0 = (plan.out_start_s() * sr)[played]
    o1 = o0 + (plan.out_s * sr)[played]
    m0 = (plan.media0 * plan.frame_s * sr)[played]
    m1 = (plan.media1 * plan.frame_s * sr)[played]
    mc = np.arange(k_n) * hop + hop
    ci = np.clip(np.searchsorted(m1, mc, side="right"), 0, m1.size - 1)
    span = m1[ci] - m0[ci]
    frac = np.where(span > 0, (mc - m0[ci]) / np.maximum(span, 1e-9), 0.0)
    centers = o0[ci] + np.clip(frac, 0.0, 1.0) * (o1[ci] - o0[ci])
    heard = np.asarray(heard, dtype=np.float32)
    if rmap is None:
        return wsola(heard, centers, win, tol)[:n_media]
    # the realised map: between the centres of segments k and k + 1 the output is the media itself (shifted by
    # k * hop - starts[k]) when the second segment is the first's natural continuation at full gain
    st, g, h = rmap.starts, rmap.gain, rmap.hop
    off = np.full(n_media, np.nan)
    cont = np.flatnonzero((st[1:] == st[:-1] + h) & (g[1:] == 1.0) & (g[:-1] == 1.0))
    for k in cont:
        m_lo = int(st[k]) + h
        o_lo = k * h + h
        if o_lo + h > heard.size or m_lo < 0:
            continue
        seg = off[m_lo: m_lo + h]
        free = np.isnan(seg)  # media heard twice (an expansion): the first hearing
        seg[free] = o_lo - m_lo
    # and the WSOLA that fills the rest follows the realised map too (segment centres: media st + h at output
    # k * h + h), so that it meets the copies where they are; waits (no media advance) are left out
    mk = st.astype(float) + h
    adv = np.flatnonzero(np.r_[True, mk[1:] > np.maximum.accumulate(mk)[:-1]])  # segments that reach new media
    if adv.size >= 2:
        centers = np.interp(mc, mk[adv], adv * h + h)
    return _hybrid(heard, n_media, off, centers, tol, win)


def frame_layout(packets) -> tuple[np.ndarray, np.ndarray, int]:
    """(first frame, last frame + 1) per packet, whether each packet is a primary one, and the frame count."""
    from lossbench.core import PacketKind

    first = np.array([p.frames.start if len(p.frames) else -1 for p in packets], dtype=np.int64)
    stop = np.array([p.frames.stop if len(p.frames) else -1 for p in packets], dtype=np.int64)
    primary = np.array([p.kind == PacketKind.PRIMARY and len(p.frames) > 0 for p in packets], dtype=bool)
    n = int(stop.max()) if stop.size and stop.max() > 0 else 0
    return np.stack([first, stop], axis=1) if first.size else np.zeros((0, 2), np.int64), primary, n


def frame_arrivals(arrival_s: np.ndarray, spans: np.ndarray, primary: np.ndarray, n_frames: int) -> np.ndarray:
    """float[n_frames]: when each frame's primary packet arrived (inf: never; -inf: no packet carries it, so
    nothing is waited for)."""
    out = np.full(n_frames, -np.inf)
    for p in np.flatnonzero(primary):
        a = arrival_s[p]
        out[spans[p, 0]: spans[p, 1]] = np.inf if np.isnan(a) else a
    return out


def packet_deadlines(frame_due_s: np.ndarray, spans: np.ndarray, primary: np.ndarray) -> np.ndarray:
    """A packet's deadline: when its first frame was played or given up (a primary packet), when the last
    frame it protects was (redundancy, side information)."""
    n = spans.shape[0]
    out = np.full(n, np.inf)
    if frame_due_s.size == 0:
        return out
    for p in range(n):
        a, b = spans[p]
        if a < 0 or a >= frame_due_s.size:
            continue
        out[p] = frame_due_s[a] if primary[p] else frame_due_s[min(b, frame_due_s.size) - 1]
    return out


def concealed_plan(send_s: np.ndarray, n_frames: int, frame_s: float, spans: np.ndarray, primary: np.ndarray,
                   policy: str) -> tuple[PlayoutPlan, np.ndarray]:
    """The plan of a receiver that got nothing: every frame concealed on the sender's schedule."""
    b = PlanBuilder(frame_s)
    due = np.full(n_frames, -np.inf)
    t0 = float(send_s[0]) if len(send_s) else 0.0
    for k in range(n_frames):
        b.add(EXPAND, 1.0, k, k + 1)
        due[k] = t0 + k * frame_s
    return b.build(t0, policy), packet_deadlines(due, spans, primary)


def check_plan(plan: PlayoutPlan, n_frames: int) -> None:
    """Every frame consumed exactly once, in order (a planner's invariant; tests call it)."""
    m0, m1 = plan.media0, plan.media1
    if plan.num_chunks == 0:
        if n_frames:
            raise ConfigError("empty playout plan for a non-empty stream")
        return
    if not (np.isclose(m0[0], 0.0) and np.isclose(m1[-1], n_frames)):
        raise ConfigError(f"playout plan covers frames {m0[0]}..{m1[-1]}, not 0..{n_frames}")
    if not np.allclose(m0[1:], m1[:-1]):
        raise ConfigError("playout plan's media is not contiguous")
