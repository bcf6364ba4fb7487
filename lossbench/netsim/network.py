"""A discrete-event (simpy) simulation of a packet path.

::

    sender --> link 1 --> link 2 --> ... --> receiver (playout buffer)
                 |  loss model: random drop
                 |  bottleneck: FIFO drop-tail queue at R bit/s, shared with
                 |              cross traffic (Poisson, on-off)
                 |  propagation delay + jitter (may reorder)

The sender emits each packet of an :class:`~lossbench.core.EncodedStream` at
its send time. Each link first asks its loss model whether the packet is
dropped, then queues it at its bottleneck (if any): a packet finding the
queue full is dropped (congestion loss), otherwise it leaves after the
packets ahead of it and its own serialisation time. Propagation delay and
jitter follow. The receiver records arrivals; its playout buffer fixes each
packet's deadline, and a packet that arrives after it is late.

Bottleneck service is computed at enqueue time (a FIFO server's departure is
``max(now, previous departure) + size / rate``), so a packet costs one event
per link, and cross traffic costs one event per cross packet.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import simpy

from lossbench.core import EncodedStream, Reception
from lossbench.errors import ConfigError
from lossbench.netsim.models import LossModel, LossProcess
from lossbench.playout.speex import SpeexPlayout
from lossbench.playout.tsm import TsmPlayout

if TYPE_CHECKING:
    from lossbench.playout.plan import PlayoutPlan

#: drop reasons recorded per packet in ``Reception.meta["drop_reason"]``
ARRIVED, LINK_LOSS, QUEUE_DROP = 0, 1, 2


# --------------------------------------------------------------------------- jitter


@dataclass(frozen=True)
class Jitter:
    """Per-packet extra delay.

    Attributes:
        kind: one of
            - "none";
            - independent per packet: "normal" (std ``scale_s``, centred on zero), "uniform" (on [0, scale_s]),
              "exponential" (mean ``scale_s``), "pareto" (mean ``scale_s``, tail index ``shape`` > 1),
              "lognormal" (median ``scale_s``, log-standard deviation ``shape``: heavy-tailed);
            - correlated: "ar1", a first-order autoregressive delay in packet order,
              d[i] = shape * d[i-1] + sqrt(1 - shape^2) * e[i] with e ~ N(0, scale_s): stationary std ``scale_s``,
              lag-one correlation ``shape`` in [0, 1), centred on zero like "normal" (netem's ``delay ...
              correlation``; with it, packets overtake each other where the delay falls faster than the
              spacing);
            - spikes in time: "spikes", Poisson delay spikes at ``shape`` per second, each holding the packets sent
              during its ``scale_s`` and releasing them together at its end (a packet sent at t inside a spike
              ending at E waits E - t: Wi-Fi power save, a cellular handover; overlapping spikes hold the link
              as one); "periodic", the same spikes every
              ``shape`` seconds, the first at a uniformly drawn phase.
        scale_s: the distribution's scale in seconds (for spikes: each spike's length).
        shape: the second parameter (see ``kind``).

    The total delay of a packet is never below zero. Every draw comes from the generator passed in, so the
    jitter is seeded with the channel.
    """

    kind: str = "none"
    scale_s: float = 0.0
    shape: float = 2.5

    KINDS = ("none", "normal", "uniform", "exponential", "pareto", "lognormal", "ar1", "spikes", "periodic")
    #: the second parameter's default and meaning, by kind
    SHAPES = {"pareto": (2.5, "tail index > 1"), "lognormal": (0.6, "log-standard deviation > 0"),
              "ar1": (0.9, "lag-one correlation in [0, 1)"), "spikes": (0.2, "spikes per second > 0"),
              "periodic": (5.0, "period in seconds > 0")}

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ConfigError(f"unknown jitter kind {self.kind!r}; valid kinds: {', '.join(self.KINDS)}")
        if not (self.scale_s >= 0 and math.isfinite(self.scale_s)):
            raise ConfigError(f"jitter scale must be a finite number of seconds >= 0, got {self.scale_s!r}")
        if not math.isfinite(self.shape):
            raise ConfigError(f"{self.kind} jitter: its second parameter must be finite, got {self.shape!r}")
        ok = {"pareto": self.shape > 1, "lognormal": self.shape > 0, "ar1": 0 <= self.shape < 1,
              "spikes": self.shape > 0, "periodic": self.shape > 0}.get(self.kind, True)
        if not ok:
            raise ConfigError(f"{self.kind} jitter needs {self.SHAPES[self.kind][1]}, got {self.shape!r}")
        if self.kind == "periodic" and self.scale_s >= self.shape:
            raise ConfigError(f"periodic jitter: spikes of {self.scale_s} s every {self.shape} s would never end")

    def draw(self, n: int, rng: np.random.Generator, send_times_s: np.ndarray | None = None) -> np.ndarray:
        """``n`` extra delays in seconds, for packets sent at ``send_times_s`` (needed by the spike kinds; the
        others depend on packet order only)."""
        s = self.scale_s
        if self.kind == "none" or s == 0 or n == 0:
            return np.zeros(n)
        if self.kind == "normal":
            return rng.normal(0.0, s, n)
        if self.kind == "uniform":
            return rng.uniform(0.0, s, n)
        if self.kind == "exponential":
            return rng.exponential(s, n)
        if self.kind == "pareto":  # NumPy's pareto is Lomax (Pareto II from 0), mean 1 / (a - 1): scaled to mean s
            a = self.shape
            return rng.pareto(a, n) * s * (a - 1)
        if self.kind == "lognormal":
            return s * np.exp(self.shape * rng.standard_normal(n))
        if self.kind == "ar1":
            from scipy.signal import lfilter

            rho = self.shape
            e = rng.normal(0.0, s, n) * math.sqrt(1 - rho * rho)
            e[0] = rng.normal(0.0, s)  # start in the stationary distribution
            return lfilter([1.0], [1.0, -rho], e)
        if send_times_s is None:
            raise ConfigError(f"{self.kind} jitter needs the packets' send times")
        t = np.asarray(send_times_s, float)
        horizon = float(t[-1]) + s if t.size else 0.0
        if self.kind == "spikes":
            k = rng.poisson(self.shape * horizon)
            starts = np.sort(rng.uniform(0.0, horizon, k))
        else:
            starts = np.arange(rng.uniform(0.0, self.shape), horizon, self.shape)
        out = np.zeros(n)
        if not starts.size:
            return out
        # overlapping spikes block the link as one: merge them, each merged spike ending at its latest end
        ends = starts + s
        reach = np.maximum.accumulate(ends)
        group = np.cumsum(np.r_[True, starts[1:] > reach[:-1]]) - 1
        group_end = np.maximum.reduceat(ends, np.flatnonzero(np.r_[True, np.diff(group) > 0]))
        # the latest spike started at or before each send time; held when the send is before its group's end
        j = np.searchsorted(starts, t, side="right") - 1
        end = np.where(j >= 0, group_end[group[np.clip(j, 0, None)]], -np.inf)
        inside = t < end
        out[inside] = end[inside] - t[inside]
        return out


# --------------------------------------------------------------------------- cross traffic


@dataclass(frozen=True)
class PoissonTraffic:
    """Cross traffic with exponential inter-arrival times."""

    rate_pps: float
    size_bytes: int = 1200

    def __post_init__(self) -> None:
        if not self.rate_pps > 0:
            raise ConfigError(f"Poisson cross traffic needs rate_pps > 0, got {self.rate_pps!r}")
        if not self.size_bytes > 0:
            raise ConfigError(f"cross-traffic packet size must be > 0 bytes, got {self.size_bytes!r}")

    def run(self, env: simpy.Environment, queue: Bottleneck, rng: np.random.Generator, until_s: float):
        mean = 1.0 / self.rate_pps
        while True:
            gaps = rng.exponential(mean, 256)
            for g in gaps:
                yield env.timeout(g)
                if env.now > until_s:
                    return
                queue.enqueue(env.now, self.size_bytes, cross=True)


@dataclass(frozen=True)
class OnOffTraffic:
    """Bursty cross traffic: exponential on/off periods, constant rate while on."""

    on_mean_s: float
    off_mean_s: float
    rate_pps: float
    size_bytes: int = 1200

    def __post_init__(self) -> None:
        for k in ("on_mean_s", "off_mean_s", "rate_pps"):
            if not getattr(self, k) > 0:
                raise ConfigError(f"on-off cross traffic needs {k} > 0, got {getattr(self, k)!r}")
        if not self.size_bytes > 0:
            raise ConfigError(f"cross-traffic packet size must be > 0 bytes, got {self.size_bytes!r}")

    def run(self, env: simpy.Environment, queue: Bottleneck, rng: np.random.Generator, until_s: float):
        gap = 1.0 / self.rate_pps
        while env.now <= until_s:
            yield env.timeout(rng.exponential(self.off_mean_s))
            end = env.now + rng.exponential(self.on_mean_s)
            while env.now < end:
                if env.now > until_s:
                    return
                queue.enqueue(env.now, self.size_bytes, cross=True)
                yield env.timeout(gap)


CrossTraffic = PoissonTraffic | OnOffTraffic


# --------------------------------------------------------------------------- bottleneck


@dataclass(frozen=True)
class BottleneckConfig:
    """A FIFO drop-tail queue served at ``rate_bps``.

    Attributes:
        rate_bps: service rate in bit/s.
        queue_packets: capacity in packets (including the one in service).
        queue_bytes: optional capacity in bytes (both limits apply).
        cross_traffic: sources sharing the queue.
    """

    rate_bps: float
    queue_packets: int = 50
    queue_bytes: int | None = None
    cross_traffic: tuple[CrossTraffic, ...] = ()

    def __post_init__(self) -> None:
        if not self.rate_bps > 0:
            raise ConfigError(f"bottleneck rate must be > 0 bit/s, got {self.rate_bps!r}")
        if int(self.queue_packets) != self.queue_packets or self.queue_packets < 1:
            raise ConfigError(f"bottleneck queue must hold >= 1 packet, got {self.queue_packets!r}")
        if self.queue_bytes is not None and self.queue_bytes < 1:
            raise ConfigError(f"bottleneck queue_bytes must be >= 1, got {self.queue_bytes!r}")
        object.__setattr__(self, "cross_traffic", tuple(self.cross_traffic))


class Bottleneck:
    """Run-time state of a :class:`BottleneckConfig` queue."""

    def __init__(self, cfg: BottleneckConfig) -> None:
        self.cfg = cfg
        self._departures: deque[tuple[float, int]] = deque()  # (departure time, size)
        self._bytes = 0
        self._last_departure = 0.0
        self.drops = 0
        self.cross_sent = 0
        self.cross_drops = 0

    def enqueue(self, now: float, size_bytes: int, cross: bool = False) -> float | None:
        """Queue a packet arriving at ``now``; its departure time, or None if dropped."""
        dq = self._departures
        while dq and dq[0][0] <= now:
            self._bytes -= dq.popleft()[1]
        cfg = self.cfg
        if cross:
            self.cross_sent += 1
        if len(dq) >= cfg.queue_packets or (cfg.queue_bytes is not None and self._bytes + size_bytes > cfg.queue_bytes):
            if cross:
                self.cross_drops += 1
            else:
                self.drops += 1
            return None
        dep = max(now, self._last_departure) + size_bytes * 8.0 / cfg.rate_bps
        self._last_departure = dep
        dq.append((dep, size_bytes))
        self._bytes += size_bytes
        return dep


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class Link:
    """One hop: random loss, optional bottleneck queue, propagation delay and jitter.

    ``timing`` replays a :class:`~lossbench.traces.timing.TimingTrace` (a timing CSV, a pcap capture): packet i
    of the stream takes the loss and the one-way delay of the trace's packet ``i mod len(trace)``, on top of
    ``delay_s`` and the jitter.
    """

    loss: LossModel | None = None
    delay_s: float = 0.0
    jitter: Jitter = field(default_factory=Jitter)
    bottleneck: BottleneckConfig | None = None
    timing: Any = None

    def __post_init__(self) -> None:
        if not (self.delay_s >= 0 and math.isfinite(self.delay_s)):
            raise ConfigError(f"link delay must be a finite number of seconds >= 0, got {self.delay_s!r}")
        if self.timing is not None and len(self.timing) == 0:
            raise ConfigError("link timing replay: the timing trace is empty")


# --------------------------------------------------------------------------- playout


@dataclass(frozen=True)
class FixedPlayout:
    """A fixed jitter buffer.

    The playout clock starts when the first packet arrives, ``delay_s``
    later; packet i is due ``send_i - send_first`` after that.
    """

    delay_s: float = 0.06

    def __post_init__(self) -> None:
        if not (self.delay_s >= 0 and math.isfinite(self.delay_s)):
            raise ConfigError(f"playout delay must be a finite number of seconds >= 0, got {self.delay_s!r}")


@dataclass(frozen=True)
class AdaptivePlayout:
    """An adaptive jitter buffer (Ramjee et al., 1994, algorithm 1).

    On each arrival the network delay n_i = a_i - s_i updates the estimates
    d = alpha d + (1 - alpha) n_i and v = alpha v + (1 - alpha) |d - n_i|.
    The playout delay is re-set to ``max(min_delay_s, d + safety * v)`` at
    the start of every ``adapt_every_s`` of media (a stand-in for talkspurt
    boundaries, where real receivers adapt) and holds for that window; the
    first window uses the first packet's delay plus ``initial_delay_s``.
    """

    alpha: float = 0.998002
    safety: float = 4.0
    adapt_every_s: float = 1.0
    initial_delay_s: float = 0.04
    min_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError(f"adaptive playout alpha must lie in [0, 1), got {self.alpha!r}")
        if not self.adapt_every_s > 0:
            raise ConfigError(f"adapt_every_s must be > 0, got {self.adapt_every_s!r}")
        if self.safety < 0 or self.initial_delay_s < 0 or self.min_delay_s < 0:
            raise ConfigError("adaptive playout: safety, initial_delay_s and min_delay_s must be >= 0")


#: ``TsmPlayout`` (a NetEq-style buffer that time-stretches, :mod:`lossbench.playout.tsm`) and ``SpeexPlayout``
#: (speexdsp's, :mod:`lossbench.playout.speex`) decide after the simulation from the arrival times; their
#: :class:`~lossbench.playout.plan.PlayoutPlan` is ``Reception.playout_plan``
Playout = FixedPlayout | AdaptivePlayout | TsmPlayout | SpeexPlayout


@dataclass(frozen=True)
class FrameLayout:
    """Which codec frames each packet carries, for the buffers that play frame by frame (tsm, speex)."""

    spans: np.ndarray  # int[n, 2]: first frame, last frame + 1 (-1, -1: none)
    primary: np.ndarray  # bool[n]
    n_frames: int
    frame_s: float
    sample_rate_hz: int = 16000
    quiet: np.ndarray | None = None  # bool[n_frames]: frames tsm may time-scale (None: all)

    @classmethod
    def of(cls, stream: EncodedStream, audio: np.ndarray | None = None, quiet_db: float = 30.0) -> FrameLayout:
        """The layout of ``stream``; with ``audio`` (the sent clip at the stream's rate), which frames are quiet."""
        from lossbench.playout.plan import frame_layout
        from lossbench.playout.tsm import quiet_frames

        spans, primary, n = frame_layout(stream.packets)
        quiet = None
        if audio is not None:
            quiet = quiet_frames(audio, int(round(stream.frame_duration_s * stream.sample_rate_hz)), n, quiet_db)
        return cls(spans, primary, n, float(stream.frame_duration_s), int(stream.sample_rate_hz), quiet)

    @classmethod
    def one_per_packet(cls, send_times_s: np.ndarray) -> FrameLayout:
        """Packet i carries frame i; the frame lasts the median send spacing (20 ms for a single packet)."""
        n = int(np.asarray(send_times_s).size)
        d = np.diff(np.asarray(send_times_s, float))
        frame = float(np.median(d)) if d.size and np.median(d) > 0 else 0.02
        return cls(np.stack([np.arange(n), np.arange(n) + 1], axis=1), np.ones(n, bool), n, frame)


# --------------------------------------------------------------------------- the channel


@dataclass(frozen=True)
class Channel:
    """A path of links and a receiver playout buffer.

    ``transmit(stream, rng)`` runs one simpy simulation and returns the
    per-packet :class:`~lossbench.core.Reception`.
    """

    links: tuple[Link, ...] = (Link(),)
    playout: Playout | None = None
    name: str = "channel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "links", tuple(self.links))
        if not self.links:
            raise ConfigError("a channel needs at least one link")

    @classmethod
    def from_loss(cls, loss: LossModel | None, **kw: Any) -> Channel:
        """A single lossy link with optional delay/jitter/playout keyword arguments."""
        link_kw = {k: kw.pop(k) for k in ("delay_s", "jitter", "bottleneck") if k in kw}
        return cls(links=(Link(loss=loss, **link_kw),), **kw)

    def transmit(self, stream: EncodedStream, rng: np.random.Generator, log: list | None = None,
                 audio: np.ndarray | None = None) -> Reception:
        """Simulate sending ``stream``; see :meth:`transmit_times`. ``audio``: the clip the stream encodes (at its
        rate), from which the ``tsm`` buffer learns which frames it may time-scale inaudibly."""
        layout = None
        if isinstance(self.playout, (TsmPlayout, SpeexPlayout)):
            layout = FrameLayout.of(stream, audio, getattr(self.playout, "quiet_db", 30.0))
        return self.transmit_times(stream.send_times_s(), stream.sizes_bytes(with_header=True), rng, log=log,
                                   layout=layout)

    def transmit_times(
        self,
        send_times_s: np.ndarray,
        sizes_bytes: np.ndarray | Sequence[int],
        rng: np.random.Generator,
        log: list | None = None,
        layout: FrameLayout | None = None,
    ) -> Reception:
        """Simulate packets with the given send times and on-the-wire sizes.

        Args:
            send_times_s: float[n], non-decreasing send times.
            sizes_bytes: int[n], packet sizes including headers.
            rng: drives every random choice (loss, jitter, cross traffic).
            log: if given, ``(event, seq, time_s)`` tuples are appended:
                "send", "drop-link<i>", "drop-queue<i>", "arrive", and one
                ("playout-delay", window, time) per adaptive window.
            layout: the frames each packet carries (tsm and speex playout); by default packet i is frame i.
        """
        sim = _Simulation(self, np.asarray(send_times_s, float), np.asarray(sizes_bytes), rng, log)
        sim.layout = layout
        return sim.run()


class _Simulation:
    def __init__(self, ch: Channel, send: np.ndarray, sizes: np.ndarray, rng: np.random.Generator, log: list | None):
        n = send.shape[0]
        if sizes.shape[0] != n:
            raise ConfigError(f"{n} send times but {sizes.shape[0]} packet sizes")
        if n and np.any(np.diff(send) < 0):
            raise ConfigError("packet send times must be non-decreasing")
        self.ch = ch
        self.n = n
        self.send = send
        self.sizes = sizes.tolist()
        self.rng = rng
        self.log = log
        self.env = simpy.Environment()
        self.arrival = np.full(n, np.nan)
        self.reason = np.zeros(n, dtype=np.int8)
        self.drop_link = np.full(n, -1, dtype=np.int8)
        self.n_links = len(ch.links)
        # a link model that decides per packet from its size and send time (nr:) runs once, vectorised, here:
        # its losses and its extra (HARQ) delays, like the jitter's, are fixed before the events run
        self.outcomes = [lk.loss.outcomes(send, sizes, rng) if lk.loss is not None and hasattr(lk.loss, "outcomes")
                         else None for lk in ch.links]
        self.loss: list[LossProcess | None] = [
            (lk.loss.process(rng) if lk.loss is not None and o is None else None)
            for lk, o in zip(ch.links, self.outcomes)
        ]
        # each link's propagation + jitter, drawn up front (vectorised), plus what is fixed per packet before the
        # events run: a replayed timing trace's delay and loss, a link model's (nr:) HARQ delay and loss
        self.extra: list[list[float]] = []
        self.fixed_lost: list[list[bool] | None] = []
        for lk, o in zip(ch.links, self.outcomes):
            extra = lk.delay_s + lk.jitter.draw(n, rng, send)
            lost = None
            if lk.timing is not None:
                idx = np.arange(n) % len(lk.timing)
                extra = extra + np.nan_to_num(lk.timing.delay_s[idx])  # a lost packet's NaN delay: unused
                lost = lk.timing.lost[idx]
            if o is not None:
                extra = extra + o.delay_s
                lost = o.lost if lost is None else lost | o.lost
            self.extra.append(extra.tolist())
            self.fixed_lost.append(None if lost is None else lost.tolist())
        self.queues = [Bottleneck(lk.bottleneck) if lk.bottleneck is not None else None for lk in ch.links]
        self.queue_delay = np.zeros(n)
        self.layout: FrameLayout | None = None
        # adaptive playout state
        self.d_est: float | None = None
        self.v_est = 0.0

    # each hop: decide the packet's fate at link ``k`` at the current time
    def _enter(self, i: int, k: int) -> None:
        env = self.env
        now = env.now
        proc = self.loss[k]
        fl = self.fixed_lost[k]
        if (proc is not None and proc.step(now)) or (fl is not None and fl[i]):
            self.reason[i] = LINK_LOSS
            self.drop_link[i] = k
            if self.log is not None:
                self.log.append((f"drop-link{k}", i, now))
            return
        delay = self.extra[k][i]
        q = self.queues[k]
        if q is not None:
            dep = q.enqueue(now, self.sizes[i])
            if dep is None:
                self.reason[i] = QUEUE_DROP
                self.drop_link[i] = k
                if self.log is not None:
                    self.log.append((f"drop-queue{k}", i, now))
                return
            self.queue_delay[i] += dep - now
            delay += dep - now
        ev = env.timeout(max(0.0, delay), value=(i, k + 1))
        ev.callbacks.append(self._hop)

    def _hop(self, ev: simpy.events.Event) -> None:
        i, k = cast(tuple[int, int], ev.value)
        if k < self.n_links:
            self._enter(i, k)
        else:
            self._arrive(i)

    def _arrive(self, i: int) -> None:
        now = self.env.now
        self.arrival[i] = now
        if self.log is not None:
            self.log.append(("arrive", i, now))
        pl = self.ch.playout
        if isinstance(pl, AdaptivePlayout):
            nd = now - self.send[i]
            if self.d_est is None:
                self.d_est = nd
                self.first_arrival.succeed()
            else:
                a = pl.alpha
                self.d_est = a * self.d_est + (1 - a) * nd
                self.v_est = a * self.v_est + (1 - a) * abs(self.d_est - nd)

    def _sender(self):
        env = self.env
        send = self.send.tolist()
        for i, t in enumerate(send):
            if t > env.now:
                yield env.timeout(t - env.now)
            if self.log is not None:
                self.log.append(("send", i, env.now))
            self._enter(i, 0)

    def _adaptive(self, pl: AdaptivePlayout, first_send: np.ndarray, delays: list[float]):
        env = self.env
        yield self.first_arrival  # the playout clock starts with the first arrival
        assert self.d_est is not None
        p = self.d_est + pl.initial_delay_s
        delays[0] = p
        if self.log is not None:
            self.log.append(("playout-delay", 0, env.now))
        for w in range(1, len(first_send)):
            start = first_send[w] + p  # when window w starts playing under the current delay
            if start > env.now:
                yield env.timeout(start - env.now)
            p = max(pl.min_delay_s, self.d_est + pl.safety * self.v_est)
            delays[w] = p
            if self.log is not None:
                self.log.append(("playout-delay", w, env.now))

    def run(self) -> Reception:
        env, n, ch = self.env, self.n, self.ch
        if n == 0:
            e = np.zeros(0)
            return Reception(np.zeros(0, bool), e, e, meta={})
        horizon = float(self.send[-1]) + 60.0
        self.first_arrival = env.event()
        env.process(self._sender())
        for k, lk in enumerate(ch.links):
            queue = self.queues[k]
            if lk.bottleneck is not None and queue is not None:
                for src in lk.bottleneck.cross_traffic:
                    env.process(src.run(env, queue, self.rng, until_s=float(self.send[-1]) + 1.0))
        pl = ch.playout
        deadline = np.full(n, np.inf)
        meta: dict[str, Any] = {}
        plan: PlayoutPlan | None = None
        if isinstance(pl, AdaptivePlayout):
            t0 = float(self.send[0])
            window_of = np.floor((self.send - t0) / pl.adapt_every_s + 1e-9).astype(np.int64)
            nw = int(window_of[-1]) + 1
            first_send = t0 + np.arange(nw) * pl.adapt_every_s
            delays: list[float] = [math.nan] * nw
            env.process(self._adaptive(pl, first_send, delays))
            env.run(until=horizon)
            dl = np.asarray(delays)
            # windows never reached (nothing arrived) keep no deadline
            deadline = np.where(np.isnan(dl[window_of]), np.inf, self.send + dl[window_of])
            meta["playout_delay_s"] = dl
        else:
            env.run(until=horizon)
            if isinstance(pl, (TsmPlayout, SpeexPlayout)):
                lay = self.layout or FrameLayout.one_per_packet(self.send)
                if lay.spans.shape[0] != n:
                    raise ConfigError(f"frame layout has {lay.spans.shape[0]} packets, the stream {n}")
                if isinstance(pl, TsmPlayout):
                    from lossbench.playout.tsm import plan_tsm

                    plan, deadline = plan_tsm(pl, self.send, self.arrival, lay.spans, lay.primary, lay.n_frames,
                                              lay.frame_s, lay.quiet)
                else:
                    from lossbench.playout.speex import plan_speex

                    plan, deadline = plan_speex(pl, self.send, self.arrival, lay.spans, lay.primary, lay.n_frames,
                                                lay.frame_s, lay.sample_rate_hz)
            elif isinstance(pl, FixedPlayout):
                got = ~np.isnan(self.arrival)
                if got.any():
                    f = int(np.nanargmin(self.arrival))
                    base = self.arrival[f] + pl.delay_s - self.send[f]
                    deadline = self.send + base
                    meta["playout_delay_s"] = np.array([base])
        arrived = ~np.isnan(self.arrival)
        meta["drop_reason"] = self.reason
        meta["drop_link"] = self.drop_link
        meta["queue_delay_s"] = self.queue_delay
        for k, o in enumerate(self.outcomes):
            if o is not None:  # what the radio link did, per packet
                meta[f"link{k}_outcome"] = o
        meta["link_losses"] = int((self.reason == LINK_LOSS).sum())
        meta["queue_drops"] = int((self.reason == QUEUE_DROP).sum())
        qs = [q for q in self.queues if q is not None]
        if qs:
            meta["cross_sent"] = sum(q.cross_sent for q in qs)
            meta["cross_drops"] = sum(q.cross_drops for q in qs)
        return Reception(arrived, self.arrival, deadline, meta=meta, playout_plan=plan)
