"""Entropy coding of symbols with a real range coder (constriction).

The neural transceivers code tokens under model probabilities: SoundSpring
its fine RVQ tokens under the masked LM's PMFs, the Glaris-style coder its
latent under a mean–scale Gaussian. This module is the bit layer they share:

    payload = range-coded 32-bit words (little-endian) + CRC-16 of those words

Range decoding accepts any input, so corruption is caught by the CRC before
decoding: a damaged or truncated payload raises :class:`PayloadError` (the
packet is then treated as lost), and garbage can neither hang nor crash the
decoder.
"""

from __future__ import annotations

import binascii
import struct

import numpy as np

from lossbench.codecs.fec import PayloadError
from lossbench.errors import ConfigError


def _frame(words: np.ndarray) -> bytes:
    body = np.asarray(words, dtype="<u4").tobytes()
    return body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


def _unframe(data: bytes) -> np.ndarray:
    if len(data) < 2 or (len(data) - 2) % 4:
        raise PayloadError(f"entropy-coded payload of {len(data)} bytes is not 4k + 2 bytes long")
    body, (crc,) = data[:-2], struct.unpack("<H", data[-2:])
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        raise PayloadError("entropy-coded payload fails its CRC")
    return np.frombuffer(body, dtype="<u4").astype(np.uint32)


def encode_categorical(symbols: np.ndarray, probs: np.ndarray) -> bytes:
    """Code ``symbols`` (int[n]) where symbol i has PMF ``probs[i]`` (float[n, V]).

    Every symbol keeps a non-zero probability in the coder (constriction's
    non-perfect quantisation), so any symbol can be coded under any PMF.
    """
    import constriction

    s = np.asarray(symbols, dtype=np.int32)
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[0] != s.shape[0]:
        raise ConfigError(f"need one PMF row per symbol: {s.shape[0]} symbols, PMFs of shape {p.shape}")
    if s.size and (s.min() < 0 or s.max() >= p.shape[1]):
        raise ConfigError(f"symbols must lie in [0, {p.shape[1]}), got range [{s.min()}, {s.max()}]")
    enc = constriction.stream.queue.RangeEncoder()
    if s.size:
        enc.encode(s, constriction.stream.model.Categorical(perfect=False), p)
    return _frame(enc.get_compressed())


def decode_categorical(data: bytes, probs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_categorical` (the receiver must have the same PMFs)."""
    import constriction

    words = _unframe(data)
    p = np.asarray(probs, dtype=np.float32)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    dec = constriction.stream.queue.RangeDecoder(words)
    return np.asarray(dec.decode(constriction.stream.model.Categorical(perfect=False), p), dtype=np.int64)


def encode_gaussian(symbols: np.ndarray, means: np.ndarray, stds: np.ndarray, lo: int, hi: int) -> bytes:
    """Code integers in [lo, hi] under quantised Gaussians N(mean_i, std_i)."""
    import constriction

    s = np.asarray(symbols, dtype=np.int32)
    if s.size and (s.min() < lo or s.max() > hi):
        raise ConfigError(f"symbols must lie in [{lo}, {hi}], got range [{s.min()}, {s.max()}]")
    enc = constriction.stream.queue.RangeEncoder()
    if s.size:
        enc.encode(s, constriction.stream.model.QuantizedGaussian(lo, hi),
                   np.asarray(means, dtype=np.float64), np.maximum(np.asarray(stds, dtype=np.float64), 1e-3))
    return _frame(enc.get_compressed())


def decode_gaussian(data: bytes, means: np.ndarray, stds: np.ndarray, lo: int, hi: int) -> np.ndarray:
    import constriction

    words = _unframe(data)
    m = np.asarray(means, dtype=np.float64)
    if m.size == 0:
        return np.zeros(0, dtype=np.int64)
    dec = constriction.stream.queue.RangeDecoder(words)
    return np.asarray(dec.decode(constriction.stream.model.QuantizedGaussian(lo, hi), m,
                                 np.maximum(np.asarray(stds, dtype=np.float64), 1e-3)), dtype=np.int64)
