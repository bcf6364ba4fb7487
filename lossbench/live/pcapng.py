"""A minimal pcapng writer (one interface, raw IPv4 link type, microsecond timestamps): what the relay sent on.

Blocks written: a Section Header Block, one Interface Description Block (LINKTYPE_RAW = 101, snap length 65535)
and an Enhanced Packet Block per packet (pcapng, draft-ietf-opsawg-pcapng). Wireshark, tshark and Scapy read it;
so does :func:`lossbench.traces.timing.read_pcap`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_RAW = 101


def _block(btype: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    n = 12 + len(body) + pad
    return struct.pack("<II", btype, n) + body + b"\0" * pad + struct.pack("<I", n)


def write_pcapng(path: str | Path, packets: Iterable[tuple[float, tuple[str, int], tuple[str, int], bytes]]) -> Path:
    """Write ``(time_s since the epoch, (src ip, port), (dst ip, port), UDP payload)`` packets to ``path``."""
    p = Path(path)
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(0x00000001, struct.pack("<HHI", LINKTYPE_RAW, 0, 65535))
    with p.open("wb") as f:
        f.write(shb + idb)
        for t, src, dst, payload in packets:
            pkt = pack_ipv4_udp(src, dst, payload)
            us = int(round(t * 1e6))
            f.write(_block(0x00000006, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(pkt), len(pkt)) + pkt))
    return p


def pack_ipv4_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """A raw IPv4 + UDP datagram (checksums: IPv4's computed, UDP's zero = none, as RFC 768 allows)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return hdr[:10] + struct.pack("!H", ~s & 0xFFFF) + hdr[12:] + udp
