"""Packetisation and packet-level FEC, usable with any codec.

A codec turns audio into *frames* (bytes each). The packetiser groups
``frames_per_packet`` frames into a *unit* (one frame: its bytes as they are;
several: each prefixed with its 16-bit length), then builds packets:

- plain: one unit per packet;
- RFC 2198 redundancy (``red=N``, ``red_offset=k``): packet i also carries
  units i-k, i-2k, ..., i-Nk, each behind a 4-byte RFC 2198 block header
  (F bit, payload type, 14-bit timestamp offset, 10-bit block length), the
  primary behind a 1-byte header;
- XOR parity (``xor=K``): after every K packets, one parity packet carrying
  the K payload lengths and the XOR of the K payloads (zero-padded), from
  which any single missing packet of the group is rebuilt (RFC 5109 style).

The measured bitrate of a stream includes all of this, since it is counted
from the real payloads. On reception, :func:`depacketize` rebuilds each
unit from its own packet, else from a redundant copy, else from parity, and
reports which frames stayed missing; a payload that does not parse is
treated as lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from lossbench.core import Packet, PacketKind, Reception
from lossbench.errors import CodecError, ConfigError

RED_PT = 96  # the dynamic payload type our RED blocks announce
DTX = b""  # a frame the encoder chose not to send (discontinuous transmission)


class PayloadError(Exception):
    """A payload does not parse; the packet is treated as lost."""


@dataclass(frozen=True)
class Packetizer:
    """How frames become packets (see module docstring)."""

    frames_per_packet: int = 1
    red: int = 0
    red_offset: int = 1
    xor: int = 0

    def __post_init__(self) -> None:
        for k, lo in (("frames_per_packet", 1), ("red", 0), ("red_offset", 1), ("xor", 0)):
            v = getattr(self, k)
            if int(v) != v or v < lo:
                raise ConfigError(f"{k} must be an integer >= {lo}, got {v!r}")
        if self.xor == 1:
            raise ConfigError("xor=1 would protect each packet by a copy of itself; use xor >= 2 (or red=1)")

    @property
    def params(self) -> dict[str, int]:
        return {"frames_per_packet": self.frames_per_packet, "red": self.red, "red_offset": self.red_offset,
                "xor": self.xor}

    # ------------------------------------------------------------------ sender

    def units(self, frames: list[bytes]) -> list[bytes]:
        fpp = self.frames_per_packet
        out = []
        for i in range(0, len(frames), fpp):
            group = frames[i : i + fpp]
            if fpp == 1:
                out.append(group[0])
            else:
                out.append(b"".join(struct.pack(">H", len(f)) + f for f in group))
        return out

    def packetize(self, frames: list[bytes], frame_duration_s: float, frame_samples: int) -> list[Packet]:
        fpp = self.frames_per_packet
        units = self.units(frames)
        unit_s = frame_duration_s * fpp
        n_frames = len(frames)
        dtx_units = [all(len(f) == 0 for f in frames[i * fpp : (i + 1) * fpp]) for i in range(len(units))]
        if any(dtx_units) and (self.red or self.xor):
            raise ConfigError("DTX cannot be combined with red/xor packet FEC")
        payloads: list[tuple[int, bytes]] = []  # (unit index, payload)
        for i, u in enumerate(units):
            if dtx_units[i]:
                continue
            if self.red:
                payloads.append((i, self._red_payload(units, i, frame_samples * fpp)))
            else:
                payloads.append((i, u))
        packets: list[Packet] = []
        group: list[bytes] = []
        group_units: list[int] = []
        for i, pl in payloads:
            frames_r = range(i * fpp, min((i + 1) * fpp, n_frames))
            packets.append(Packet(len(packets), i * unit_s, pl, frames_r, PacketKind.PRIMARY))
            if self.xor:
                group.append(pl)
                group_units.append(i)
                if len(group) == self.xor:
                    packets.append(Packet(len(packets), i * unit_s, self._parity(group),
                                          range(group_units[0] * fpp, (group_units[-1] + 1) * fpp),
                                          PacketKind.REDUNDANCY))
                    group, group_units = [], []
        if self.xor and group:
            i = group_units[-1]
            packets.append(Packet(len(packets), i * unit_s, self._parity(group),
                                  range(group_units[0] * fpp, min((i + 1) * fpp, n_frames)), PacketKind.REDUNDANCY))
        return packets

    def _red_payload(self, units: list[bytes], i: int, unit_samples: int) -> bytes:
        head = b""
        body = b""
        for k in range(self.red, 0, -1):
            j = i - k * self.red_offset
            if j < 0:
                continue
            blk = units[j]
            if len(blk) > 1023:
                raise ConfigError(f"RFC 2198 blocks hold at most 1023 bytes; a unit of {len(blk)} bytes is too long")
            ts = k * self.red_offset * unit_samples
            if ts >= 1 << 14:
                raise ConfigError(f"RFC 2198 timestamp offsets hold 14 bits; offset {ts} samples is too large")
            head += struct.pack(">I", (1 << 31) | (RED_PT << 24) | (ts << 10) | len(blk))
            body += blk
        return head + bytes([RED_PT]) + body + units[i]

    @staticmethod
    def _parity(payloads: list[bytes]) -> bytes:
        n = max(len(p) for p in payloads)
        acc = np.zeros(n, dtype=np.uint8)
        for p in payloads:
            acc[: len(p)] ^= np.frombuffer(p, dtype=np.uint8)
        return bytes([len(payloads)]) + b"".join(struct.pack(">H", len(p)) for p in payloads) + acc.tobytes()

    # ------------------------------------------------------------------ receiver

    def split_unit(self, unit: bytes) -> list[bytes]:
        if self.frames_per_packet == 1:
            return [unit]
        out, pos = [], 0
        while pos < len(unit):
            if pos + 2 > len(unit):
                raise PayloadError("truncated frame length")
            (n,) = struct.unpack_from(">H", unit, pos)
            pos += 2
            if pos + n > len(unit):
                raise PayloadError("frame runs past the end of the unit")
            out.append(unit[pos : pos + n])
            pos += n
        return out

    def parse_red(self, payload: bytes, unit_samples: int) -> tuple[bytes, dict[int, bytes]]:
        """(primary unit, {distance in units: redundant unit})."""
        pos = 0
        blocks: list[tuple[int, int]] = []
        while True:
            if pos >= len(payload):
                raise PayloadError("RED header runs past the end")
            b0 = payload[pos]
            if not b0 & 0x80:
                pos += 1
                break
            if pos + 4 > len(payload):
                raise PayloadError("truncated RED block header")
            (h,) = struct.unpack_from(">I", payload, pos)
            ts = (h >> 10) & 0x3FFF
            ln = h & 0x3FF
            if ts == 0 or ts % unit_samples:
                raise PayloadError(f"RED timestamp offset {ts} is not a multiple of the unit ({unit_samples})")
            blocks.append((ts // unit_samples, ln))
            pos += 4
        red: dict[int, bytes] = {}
        for dist, ln in blocks:
            if pos + ln > len(payload):
                raise PayloadError("RED block runs past the end")
            red[dist] = payload[pos : pos + ln]
            pos += ln
        return payload[pos:], red

    @staticmethod
    def parse_parity(payload: bytes) -> tuple[list[int], bytes]:
        if not payload:
            raise PayloadError("empty parity payload")
        k = payload[0]
        if len(payload) < 1 + 2 * k:
            raise PayloadError("truncated parity header")
        lens = [struct.unpack_from(">H", payload, 1 + 2 * j)[0] for j in range(k)]
        body = payload[1 + 2 * k :]
        if max(lens, default=0) > len(body):
            raise PayloadError("parity body shorter than the protected payloads")
        return lens, body


@dataclass
class Depacketized:
    """Per-frame result of reception."""

    frames: list[bytes | None]  # None: missing; DTX (b""): not sent by design
    recovered: np.ndarray  # bool[n_frames]: rebuilt from redundancy or parity
    corrupt_packets: int
    #: per frame, the primary packet that carried it (-1: none, a DTX gap); with ``reception``, what a decoder
    #: that repairs a frame from a later packet (Opus LBRR, DRED) asks of the receiver clock
    packet_of_frame: np.ndarray | None = None
    reception: Reception | None = None

    def in_time(self, carrier_frame: int, frame: int) -> bool:
        """Whether the packet that carried frame ``carrier_frame`` arrived by the playout deadline of frame
        ``frame`` (:meth:`~lossbench.core.Reception.in_time_for`); True without a reception (no clock)."""
        if self.reception is None or self.packet_of_frame is None:
            return True
        c, o = int(self.packet_of_frame[carrier_frame]), int(self.packet_of_frame[frame])
        return c >= 0 and o >= 0 and self.reception.in_time_for(c, o)


def depacketize(
    pk: Packetizer, packets: tuple[Packet, ...], usable: np.ndarray, n_frames: int, frame_samples: int,
    reception: Reception | None = None,
) -> Depacketized:
    """Rebuild per-frame payloads from the packets that arrived in time.

    With ``reception``, redundancy keeps to the receiver clock: a RED copy repairs a frame only if its packet
    arrived by that frame's playout deadline, and XOR parity rebuilds a packet only if the parity packet and every
    packet it is combined with arrived by the rebuilt packet's deadline (:meth:`Reception.in_time_for`)."""
    fpp = pk.frames_per_packet
    n_units = -(-n_frames // fpp)
    usable = np.asarray(usable, dtype=bool)
    if usable.shape[0] != len(packets):
        raise CodecError(f"reception covers {usable.shape[0]} packets but the stream has {len(packets)}")
    got: dict[int, bytes] = {}  # packet seq -> payload (primary packets that arrived)
    unit_of: dict[int, int] = {}  # primary packet seq -> unit index
    sent_units: set[int] = set()
    corrupt = 0
    recovered_by_xor: set[int] = set()
    # XOR recovery works on whole payloads before RED parsing
    group: list[int] = []
    for p in packets:
        if p.kind == PacketKind.PRIMARY:
            u = p.frames.start // fpp
            unit_of[p.seq] = u
            sent_units.add(u)
            if usable[p.seq]:
                got[p.seq] = p.payload
            group.append(p.seq)
        elif p.kind == PacketKind.REDUNDANCY and pk.xor:
            missing = [s for s in group if s not in got]
            if len(missing) == 1 and usable[p.seq] and (
                    reception is None or all(reception.in_time_for(s, missing[0]) for s in group + [p.seq]
                                             if s != missing[0])):
                try:
                    lens, body = pk.parse_parity(p.payload)
                    if len(lens) != len(group):
                        raise PayloadError("parity group size mismatch")
                    acc = np.frombuffer(body, dtype=np.uint8).copy()
                    for s in group:
                        if s in got:
                            other = np.frombuffer(got[s], dtype=np.uint8)
                            if other.size > acc.size:
                                raise PayloadError("payload longer than parity")
                            acc[: other.size] ^= other
                    m = missing[0]
                    got[m] = acc[: lens[group.index(m)]].tobytes()
                    recovered_by_xor.add(unit_of[m])
                except PayloadError:
                    corrupt += 1
            group = []
    units: list[bytes | None] = [None] * n_units
    recovered_units: set[int] = set(recovered_by_xor)
    red_copies: dict[int, bytes] = {}
    seq_of_unit = {u: s for s, u in unit_of.items()}
    unit_samples = frame_samples * fpp
    for seq, pl in got.items():
        u = unit_of[seq]
        if pk.red:
            try:
                primary, red = pk.parse_red(pl, unit_samples)
            except PayloadError:
                corrupt += 1
                continue
            units[u] = primary
            for dist, blk in red.items():
                owner = seq_of_unit.get(u - dist)
                if reception is None or owner is None or reception.in_time_for(seq, owner):
                    red_copies.setdefault(u - dist, blk)
        else:
            units[u] = pl
    for u in range(n_units):
        if units[u] is None and u in red_copies:
            units[u] = red_copies[u]
            recovered_units.add(u)
    frames: list[bytes | None] = [None] * n_frames
    recovered = np.zeros(n_frames, dtype=bool)
    packet_of_frame = np.full(n_frames, -1, dtype=np.int64)
    for s, u in unit_of.items():
        packet_of_frame[u * fpp : min((u + 1) * fpp, n_frames)] = s
    for u in range(n_units):
        lo, hi = u * fpp, min((u + 1) * fpp, n_frames)
        if u not in sent_units:
            for f in range(lo, hi):
                frames[f] = DTX
            continue
        data = units[u]
        if data is None:
            continue
        try:
            parts = pk.split_unit(data)
        except PayloadError:
            corrupt += 1
            continue
        if len(parts) != hi - lo:
            corrupt += 1
            continue
        for j, fr in enumerate(parts):
            frames[lo + j] = fr
            recovered[lo + j] = u in recovered_units
    return Depacketized(frames, recovered, corrupt, packet_of_frame, reception)
