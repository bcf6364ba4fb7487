"""What a UDP datagram on a media 5-tuple is (RFC 7983), and an RTP header's fields.

WebRTC multiplexes STUN, DTLS, SRTP and SRTCP on one port; RFC 7983 tells them apart by the first byte:

======== =========================================
0-3      STUN
16-19    ZRTP
20-63    DTLS
64-79    TURN channel data
128-191  RTP or RTCP (RTCP: the second byte, payload type with the marker bit, in 192-223; RFC 5761)
======== =========================================

An SRTP header is not encrypted, so its SSRC and sequence number are read like plain RTP's.
"""

from __future__ import annotations

from typing import NamedTuple

STUN, ZRTP, DTLS, TURN, RTP, RTCP, OTHER = "stun", "zrtp", "dtls", "turn", "rtp", "rtcp", "other"


def classify(data: bytes) -> str:
    """One of ``stun``, ``zrtp``, ``dtls``, ``turn``, ``rtp``, ``rtcp`` or ``other`` (RFC 7983, RFC 5761)."""
    if not data:
        return OTHER
    b = data[0]
    if b <= 3:
        return STUN
    if 16 <= b <= 19:
        return ZRTP
    if 20 <= b <= 63:
        return DTLS
    if 64 <= b <= 79:
        return TURN
    if 128 <= b <= 191:
        if len(data) < 2:
            return OTHER
        if 192 <= data[1] <= 223:
            return RTCP
        return RTP if len(data) >= 12 else OTHER
    return OTHER


class RtpHeader(NamedTuple):
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool


def parse_rtp(data: bytes) -> RtpHeader | None:
    """The fixed RTP header (RFC 3550 §5.1) of a version-2 packet; None for anything else."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    return RtpHeader(data[1] & 0x7F, int.from_bytes(data[2:4], "big"), int.from_bytes(data[4:8], "big"),
                     int.from_bytes(data[8:12], "big"), bool(data[1] & 0x80))


class SeqUnwrapper:
    """RTP sequence numbers unwrapped past 65535 (RFC 3550 A.1's rule: a step of more than half the space back is a
    wrap forward), relative to the first number seen: the first packet is 0, the next 1, a reordered earlier one
    -1."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.last = 0  # the last unwrapped number (absolute)

    def index(self, seq: int) -> int:
        if self.first is None:
            self.first = self.last = seq
            return 0
        d = (seq - (self.last & 0xFFFF) + 32768) % 65536 - 32768
        u = self.last + d
        self.last = max(self.last, u)
        return u - self.first
