"""Reading what an Opus packet carries without decoding it (RFC 6716): the SILK layer's LBRR flag, with a
minimal range decoder, and the bytes of the DRED extension in the packet padding."""

from __future__ import annotations

DRED_EXTENSION_ID = 126  # the Opus 1.5 padding extension that carries DRED

# --------------------------------------------------------------------------- LBRR detection


class _RangeDecoder:
    """The start of RFC 6716's range decoder: enough to read SILK header flags."""

    def __init__(self, data: bytes) -> None:
        self.buf = data
        self.pos = 0
        b0 = self._byte()
        self.rem = b0
        self.val = 127 - (b0 >> 1)
        self.rng = 128
        self._normalize()

    def _byte(self) -> int:
        if self.pos < len(self.buf):
            b = self.buf[self.pos]
            self.pos += 1
            return b
        return 0

    def _normalize(self) -> None:
        while self.rng <= 1 << 23:
            self.rng <<= 8
            b = self._byte()
            sym = ((self.rem << 8) | b) >> 1
            self.rem = b
            self.val = ((self.val << 8) + (255 & ~sym)) & 0x7FFFFFFF

    def bit_logp(self, logp: int) -> int:
        r = self.rng
        d = self.val
        s = r >> logp
        ret = 1 if d < s else 0
        if not ret:
            self.val = d - s
        self.rng = s if ret else r - s
        self._normalize()
        return ret


def packet_has_lbrr(packet: bytes) -> bool:
    """True if the first Opus frame of ``packet`` carries SILK LBRR (in-band FEC) data.

    Reads the TOC byte (RFC 6716 §3.1); CELT-only packets carry none. For
    SILK and hybrid frames the range decoder yields one VAD flag per 20 ms
    SILK frame and then the LBRR flag (§4.2.3), each a 1/2-probability bit.
    """
    if len(packet) < 2:
        return False
    toc = packet[0]
    config = toc >> 3
    if config >= 16:  # CELT-only
        return False
    stereo = bool(toc & 0x04)
    code = toc & 0x03
    frame_ms = (10, 20, 40, 60)[config & 3] if config < 12 else (10, 20)[config & 1]
    data = packet[1:]
    if code == 1:
        data = data[: len(data) // 2]
    elif code == 2:
        if not data:
            return False
        n = data[0]
        hdr = 1
        if n >= 252:
            if len(data) < 2:
                return False
            n += 4 * data[1]
            hdr = 2
        data = data[hdr : hdr + n]
    elif code == 3:  # frame count and padding (Opus 1.5 puts its extensions, DRED among them, there)
        if not data:
            return False
        vbr, padded, count = bool(data[0] & 0x80), bool(data[0] & 0x40), data[0] & 0x3F
        pos, pad = 1, 0
        while padded:
            if pos >= len(data):
                return False
            b = data[pos]
            pos += 1
            pad += 254 if b == 255 else b
            padded = b == 255
        end = len(data) - pad
        if count < 1 or end <= pos:
            return False
        if vbr and count > 1:  # the first frame's length is coded
            n = data[pos]
            hdr = 1
            if n >= 252:
                if pos + 1 >= len(data):
                    return False
                n += 4 * data[pos + 1]
                hdr = 2
            data = data[pos + hdr : pos + hdr + n]
        else:
            data = data[pos:end][: (end - pos) // count]
    if not data:
        return False
    n_silk = max(1, frame_ms // 20)
    rd = _RangeDecoder(data)
    lbrr = False
    for _ in range(2 if stereo else 1):
        for _ in range(n_silk):
            rd.bit_logp(1)  # VAD flag
        lbrr |= bool(rd.bit_logp(1))
    return lbrr


def _padding(packet: bytes) -> bytes:
    """The padding of a code-3 Opus packet (RFC 6716 §3.2.5), where Opus 1.5 carries extensions."""
    if len(packet) < 2 or packet[0] & 0x03 != 3:
        return b""
    if not packet[1] & 0x40:
        return b""
    pos, pad = 2, 0
    while True:
        if pos >= len(packet):
            return b""
        b = packet[pos]
        pos += 1
        pad += 254 if b == 255 else b
        if b != 255:
            break
    if pad > len(packet) - pos:
        return b""
    return packet[len(packet) - pad:] if pad else b""


def packet_dred_bytes(packet: bytes) -> int:
    """Bytes of the DRED extension (id 126, header included) in an Opus 1.5 packet; 0 if none.

    Walks the padding extensions as ``src/extensions.c`` does; a malformed
    extension area counts as no DRED.
    """
    data = _padding(packet)
    pos, n = 0, len(data)
    while pos < n:
        start = pos
        ext_id, long = data[pos] >> 1, data[pos] & 1
        if ext_id == 0 and long == 1:  # padding separator
            pos += 1
            continue
        if 0 < ext_id < 32:  # short extension: 0 or 1 byte of data
            pos += 1 + long
            if pos > n:
                return 0
            continue
        if ext_id == 0:  # plain padding to the end
            return 0
        if not long:  # the last extension takes the rest
            return n - start if ext_id == DRED_EXTENSION_ID else 0
        size = 0
        pos += 1
        while True:
            if pos >= n:
                return 0
            b = data[pos]
            pos += 1
            size += b
            if b != 255:
                break
        pos += size
        if pos > n:
            return 0
        if ext_id == DRED_EXTENSION_ID:
            return pos - start
    return 0
