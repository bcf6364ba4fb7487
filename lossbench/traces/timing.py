"""Traces with timing: per packet, when it was sent and when (if ever) it arrived.

Two sources:

- **CSV** ``seq,send_s,arrival_s``, one row per packet, an empty ``arrival_s``
  for a lost packet. Sequence numbers may wrap at 65536 (RTP) and may come in
  any order; a missing number is a lost packet; a repeated one is a duplicate
  (counted; its first arrival is kept).
- **pcap / pcapng captures of RTP**, read with Scapy (2.8.0). Scapy was chosen
  because it is actively maintained (releases through 2026), reads both pcap
  and pcapng with every common link layer (Ethernet, Linux cooked capture,
  raw IP, loopback) and is pure Python, so ``make setup`` installs it from
  PyPI with nothing to compile; its parsing speed (tens of thousands of
  packets per second) is ample for call captures. UDP payloads that parse as
  RTP version 2 (not RTCP) are grouped by SSRC; one SSRC is picked by option,
  else the stream with the most packets. A capture holds only arrival times:
  the send time of packet k is taken from its RTP timestamp (``(ts - ts0) /
  clock_rate``), and the one-way delays are then shifted so that the fastest
  packet has delay 0 (a capture cannot know the clock offset; a channel's
  ``delay`` adds the base). The clock rate is given, or inferred as the
  standard rate (8, 16, 32, 44.1, 48 or 90 kHz) nearest to the timestamp step
  over the median packet spacing.

Replaying a timing trace gives each packet its loss and its delay
(:class:`lossbench.netsim.network.Link` ``timing``); :func:`timing_stats` gives the
delay percentiles and the RFC 3550 interarrival jitter.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.errors import TraceFormatError
from lossbench.traces.csvrows import csv_rows

STANDARD_CLOCKS = (8000, 16000, 32000, 44100, 48000, 90000)
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
               b"\x0a\x0d\x0d\x0a")


@dataclass(frozen=True, eq=False)
class TimingTrace:
    """Packets in sequence order (0-based, dense): send time, arrival time (NaN: lost).

    Attributes:
        send_s: float[n], non-decreasing.
        arrival_s: float[n], NaN where lost; never before ``send_s``.
        meta: provenance and what the reader counted (``duplicates``, ``reordered``, ``ssrc``, ``clock_rate``).
    """

    send_s: np.ndarray
    arrival_s: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.send_s.size)

    @property
    def lost(self) -> np.ndarray:
        return np.isnan(self.arrival_s)

    @property
    def delay_s(self) -> np.ndarray:
        """float[n]: one-way delay, NaN where lost."""
        return self.arrival_s - self.send_s

    @property
    def slot_s(self) -> float:
        d = np.diff(self.send_s)
        d = d[d > 0]
        return float(np.median(d)) if d.size else 0.02

    def to_csv(self) -> bytes:
        out = io.StringIO()
        out.write("seq,send_s,arrival_s\n")
        for i, (s, a) in enumerate(zip(self.send_s.tolist(), self.arrival_s.tolist())):
            out.write(f"{i},{s:.6f},{'' if math.isnan(a) else f'{a:.6f}'}\n")
        return out.getvalue().encode()


def _unwrap16(seq: np.ndarray) -> np.ndarray:
    """RTP sequence numbers unwrapped past 65535, in the order given (a step back of more than half the space
    is a wrap forward)."""
    s = np.asarray(seq, dtype=np.int64)
    if s.size == 0:
        return s
    d = np.diff(s)
    d = (d + 32768) % 65536 - 32768
    return np.concatenate([[s[0]], s[0] + np.cumsum(d)])


def _assemble(seq: np.ndarray, send: np.ndarray, arrival: np.ndarray, where: str, meta: dict) -> TimingTrace:
    """Order by unwrapped sequence number, count duplicates and reordering, fill gaps as lost packets."""
    seq = _unwrap16(seq) if meta.get("wraps16") else np.asarray(seq, dtype=np.int64)
    if seq.size == 0:
        raise TraceFormatError(f"{where}: no packets")
    # reordering: arrivals whose sequence number is below one that arrived before them
    got = ~np.isnan(arrival)
    order = np.argsort(np.where(got, arrival, np.inf), kind="stable")
    arrived_seq = seq[order][got[order]]
    reordered = int(np.sum(arrived_seq < np.maximum.accumulate(arrived_seq))) if arrived_seq.size else 0
    base = int(seq.min())
    n = int(seq.max()) - base + 1
    s_out = np.full(n, np.nan)
    a_out = np.full(n, np.nan)
    seen = np.zeros(n, bool)
    dup = 0
    for k, s, a in zip((seq - base).tolist(), send.tolist(), arrival.tolist()):
        if seen[k]:
            dup += 1
            if not math.isnan(a) and (math.isnan(a_out[k]) or a < a_out[k]):
                a_out[k] = a
            continue
        seen[k] = True
        s_out[k], a_out[k] = s, a
    missing = ~seen
    if missing.any():  # numbers never seen: lost packets, sent on the line between their neighbours
        idx = np.arange(n)
        s_out[missing] = np.interp(idx[missing], idx[~missing], s_out[~missing])
    if np.any(np.diff(s_out) < -1e-9):
        k = int(np.flatnonzero(np.diff(s_out) < -1e-9)[0]) + 1
        raise TraceFormatError(f"{where}: packet {k + base} is sent before packet {k + base - 1}")
    return TimingTrace(s_out, a_out, {**meta, "packets": n, "duplicates": dup, "reordered": reordered,
                                      "missing_seq": int(missing.sum()), "first_seq": base})


def parse_timing_csv(data: bytes, p: Path | str) -> TimingTrace:
    """A ``seq,send_s,arrival_s`` CSV (see the module docstring); errors name the line."""
    rows, cols = csv_rows(data, p)
    hno, header = rows[0]
    need = ("seq", "send_s", "arrival_s")
    if not set(need) <= set(cols):
        raise TraceFormatError(f"{p}: line {hno}: expected a header 'seq,send_s,arrival_s', got {','.join(header)!r}")
    ix = [cols.index(c) for c in need]
    seq, send, arr = [], [], []
    for no, r in rows[1:]:
        if len(r) <= max(ix):
            raise TraceFormatError(f"{p}: line {no}: expected {len(cols)} fields, got {len(r)}")
        vals = []
        for c, i in zip(need, ix):
            cell = r[i].strip()
            if c == "arrival_s" and cell == "":
                vals.append(math.nan)
                continue
            try:
                v = float(cell)
            except ValueError:
                raise TraceFormatError(f"{p}: line {no}: {c} must be a number, got {cell[:40]!r}") from None
            if not math.isfinite(v):
                raise TraceFormatError(f"{p}: line {no}: {c} must be finite, got {cell[:40]!r}")
            vals.append(v)
        if vals[0] != int(vals[0]) or vals[0] < 0:
            raise TraceFormatError(f"{p}: line {no}: seq must be an integer >= 0, got {r[ix[0]].strip()[:40]!r}")
        if not math.isnan(vals[2]) and vals[2] < vals[1]:
            raise TraceFormatError(f"{p}: line {no}: arrival_s {vals[2]:g} is before send_s {vals[1]:g}")
        seq.append(int(vals[0]))
        send.append(vals[1])
        arr.append(vals[2])
    if not seq:
        raise TraceFormatError(f"{p}: the CSV file has a header but no rows (empty trace)")
    s = np.array(seq)
    wraps = bool(s.max() < 65536 and np.any(np.abs(np.diff(s)) > 32768))
    return _assemble(s, np.array(send), np.array(arr), str(p), {"source": str(p), "format": "timing",
                                                               "wraps16": wraps})


def _rtp(payload: bytes) -> tuple[int, int, int, int] | None:
    """(payload type, sequence number, timestamp, SSRC) of an RTP v2 packet, or None (not RTP, or RTCP)."""
    if len(payload) < 12 or payload[0] >> 6 != 2:
        return None
    pt = payload[1] & 0x7F
    if 72 <= pt <= 76:  # RTCP packet types 200..204 (SR, RR, SDES, BYE, APP) read as RTP
        return None
    cc = payload[0] & 0x0F
    if len(payload) < 12 + 4 * cc:
        return None
    seq = int.from_bytes(payload[2:4], "big")
    ts = int.from_bytes(payload[4:8], "big")
    ssrc = int.from_bytes(payload[8:12], "big")
    return pt, seq, ts, ssrc


def read_pcap(path: str | Path, ssrc: int | None = None, clock_rate: int | None = None) -> TimingTrace:
    """The RTP stream of a pcap/pcapng capture as a timing trace (see the module docstring).

    Raises:
        TraceFormatError: not a capture, no RTP in it, or no packet with the chosen SSRC.
    """
    p = Path(path)
    try:
        from scapy.error import Scapy_Exception
        from scapy.layers.inet import UDP
        from scapy.utils import PcapReader
    except ImportError as exc:
        from lossbench.extras import missing_extra

        raise missing_extra(exc, f"reading the pcap {p}") from None
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    streams: dict[int, list[tuple[int, int, float, int]]] = {}
    udp_packets = 0
    try:
        with PcapReader(str(p)) as reader:
            for pkt in reader:
                if UDP not in pkt:
                    continue
                udp_packets += 1
                r = _rtp(bytes(pkt[UDP].payload))
                if r is None:
                    continue
                pt, sq, stamp, s = r
                streams.setdefault(s, []).append((sq, stamp, float(pkt.time), pt))
    except (Scapy_Exception, EOFError, OSError, ValueError, TypeError) as exc:
        raise TraceFormatError(f"{p}: not a readable pcap/pcapng capture: {exc}") from None
    if not streams:
        raise TraceFormatError(f"{p}: no RTP packets in the capture ({udp_packets} UDP packets looked at)")
    sizes = {s: len(v) for s, v in streams.items()}
    if ssrc is None:
        ssrc = max(sizes, key=lambda s: (sizes[s], -s))
    elif ssrc not in streams:
        found = ", ".join(f"0x{s:08X} ({n} packets)" for s, n in sorted(sizes.items(), key=lambda kv: -kv[1]))
        raise TraceFormatError(f"{p}: no RTP packets with SSRC 0x{ssrc:08X}; the capture has {found}")
    rows = streams[ssrc]
    seq = _unwrap16(np.array([r[0] for r in rows]))
    raw_ts = np.array([r[1] for r in rows], dtype=np.int64)
    arr = np.array([r[2] for r in rows])
    # timestamps unwrap at 2^32 as sequence numbers do at 2^16
    d = np.diff(raw_ts)
    d = (d + 2**31) % 2**32 - 2**31
    ts = np.concatenate([[raw_ts[0]], raw_ts[0] + np.cumsum(d)]) if raw_ts.size else raw_ts
    order = np.argsort(seq, kind="stable")
    if clock_rate is None:
        step = np.diff(ts[order]) / np.maximum(np.diff(seq[order]), 1)
        spacing = np.diff(np.sort(arr))
        step, spacing = step[step > 0], spacing[spacing > 0]
        if step.size and spacing.size:
            est = float(np.median(step)) / float(np.median(spacing))
            clock_rate = min(STANDARD_CLOCKS, key=lambda c: abs(math.log(c / est)))
        else:
            clock_rate = 8000
    send = (ts - ts[order[0]]) / float(clock_rate)
    delay = arr - send
    send = send + float(np.min(delay))  # the fastest packet: delay 0 (the offset is unknown)
    meta = {"source": str(p), "format": "pcap", "ssrc": f"0x{ssrc:08X}", "clock_rate": int(clock_rate),
            "payload_type": int(rows[0][3]), "streams": len(streams)}
    return _assemble(seq, send, arr, str(p), meta)


def timing_stats(tt: TimingTrace) -> dict[str, float]:
    """Delay percentiles (ms, of the packets that arrived), the RFC 3550 interarrival jitter (ms: the running
    estimate J += (|D| - J) / 16 over the packets in arrival order, at its end, and its mean), duplicates and
    reordered arrivals."""
    got = ~tt.lost
    d = tt.delay_s[got] * 1e3
    out: dict[str, float] = {}
    for q in (50, 95, 99):
        out[f"delay_p{q}_ms"] = float(np.percentile(d, q)) if d.size else float("nan")
    out["delay_mean_ms"] = float(d.mean()) if d.size else float("nan")
    out["delay_max_ms"] = float(d.max()) if d.size else float("nan")
    idx = np.flatnonzero(got)
    idx = idx[np.argsort(tt.arrival_s[idx], kind="stable")]
    j, js = 0.0, []
    for a, b in zip(idx[:-1], idx[1:]):
        dd = (tt.arrival_s[b] - tt.arrival_s[a]) - (tt.send_s[b] - tt.send_s[a])
        j += (abs(dd) - j) / 16.0
        js.append(j)
    out["jitter_rfc3550_ms"] = 1e3 * j if js else float("nan")
    out["jitter_rfc3550_mean_ms"] = 1e3 * float(np.mean(js)) if js else float("nan")
    out["duplicates"] = float(tt.meta.get("duplicates", 0))
    out["reordered"] = float(tt.meta.get("reordered", 0))
    return out
