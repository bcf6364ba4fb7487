"""A user-space UDP relay that puts real RTP traffic through a lossbench channel in real time.

::

    sender --> [listen port] relay [out port] --> receiver
    sender <-- [listen port] relay [out port] <-- receiver      (RTCP, STUN, DTLS: unimpaired)

No root, no kernel module: two loopback UDP sockets and one thread. Datagrams are told apart by RFC 7983
(:mod:`lossbench.live.rtp`); only RTP media is impaired, and STUN, DTLS, RTCP and anything else pass at once.

**Fates keyed by packet, not by arrival.** Each media flow (an SSRC in one direction, numbered in the order the
flows appear) gets its own seeded draw of the channel (:class:`LiveChannel`): packet ``k`` of the flow, ``k`` being
its RTP sequence number unwrapped and counted from the flow's first, is lost or delayed by exactly what the
simulated channel did to packet ``k`` of a stream sent every ``packet_ms``. The same seed therefore drops the same
packets in every run, whatever the timing of the run. The draw uses the whole lossbench channel: every loss model
and trace, ``nr:``, delay and every jitter model, with a timing trace's own delays.

**Release.** A packet that survives is released at its arrival at the relay plus the channel's one-way delay for
its index, scheduled on the monotonic clock against that absolute deadline. Where the simulated channel kept two
packets in order, the relay keeps them in order too (a packet is never released before one sent earlier that the
channel delivered before it), so packets are reordered only where the channel reorders them.

**What it logs.** Every datagram's class, flow, index, size, arrival at the relay, intended and actual release
(or its loss); the run's lateness quantiles (actual - intended release) and the kernel's UDP receive-buffer drops
(``RcvbufErrors`` of ``/proc/net/snmp``, machine-wide, counted over the run). A run whose p99 lateness or drops
exceed the stated limits is flagged (:meth:`Relay.summary`). ``timing.csv`` (the format
:mod:`lossbench.traces.timing` reads) and a pcapng capture of what the receiver was sent come from the log.

Limits: the channel's fates are drawn for nominal send times (every ``packet_ms``) and a nominal packet size
(``packet_bytes``), so a bottleneck queue or an ``nr:`` link sees those, not the real sizes; a flow longer than
``max_seconds`` is forwarded unimpaired past that point (counted as ``beyond_plan`` and flagged).
"""

from __future__ import annotations

import errno
import heapq
import math
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.errors import ConfigError, LossbenchError
from lossbench.live.rtp import RTP, SeqUnwrapper, classify, parse_rtp

#: default flag limits: a run is flagged when the p99 release lateness or the kernel's receive-buffer drops exceed
LATENESS_P99_LIMIT_MS = 5.0
RCVBUF_DROPS_LIMIT = 0


class LiveError(LossbenchError):
    """Live mode could not run: a port in use, a client that failed, a channel that cannot run live."""


# --------------------------------------------------------------------------- the channel, drawn per flow


@dataclass(frozen=True)
class Fates:
    """What the channel does to packet k of one flow: lost, or its one-way delay; and its nominal arrival order."""

    lost: np.ndarray  # bool[n]
    delay_s: np.ndarray  # float[n], NaN where lost
    arrival_s: np.ndarray  # float[n]: nominal send + delay (NaN where lost): the channel's delivery order
    reorders: bool  # whether the channel delivered any packet before one sent earlier


