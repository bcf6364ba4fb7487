"""ITU-T G.192 bitstreams: how ITU-T and 3GPP reference codecs write and read coded speech.

A G.192 file is a sequence of 16-bit words (little-endian, as the ITU-T Software Tool Library writes them on the
machines it targets). Each frame is::

    sync word    0x6B21 (a good frame) or 0x6B20 (a bad frame: the BFI, as the STL's error-insertion tools mark
                 a lost frame)
    length word  the number of bits that follow
    bits         one word per bit: 0x007F for 0, 0x0081 for 1

A frame of length 0 is a frame the encoder did not send (DTX, NO_DATA). Reading hard-decides soft bits (a word
above 0x0080 is a 1); a word above 0x00FF, a sync word that is neither, or a frame cut short is an error that names
the frame and its byte offset.
"""

from __future__ import annotations

import numpy as np

from lossbench.errors import CodecError

SYNC_GOOD = 0x6B21
SYNC_BAD = 0x6B20
BIT_0 = 0x007F
BIT_1 = 0x0081


def write_g192(frames: list[np.ndarray], good: np.ndarray | None = None) -> bytes:
    """Frames of bits (uint8 arrays of 0 and 1) as a G.192 file; a frame with ``good[i]`` False gets the BFI sync
    word and its bits zeroed (0x007F words, the frame's length kept)."""
    ok = np.ones(len(frames), bool) if good is None else np.asarray(good, bool)
    words: list[np.ndarray] = []
    for bits, g in zip(frames, ok):
        b = np.asarray(bits, np.uint8)
        body = np.where(b.astype(bool) & g, BIT_1, BIT_0).astype("<u2")
        words.append(np.array([SYNC_GOOD if g else SYNC_BAD, b.size], "<u2"))
        words.append(body)
    return np.concatenate(words).astype("<u2").tobytes() if words else b""


def read_g192(data: bytes, what: str = "G.192 stream") -> list[tuple[bool, np.ndarray]]:
    """(good, bits) per frame of a G.192 file; a malformed file is a CodecError naming the frame and byte
    offset."""
    if len(data) % 2:
        raise CodecError(f"{what}: {len(data)} bytes is not a whole number of 16-bit words")
    w = np.frombuffer(data, "<u2")
    out: list[tuple[bool, np.ndarray]] = []
    i = 0
    while i < w.size:
        sync = int(w[i])
        if sync not in (SYNC_GOOD, SYNC_BAD):
            raise CodecError(f"{what}: frame {len(out)} (byte {2 * i}) starts with 0x{sync:04X}, not a G.192 sync "
                             f"word (0x{SYNC_GOOD:04X} good, 0x{SYNC_BAD:04X} bad)")
        if i + 1 >= w.size:
            raise CodecError(f"{what}: frame {len(out)} (byte {2 * i}) is cut short before its length word")
        n = int(w[i + 1])
        body = w[i + 2 : i + 2 + n]
        if body.size < n:
            raise CodecError(f"{what}: frame {len(out)} (byte {2 * i}) says {n} bits but the file ends after "
                             f"{body.size}")
        if body.size and int(body.max()) > 0xFF:
            raise CodecError(f"{what}: frame {len(out)} (byte {2 * i}) has a bit word 0x{int(body.max()):04X}; "
                             f"bits are 0x{BIT_0:04X} (0) and 0x{BIT_1:04X} (1)")
        out.append((sync == SYNC_GOOD, (body > 0x80).astype(np.uint8)))
        i += 2 + n
    return out


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Bits (first bit the most significant of the first byte) packed into bytes, the last one zero-padded."""
    return np.packbits(np.asarray(bits, np.uint8)).tobytes()


def bytes_to_bits(payload: bytes, n_bits: int) -> np.ndarray:
    """The first ``n_bits`` bits of ``payload`` (the inverse of :func:`bits_to_bytes`)."""
    bits = np.unpackbits(np.frombuffer(payload, np.uint8))
    if bits.size < n_bits:
        raise CodecError(f"a payload of {len(payload)} bytes cannot hold the frame's {n_bits} bits")
    return bits[:n_bits]
