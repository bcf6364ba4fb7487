"""``playout=speex``: speexdsp's adaptive jitter buffer (libspeexdsp 1.2.1), a production peer, driven by ctypes.

The receiver is simulated as a speexdsp application runs it: at each arrival
the packet is ``jitter_buffer_put`` with its timestamp (its first frame x the
frame's samples) and span; once per packet duration (the playout tick) the
receiver calls ``jitter_buffer_get`` for one packet's span, then
``jitter_buffer_tick``. The ticks start at the first arrival. Per tick:

- ``JITTER_BUFFER_OK``: the returned packet plays (``normal``). If its
  timestamp is past the buffer's pointer before the call, the buffer skipped
  the frames between to shrink its delay: they are ``drop`` chunks (no output).
- ``JITTER_BUFFER_MISSING``: the frame at the pointer is given up and the
  codec conceals it (``expand``).
- ``JITTER_BUFFER_INSERTION``: the buffer asks for a frame of its own to grow
  its delay; the pointer does not move, and the receiver stretches what it has
  played (``hold``).

speexdsp decides only what to play; it never time-stretches, so its changes
of delay are insertions and drops of whole frames. Its own settings (margin,
delay step, late cost, maximum late rate) can be set through the spec.
Redundancy packets are not given to it (it knows nothing of FEC): they count as
usable if they arrived by the time the frames they protect were played.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from lossbench.concurrency import locked_cache
from lossbench.errors import ConfigError
from lossbench.playout.plan import DROP, EXPAND, HOLD, NORMAL, PlanBuilder, PlayoutPlan, concealed_plan, packet_deadlines

OK, MISSING, INSERTION = 0, 1, 2
SET_MARGIN, SET_DELAY_STEP, SET_CONCEALMENT_SIZE, SET_MAX_LATE_RATE, SET_LATE_COST = 0, 6, 8, 10, 12
GET_MARGIN, GET_DELAY_STEP, GET_CONCEALMENT_SIZE, GET_MAX_LATE_RATE, GET_LATE_COST = 1, 7, 9, 11, 13


class _Packet(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("len", ctypes.c_uint32), ("timestamp", ctypes.c_uint32),
                ("span", ctypes.c_uint32), ("sequence", ctypes.c_uint16), ("user_data", ctypes.c_uint32)]


@locked_cache(1)
def _lib() -> ctypes.CDLL:
    from lossbench.native.clib import load_clib

    vp, pk, i32 = ctypes.c_void_p, ctypes.POINTER(_Packet), ctypes.c_int32
    return load_clib("speexdsp", "libspeexdsp.so.1", "libspeexdsp1", {
        "jitter_buffer_init": (vp, [ctypes.c_int]),
        "jitter_buffer_destroy": (None, [vp]),
        "jitter_buffer_put": (None, [vp, pk]),
        "jitter_buffer_get": (ctypes.c_int, [vp, pk, i32, ctypes.POINTER(i32)]),
        "jitter_buffer_tick": (None, [vp]),
        "jitter_buffer_get_pointer_timestamp": (ctypes.c_int, [vp]),
        "jitter_buffer_ctl": (ctypes.c_int, [vp, ctypes.c_int, vp]),
    })


@dataclass(frozen=True)
class SpeexPlayout:
    """speexdsp's jitter buffer. Unset values keep speexdsp's own defaults (margin 0, delay step = one packet,
    maximum late rate 4 %, late cost 0: read back and recorded in the plan's facts)."""

    margin_ms: float | None = None
    max_late_rate: int | None = None  # percent
    late_cost: int | None = None
    delay_step_ms: float | None = None

    PARAMS = ("margin_ms", "max_late_rate", "late_cost", "delay_step_ms")

    def __post_init__(self) -> None:
        for k in ("margin_ms", "delay_step_ms"):
            v = getattr(self, k)
            if v is not None and not (0 <= v < 10_000):
                raise ConfigError(f"speex playout: {k} must lie in [0, 10000) ms, got {v!r}")
        if self.max_late_rate is not None and not (int(self.max_late_rate) == self.max_late_rate
                                                   and 0 <= self.max_late_rate <= 100):
            raise ConfigError(f"speex playout: max_late_rate is a whole percentage 0..100, got {self.max_late_rate!r}")
        if self.late_cost is not None and not (int(self.late_cost) == self.late_cost and self.late_cost >= 0):
            raise ConfigError(f"speex playout: late_cost must be an integer >= 0, got {self.late_cost!r}")


def plan_speex(pl: SpeexPlayout, send_s: np.ndarray, arrival_s: np.ndarray, spans: np.ndarray,
               primary: np.ndarray, n_frames: int, frame_s: float, rate_hz: int = 16000) -> tuple[PlayoutPlan, np.ndarray]:
    """The plan speexdsp's buffer plays for these arrivals, and the per-packet deadlines."""
    lib = _lib()
    send_s = np.asarray(send_s, float)
    arrival_s = np.asarray(arrival_s, float)
    fs = max(1, int(round(frame_s * rate_hz)))  # timestamp units: samples at the codec's rate
    prim = np.flatnonzero(primary)
    fpp = int(np.median(spans[prim, 1] - spans[prim, 0])) if prim.size else 1
    step = fs * fpp
    due = np.full(n_frames, -np.inf)
    b = PlanBuilder(frame_s)
    got = np.flatnonzero(~np.isnan(arrival_s) & primary)
    if n_frames == 0 or got.size == 0:  # nothing to play, or nothing arrived: every frame concealed
        return concealed_plan(send_s, n_frames, frame_s, spans, primary, "speex")
    order = got[np.argsort(arrival_s[got], kind="stable")]
    jb = lib.jitter_buffer_init(step)
    if not jb:
        raise ConfigError("speexdsp: jitter_buffer_init failed")
    facts: dict = {}
    try:
        def ctl(req: int, value: int | None, get: int) -> int:
            v = ctypes.c_int32(0 if value is None else int(value))
            if value is not None:
                lib.jitter_buffer_ctl(jb, req, ctypes.cast(ctypes.byref(v), ctypes.c_void_p))
            out = ctypes.c_int32(0)
            lib.jitter_buffer_ctl(jb, get, ctypes.cast(ctypes.byref(out), ctypes.c_void_p))
            return int(out.value)

        facts["margin_ms"] = ctl(SET_MARGIN, None if pl.margin_ms is None else round(pl.margin_ms * rate_hz / 1e3),
                                 GET_MARGIN) * 1e3 / rate_hz
        facts["delay_step_ms"] = ctl(SET_DELAY_STEP, None if pl.delay_step_ms is None
                                     else round(pl.delay_step_ms * rate_hz / 1e3), GET_DELAY_STEP) * 1e3 / rate_hz
        facts["max_late_rate"] = ctl(SET_MAX_LATE_RATE, pl.max_late_rate, GET_MAX_LATE_RATE)
        facts["late_cost"] = ctl(SET_LATE_COST, pl.late_cost, GET_LATE_COST)
        buf = ctypes.create_string_buffer(8)
        pkt = _Packet()
        offset = ctypes.c_int32(0)
        t0 = float(arrival_s[order[0]])
        t = t0
        tick_s = fpp * frame_s
        ptr = 0
        m = 0  # the next media frame
        first = int(order[0])
        start = t0 - spans[first, 0] * frame_s
        for k in range(int(spans[first, 0])):  # before the first packet the receiver got
            b.add(EXPAND, 1.0, k, k + 1)
            due[k] = start + k * frame_s
        m = int(spans[first, 0])
        last = float(np.nanmax(arrival_s[got]))
        dummy = ctypes.create_string_buffer(1)
        while m < n_frames:
            while ptr < order.size and arrival_s[order[ptr]] <= t + 1e-9:
                p = int(order[ptr])
                a, z = int(spans[p, 0]), int(spans[p, 1])
                put = _Packet(ctypes.cast(dummy, ctypes.c_char_p), 1, (a * fs) & 0xFFFFFFFF, (z - a) * fs,
                              p & 0xFFFF, p)
                lib.jitter_buffer_put(jb, ctypes.byref(put))
                ptr += 1
            if t > last + 2.0 + n_frames * frame_s:  # nothing more can come (a guard; the pointer advances)
                break
            pkt.data, pkt.len = ctypes.cast(buf, ctypes.c_char_p), len(buf)
            r = lib.jitter_buffer_get(jb, ctypes.byref(pkt), step, ctypes.byref(offset))
            if r == OK:
                f = int(pkt.timestamp) // fs
                span_f = max(1, int(pkt.span) // fs)
                if f > m:  # the buffer skipped frames to shrink its delay
                    b.add(DROP, 0.0, m, min(f, n_frames))
                    due[m: min(f, n_frames)] = t
                    m = min(f, n_frames)
                if f >= m and m < n_frames:
                    z = min(f + span_f, n_frames)
                    b.add(NORMAL, z - m, m, z)
                    due[m:z] = t + 1e-9
                    m = z
                else:  # an older packet than the pointer (speexdsp should not return one): a wait
                    b.add(HOLD, fpp, m, m)
            elif r == MISSING:
                z = min(m + fpp, n_frames)
                b.add(EXPAND, z - m, m, z)
                due[m:z] = t
                m = z
            elif r == INSERTION:
                b.add(HOLD, fpp, m, m)
            else:
                raise ConfigError(f"speexdsp: jitter_buffer_get returned {r}")
            lib.jitter_buffer_tick(jb)
            t += tick_s
        for k in range(m, n_frames):  # past the guard: the rest concealed
            b.add(EXPAND, 1.0, k, k + 1)
            due[k] = t
            t += frame_s
    finally:
        lib.jitter_buffer_destroy(jb)
    return b.build(start, "speex", **facts), packet_deadlines(due, spans, primary)