@dataclass(frozen=True)
class LiveChannel:
    """A lossbench channel as the relay applies it in real time.

    Attributes:
        loss: a loss model spec (``gilbert:loss_rate=0.1,mean_burst=3``, ``wlan``, ``lossgen:loss_rate=0.1``,
            ``nr:...``, ``trace:file=PATH``: a timing trace replays its delays too) or ``none``.
        delay: propagation delay (``40ms``); jitter: a jitter spec (``normal:10ms``, ``spikes:300ms:0.2``...).
        seed: the draw's seed; flow ``f`` draws from ``default_rng([seed, f])``.
        packet_ms: the nominal packet interval the draw assumes; packet_bytes: the nominal size with headers.
        max_seconds: how much of each flow is drawn.
    """

    loss: str = "none"
    delay: str | None = None
    jitter: str | None = None
    seed: int = 0
    packet_ms: float = 20.0
    packet_bytes: int = 120
    max_seconds: float = 600.0
    _cache: dict[int, Fates] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.packet_ms > 0 and math.isfinite(self.packet_ms)):
            raise ConfigError(f"packet_ms must be > 0, got {self.packet_ms!r}")
        if self.packet_bytes < 1:
            raise ConfigError(f"packet_bytes must be >= 1, got {self.packet_bytes!r}")
        if not (0 < self.max_seconds <= 86400):
            raise ConfigError(f"max_seconds must be in (0, 86400], got {self.max_seconds!r}")
        self.build()  # a bad spec is an error now, not in the relay's thread

    @property
    def label(self) -> str:
        parts = [self.loss]
        if self.delay:
            parts.append(f"delay={self.delay}")
        if self.jitter and self.jitter != "none":
            parts.append(f"jitter={self.jitter}")
        return "|".join(parts)

    def build(self):
        from lossbench.netsim import Channel, Link, make_loss_model
        from lossbench.netsim.spec import parse_jitter, parse_seconds

        spec = (self.loss or "none").strip()
        if spec.startswith(("playout", "fixed:", "adaptive", "tsm", "speex")):
            raise LiveError(f"channel {spec!r} cannot run live: a playout buffer is the receiving client's own; "
                            f"give a loss model, a trace, --delay and --jitter")
        timing = model = None
        if spec.startswith("trace:"):
            from lossbench.specs import split_spec
            from lossbench.traces.formats import read_trace

            _, params = split_spec(spec)
            if set(params) - {"file"}:
                raise LiveError(f"channel {spec!r}: a live trace takes only file=PATH")
            tr = read_trace(str(params.get("file", "")))
            timing = tr.timing
            if timing is None:
                from lossbench.netsim import TraceReplay

                model = TraceReplay(tr)
        elif spec != "none":
            model = make_loss_model(spec)
        return Channel((Link(model, parse_seconds(self.delay) if self.delay else 0.0, parse_jitter(self.jitter),
                             timing=timing),))

    def max_delay_s(self, seconds: float, flow: int = 0) -> float:
        """The longest one-way delay the channel gives the flow's packets sent in its first ``seconds`` (plus 50
        packets): how long to wait for what is still in the channel (0 when all of them are lost)."""
        d = self.fates(flow).delay_s[: int(seconds * 1000.0 / self.packet_ms) + 50]
        return float(np.nanmax(d)) if np.isfinite(d).any() else 0.0

    def fates(self, flow: int) -> Fates:
        if flow not in self._cache:
            n = int(math.ceil(self.max_seconds * 1000.0 / self.packet_ms))
            send = np.arange(n) * self.packet_ms / 1000.0
            rec = self.build().transmit_times(send, np.full(n, self.packet_bytes),
                                              np.random.default_rng([int(self.seed), int(flow)]))
            arr = np.asarray(rec.arrival_time_s, float)
            lost = np.isnan(arr)
            got = arr[~lost]
            self._cache[flow] = Fates(lost, arr - send, arr, bool(got.size > 1 and np.any(np.diff(got) < 0)))
        return self._cache[flow]


# --------------------------------------------------------------------------- the relay


@dataclass
class PacketRecord:
    kind: str  # rtp, rtcp, stun, dtls, ...
    direction: str  # "fwd" (listen -> target) or "back"
    size: int
    recv_s: float  # at the relay, seconds from the relay's start
    intended_s: float  # NaN: lost in the channel
    released_s: float = math.nan  # NaN: lost, or not yet released when the relay stopped
    flow: int = -1  # media flows only
    index: int = 0  # the packet's index in its flow (unwrapped sequence number - the flow's first)
    seq: int = -1
    ssrc: int = -1
    dest: tuple[str, int] = ("", 0)
    src_port: int = 0
    data: bytes = b""


