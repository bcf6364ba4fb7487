"""Shared data types. No heavy imports here: numpy only.

Units are in field names (``_s`` seconds, ``_hz`` hertz, ``_kbps`` kilobits per
second). All types are frozen dataclasses; array fields are validated and
made read-only on construction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lossbench.errors import AudioError, ConfigError

if TYPE_CHECKING:
    from lossbench.playout.plan import PlayoutPlan

#: Bytes of RTP (12) + UDP (8) + IPv4 (20) headers carried by each packet.
DEFAULT_HEADER_BYTES = 40


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only copy, so a frozen dataclass really is frozen."""
    if not a.flags.writeable and a.flags.c_contiguous:
        return a
    a = np.array(a, order="C")
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Clip:
    """An audio clip, mono unless asked for stereo.

    Attributes:
        id: stable identifier (file stem or corpus key).
        samples: float32[n] in [-1, 1] (mono), or float32[n, 2] (stereo: only where a sweep asks for it,
            ``stereo = true``; a codec that codes two channels gets them, every other gets the mean).
        sample_rate_hz: sampling rate of ``samples``.
        meta: free-form provenance (source path, original rate, ...).
    """

    id: str
    samples: np.ndarray
    sample_rate_hz: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = np.asarray(self.samples)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if not (s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 2)):
            raise AudioError(f"clip {self.id!r}: samples must be 1-D (mono) or n x 2 (stereo), got shape {s.shape}")
        if s.size == 0:
            raise AudioError(f"clip {self.id!r} is empty")
        if int(self.sample_rate_hz) <= 0:
            raise AudioError(f"clip {self.id!r}: sample rate must be > 0, got {self.sample_rate_hz}")
        object.__setattr__(self, "samples", _readonly(s.astype(np.float32, copy=False)))
        object.__setattr__(self, "sample_rate_hz", int(self.sample_rate_hz))

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    def mono(self) -> Clip:
        """This clip as one channel (the mean of a stereo pair; itself when mono)."""
        if self.channels == 1:
            return self
        return Clip(self.id, self.samples.mean(axis=1), self.sample_rate_hz, meta={**self.meta, "mixed_down": True})

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz


class PacketKind(enum.StrEnum):
    """What a packet carries."""

    PRIMARY = "primary"
    REDUNDANCY = "redundancy"  # FEC copies / parity


@dataclass(frozen=True, eq=False)
class Packet:
    """One packet of an encoded stream.

    Attributes:
        seq: sequence number, 0-based and dense within its stream.
        send_time_s: when the sender emits it.
        payload: the bytes a network would carry (no RTP/UDP/IP header).
        frames: indices of the codec frames whose primary data it carries.
        kind: primary, redundancy or side information.
    """

    seq: int
    send_time_s: float
    payload: bytes
    frames: range
    kind: PacketKind = PacketKind.PRIMARY

    @property
    def size_bytes(self) -> int:
        return len(self.payload)


@dataclass(frozen=True, eq=False)
class EncodedStream:
    """The packets a codec produced for one clip.

    Attributes:
        codec: registered codec name.
        config: codec configuration as plain values (for result tables).
        sample_rate_hz: rate of the decoded audio.
        num_samples: length of the decoded audio, in samples.
        frame_duration_s: duration of one codec frame.
        packets: the packets in sequence order.
        header_bytes: per-packet network header overhead counted in
            ``bitrate_kbps`` (RTP/UDP/IPv4 = 40 bytes by default).
        meta: codec-specific facts about the stream (e.g. whether LBRR was present).
    """

    codec: str
    config: dict[str, Any]
    sample_rate_hz: int
    num_samples: int
    frame_duration_s: float
    packets: tuple[Packet, ...]
    header_bytes: int = DEFAULT_HEADER_BYTES
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "packets", tuple(self.packets))
        for i, p in enumerate(self.packets):
            if p.seq != i:
                raise ConfigError(f"packet sequence numbers must be 0..n-1 in order; packet {i} has seq {p.seq}")
        if self.header_bytes < 0:
            raise ConfigError(f"header_bytes must be >= 0, got {self.header_bytes}")

    @property
    def num_packets(self) -> int:
        return len(self.packets)

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz

    @property
    def payload_bytes(self) -> int:
        return sum(len(p.payload) for p in self.packets)

    def payload_bytes_of(self, kind: PacketKind) -> int:
        return sum(len(p.payload) for p in self.packets if p.kind == kind)

    @property
    def payload_kbps(self) -> float:
        """Bitrate of the payloads alone (what the codec produced)."""
        return 8.0 * self.payload_bytes / self.duration_s / 1000.0

    @property
    def header_kbps(self) -> float:
        """Bitrate of the per-packet network headers."""
        return 8.0 * self.header_bytes * self.num_packets / self.duration_s / 1000.0

    @property
    def bitrate_kbps(self) -> float:
        """Total bitrate on the wire: payloads plus per-packet headers."""
        return self.payload_kbps + self.header_kbps

    def send_times_s(self) -> np.ndarray:
        return np.fromiter((p.send_time_s for p in self.packets), dtype=np.float64, count=self.num_packets)

    def sizes_bytes(self, with_header: bool = True) -> np.ndarray:
        extra = self.header_bytes if with_header else 0
        return np.fromiter((len(p.payload) + extra for p in self.packets), dtype=np.int64, count=self.num_packets)