def udp_rcvbuf_errors() -> int | None:
    """The kernel's machine-wide count of UDP datagrams dropped for a full receive buffer (None: unreadable)."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return None
    rows = [ln.split() for ln in lines if ln.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("RcvbufErrors")])


def _bind(host: str, port: int, what: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((host, port))
    except OSError as e:
        s.close()
        why = "in use" if e.errno == errno.EADDRINUSE else e.strerror
        raise LiveError(f"relay: cannot bind the {what} port {host}:{port}: {why}") from None
    s.setblocking(False)
    return s


class Relay:
    """Forward UDP between a sender and a receiver through ``channel`` (see the module docstring).

    Args:
        channel: the channel media packets meet.
        target: where packets arriving on the listen port go (the receiver's address).
        listen_port: the port the sender sends to (0: any free port; see :attr:`listen_addr`).
        out_port: the port packets leave from towards the target (0: any free port).
        back_to: where packets from the target go (default: the last address that sent to the listen port).
        impair: ``both`` (media in either direction), ``forward`` (sender to receiver only) or ``none``.
        host: the loopback address to bind; live mode never binds anything else.
    """

    def __init__(self, channel: LiveChannel, target: tuple[str, int], listen_port: int = 0, out_port: int = 0,
                 back_to: tuple[str, int] | None = None, impair: str = "both", host: str = "127.0.0.1",
                 lateness_limit_ms: float = LATENESS_P99_LIMIT_MS, drops_limit: int = RCVBUF_DROPS_LIMIT) -> None:
        if impair not in ("both", "forward", "none"):
            raise ConfigError(f"impair must be one of both, forward, none; got {impair!r}")
        if not host.startswith("127."):
            raise ConfigError(f"the relay binds loopback addresses only (127.x.y.z), got {host!r}")
        self.channel = channel
        self.target = target
        self.back_to = back_to
        self.impair = impair
        self.host = host
        self.lateness_limit_ms = float(lateness_limit_ms)
        self.drops_limit = int(drops_limit)
        self._in = _bind(host, listen_port, "listen")
        try:
            self._out = _bind(host, out_port, "out")
        except LiveError:
            self._in.close()
            raise
        self.listen_addr: tuple[str, int] = self._in.getsockname()
        self.out_addr: tuple[str, int] = self._out.getsockname()
        self.records: list[PacketRecord] = []
        self._flows: dict[tuple[str, int], tuple[int, SeqUnwrapper, deque]] = {}
        self._heap: list[tuple[float, int, PacketRecord, socket.socket]] = []
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0
        self.wall0 = 0.0
        self.beyond_plan = 0
        self.unroutable = 0
        self.send_errors = 0
        self._rcvbuf0: int | None = None
        self._rcvbuf1: int | None = None
        self.error: BaseException | None = None
        self._peer: tuple[str, int] | None = None

    # ---- lifecycle
    def start(self) -> Relay:
        # draw the first flow's fates before any packet comes, so the first packets are not held up by the draw
        if self.impair != "none":
            self.channel.fates(0)
        self._rcvbuf0 = udp_rcvbuf_errors()
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self._thread = threading.Thread(target=self._loop, name="lossbench-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop after releasing what is due within ``drain_s`` seconds; close the sockets."""
        if drain_s > 0:
            end = time.monotonic() + drain_s
            while self._heap and time.monotonic() < end:
                time.sleep(0.005)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._rcvbuf1 = udp_rcvbuf_errors()
        for s in (self._in, self._out):
            s.close()

    def __getstate__(self) -> dict[str, Any]:
        """A stopped relay's log, for a relay that ran in another process (the Chromium client's namespace)."""
        if self._thread is not None and self._thread.is_alive():
            raise LiveError("relay: stop it before handing its log on")
        d = {k: v for k, v in self.__dict__.items() if k not in ("_in", "_out", "_thread", "_stop", "_heap")}
        d["_flows"] = {k: (f, None, None) for k, (f, _, _) in self._flows.items()}
        d["error"] = None if self.error is None else repr(self.error)
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._thread = None
        self._heap = []

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- the loop
    def _loop(self) -> None:
        try:
            socks = [self._in, self._out]
            while not self._stop.is_set():
                now = time.monotonic()
                heap = self._heap
                while heap and heap[0][0] <= now:
                    _, _, rec, sock = heapq.heappop(heap)
                    self._send(rec, sock)
                    now = time.monotonic()
                wait = 0.05 if not heap else min(0.05, max(0.0, heap[0][0] - now))
                ready, _, _ = select.select(socks, [], [], wait)
                for s in ready:
                    while True:
                        try:
                            data, src = s.recvfrom(65536)
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:  # ICMP port unreachable reported on a later read: nothing to forward
                            break
                        self._handle(data, src, s is self._in, time.monotonic())
        except BaseException as e:  # noqa: BLE001 - reported by summary() and the caller
            self.error = e

    def _send(self, rec: PacketRecord, sock: socket.socket) -> None:
        try:
            sock.sendto(rec.data, rec.dest)
            rec.released_s = time.monotonic() - self.t0
        except OSError:
            self.send_errors += 1

    def _handle(self, data: bytes, src: tuple[str, int], inbound: bool, now: float) -> None:
        dest: tuple[str, int] | None
        if inbound:
            self._peer = src
            direction, sock, dest = "fwd", self._out, self.target
        else:
            direction, sock = "back", self._in
            dest = self.back_to or self._peer
        kind = classify(data)
        rec = PacketRecord(kind, direction, len(data), now - self.t0, now - self.t0, data=data,
                           src_port=sock.getsockname()[1])
        self.records.append(rec)
        if dest is None:
            self.unroutable += 1
            rec.intended_s = math.nan
            return
        rec.dest = dest
        impaired = kind == RTP and (self.impair == "both" or (self.impair == "forward" and direction == "fwd"))
        if impaired:
            hdr = parse_rtp(data)
            if hdr is not None:
                self._impair(rec, hdr.ssrc, hdr.seq, direction, now)
                if math.isnan(rec.intended_s):
                    return
                if rec.intended_s + self.t0 > time.monotonic():
                    self._n += 1
                    heapq.heappush(self._heap, (rec.intended_s + self.t0, self._n, rec, sock))
                    return
        self._send(rec, sock)

    def _impair(self, rec: PacketRecord, ssrc: int, seq: int, direction: str, now: float) -> None:
        key = (direction, ssrc)
        if key not in self._flows:
            self._flows[key] = (len(self._flows), SeqUnwrapper(), deque(maxlen=512))
        flow, unwrap, recent = self._flows[key]
        k = unwrap.index(seq)
        rec.flow, rec.index, rec.seq, rec.ssrc = flow, k, seq, ssrc
        f = self.channel.fates(flow)
        n = f.lost.size
        if k >= n:
            self.beyond_plan += 1
            return  # forwarded at once
        kk = max(k, 0)
        if f.lost[kk]:
            rec.intended_s = math.nan
            return
        t = rec.recv_s + float(f.delay_s[kk])
        arr = float(f.arrival_s[kk])
        # keep the channel's order: never before an earlier packet the channel delivered before this one
        for j, a_j, t_j in recent:
            if j < k and a_j <= arr and t_j > t:
                t = t_j
        recent.append((k, arr, t))
        rec.intended_s = t

    # ---- results
    def media(self, flow: int = 0) -> list[PacketRecord]:
        return sorted((r for r in self.records if r.flow == flow), key=lambda r: (r.index, r.recv_s))

    def first_timestamp(self, flow: int = 0) -> int | None:
        """The RTP timestamp of the flow's first packet as the sender sent it (lost or not); None: no packet."""
        recs = self.media(flow)
        h = parse_rtp(recs[0].data) if recs else None
        return None if h is None else h.timestamp

    def timing_trace(self, flow: int = 0):
        """Flow ``flow`` as a :class:`~lossbench.traces.timing.TimingTrace`: per index from the flow's first
        packet, its arrival at the relay (send) and its release (arrival; NaN: lost). Indices never seen (lost
        before the relay) are filled as lost."""
        from lossbench.traces.timing import TimingTrace

        recs = self.media(flow)
        if not recs:
            raise LiveError(f"relay: no RTP packets in media flow {flow}")
        lo = min(r.index for r in recs)
        n = max(r.index for r in recs) - lo + 1
        send = np.full(n, np.nan)
        arr = np.full(n, np.nan)
        for r in recs:
            i = r.index - lo
            if math.isnan(send[i]):
                send[i] = r.recv_s
                arr[i] = r.released_s
        miss = np.isnan(send)
        if miss.any():
            idx = np.arange(n)
            send[miss] = np.interp(idx[miss], idx[~miss], send[~miss])
        send = np.maximum.accumulate(send)  # a packet the sender reordered keeps the line's order
        return TimingTrace(send, arr, {"source": "lossbench live relay", "ssrc": recs[0].ssrc})

    def write_timing(self, path: str | Path, flow: int = 0) -> Path:
        p = Path(path)
        p.write_bytes(self.timing_trace(flow).to_csv())
        return p

    def write_pcapng(self, path: str | Path) -> Path:
        """What the relay sent on, towards either side, as a pcapng capture (raw IPv4, loopback addresses, each
        packet at its actual release time)."""
        from lossbench.live.pcapng import write_pcapng

        pkts = []
        for r in self.records:
            if math.isnan(r.released_s):
                continue
            pkts.append((self.wall0 + r.released_s, (self.host, r.src_port), r.dest, r.data))
        pkts.sort(key=lambda x: x[0])
        return write_pcapng(path, pkts)

    def summary(self) -> dict[str, Any]:
        """The run's ``live_`` columns: what passed, what the channel dropped, release lateness, kernel drops,
        and whether the run is flagged (lateness p99 or receive-buffer drops over the limits)."""
        media = [r for r in self.records if r.flow >= 0]
        late = np.array([r.released_s - r.intended_s for r in media
                         if not math.isnan(r.released_s) and not math.isnan(r.intended_s)]) * 1e3
        dropped = sorted(r.index for r in media if r.flow == 0 and math.isnan(r.intended_s))
        kinds: dict[str, int] = {}
        for r in self.records:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        drops = (None if self._rcvbuf0 is None or self._rcvbuf1 is None else self._rcvbuf1 - self._rcvbuf0)

        def q(p: float) -> float:
            return float(np.percentile(late, p)) if late.size else math.nan

        reasons = []
        if late.size and q(99) > self.lateness_limit_ms:
            reasons.append(f"release lateness p99 {q(99):.2f} ms > {self.lateness_limit_ms:g} ms")
        if drops is not None and drops > self.drops_limit:
            reasons.append(f"{drops} UDP receive-buffer drops > {self.drops_limit}")
        if self.beyond_plan:
            reasons.append(f"{self.beyond_plan} packets past the channel's {self.channel.max_seconds:g} s draw")
        if self.send_errors:
            reasons.append(f"{self.send_errors} send errors")
        if self.error is not None:
            reasons.append(f"relay thread failed: {self.error!r}")
        n_media = len([r for r in media if r.flow == 0])
        return {
            "live_channel": self.channel.label,
            "live_packets": n_media,
            "live_flows": len(self._flows),
            "live_dropped": len(dropped),
            "live_dropped_index": dropped,
            "live_loss": len(dropped) / n_media if n_media else math.nan,
            "live_passed_unimpaired": sum(v for k, v in kinds.items() if k != RTP),
            "live_kinds": ",".join(f"{k}={v}" for k, v in sorted(kinds.items())),
            "live_lateness_p50_ms": q(50),
            "live_lateness_p99_ms": q(99),
            "live_lateness_max_ms": float(late.max()) if late.size else math.nan,
            "live_rcvbuf_drops": drops,
            "live_beyond_plan": self.beyond_plan,
            "live_unroutable": self.unroutable,
            "live_flagged": bool(reasons),
            "live_flag": "; ".join(reasons),
        }