@dataclass(frozen=True, eq=False)
class LossTrace:
    """A per-slot loss pattern, independent of any codec.

    Attributes:
        lost: bool[n], True where the slot's packet is lost.
        slot_s: duration of one slot (20 ms for the PLC Challenge traces).
        meta: provenance (generating model, parameters, seed, source file).
        timing: a :class:`~lossbench.traces.timing.TimingTrace` when the trace came with send and arrival
            times (a timing CSV, a pcap): replaying it gives each packet its delay too.
    """

    lost: np.ndarray
    slot_s: float = 0.02
    meta: dict[str, Any] = field(default_factory=dict)
    timing: Any = None

    def __post_init__(self) -> None:
        a = np.asarray(self.lost)
        if a.ndim != 1:
            raise ConfigError(f"a loss trace must be 1-D, got shape {a.shape}")
        if a.dtype != np.bool_:
            if a.size and not np.isin(a, (0, 1)).all():
                raise ConfigError("a loss trace must hold only 0/1 (or booleans)")
            a = a.astype(np.bool_)
        if not self.slot_s > 0:
            raise ConfigError(f"slot_s must be > 0, got {self.slot_s}")
        object.__setattr__(self, "lost", _readonly(a))
        object.__setattr__(self, "slot_s", float(self.slot_s))

    def __len__(self) -> int:
        return int(self.lost.shape[0])

    @property
    def loss_rate(self) -> float:
        return float(self.lost.mean()) if len(self) else float("nan")

    @property
    def duration_s(self) -> float:
        return len(self) * self.slot_s

    def equals(self, other: LossTrace) -> bool:
        return bool(self.slot_s == other.slot_s and np.array_equal(self.lost, other.lost))


#: how much later than a deadline an arrival may be and still count as in time: send times and deadlines are sums
#: of float seconds, so a packet due exactly at a frame's playout time (the next 20 ms packet under a 20 ms
#: buffer) can land a rounding error past it; 1 us is far below a sample at 48 kHz (20.8 us)
CLOCK_TOLERANCE_S = 1e-6


@dataclass(frozen=True, eq=False)
class Reception:
    """What the receiver got, per packet of one stream.

    Attributes:
        arrived: bool[n_packets], True where the network delivered the packet.
        arrival_time_s: float64[n_packets], NaN where not delivered.
        playout_deadline_s: float64[n_packets], the time by which the packet
            had to arrive to be played out (inf when no playout buffer).
        meta: simulator facts (queue drops, playout delays...).
        playout_plan: a time-warping buffer's (``tsm``, ``speex``) plan of what it played when: which frames,
            stretched or compressed, where it waited or concealed; None for the other buffers.
    """

    arrived: np.ndarray
    arrival_time_s: np.ndarray
    playout_deadline_s: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    playout_plan: PlayoutPlan | None = None

    def __post_init__(self) -> None:
        arrived = np.asarray(self.arrived, dtype=np.bool_)
        arr = np.asarray(self.arrival_time_s, dtype=np.float64)
        dl = np.asarray(self.playout_deadline_s, dtype=np.float64)
        if not (arrived.shape == arr.shape == dl.shape) or arrived.ndim != 1:
            raise ConfigError(
                f"Reception arrays must be 1-D of equal length, got {arrived.shape}, {arr.shape}, {dl.shape}"
            )
        object.__setattr__(self, "arrived", _readonly(arrived))
        object.__setattr__(self, "arrival_time_s", _readonly(arr))
        object.__setattr__(self, "playout_deadline_s", _readonly(dl))

    @classmethod
    def from_lost(cls, lost: np.ndarray, send_times_s: np.ndarray | None = None) -> Reception:
        """A reception with no delay: packets arrive when sent unless ``lost``."""
        lost = np.asarray(lost, dtype=np.bool_)
        t = np.zeros(lost.shape) if send_times_s is None else np.asarray(send_times_s, dtype=np.float64)
        arr = np.where(lost, np.nan, t)
        return cls(~lost, arr, np.full(lost.shape, np.inf))

    @property
    def num_packets(self) -> int:
        return int(self.arrived.shape[0])

    @property
    def late(self) -> np.ndarray:
        """bool[n]: arrived, but after the playout deadline."""
        with np.errstate(invalid="ignore"):
            return self.arrived & (self.arrival_time_s > self.playout_deadline_s + CLOCK_TOLERANCE_S)

    @property
    def usable(self) -> np.ndarray:
        """bool[n]: arrived in time to be decoded."""
        return self.arrived & ~self.late

    def in_time_for(self, carrier: int, owner: int) -> bool:
        """The receiver clock's rule: whether packet ``carrier`` arrived by the playout deadline of packet ``owner``,
        so that the frames ``owner`` carried may use what ``carrier`` holds for them (a RED copy, XOR parity,
        Opus LBRR or DRED). Without a playout buffer every deadline is infinite and an arrived packet is in time
        for every frame."""
        return bool(self.arrived[carrier]) and bool(
            self.arrival_time_s[carrier] <= self.playout_deadline_s[owner] + CLOCK_TOLERANCE_S)

    @property
    def network_loss_rate(self) -> float:
        return float(1.0 - self.arrived.mean()) if self.num_packets else float("nan")

    @property
    def late_rate(self) -> float:
        return float(self.late.mean()) if self.num_packets else float("nan")

    @property
    def effective_loss_rate(self) -> float:
        """Share of packets unusable for decoding (lost or late)."""
        return float(1.0 - self.usable.mean()) if self.num_packets else float("nan")
