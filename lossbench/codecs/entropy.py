"""Entropy coding of symbols with our own byte-oriented range coder, and the CRC framing of payloads.

The neural transceivers code tokens under model probabilities: SoundSpring
its fine RVQ tokens under the masked LM's PMFs, the Glaris-style coder its
latent under discretised mean–scale Gaussians (``glaris.codec.gaussian_pmfs``).
This module is the bit layer they share:

    payload = (header fields +) range-coded bytes (:class:`CategoricalStream`) + CRC-16 (:func:`crc_frame`)

Range decoding accepts any input, so corruption is caught by the CRC before
decoding: a damaged or truncated payload raises :class:`PayloadError` (the
packet is then treated as lost), and garbage can neither hang nor crash the
decoder (it decodes some symbols, in bounded time).
"""

from __future__ import annotations

import binascii
import struct

import numpy as np

from lossbench.codecs.fec import PayloadError
from lossbench.errors import ConfigError


def crc_frame(body: bytes) -> bytes:
    """``body`` + its CRC-16 (CCITT, little-endian): what every neural payload ends with."""
    return body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


def crc_unframe(data: bytes) -> bytes:
    """The body of a :func:`crc_frame` payload; :class:`PayloadError` if the CRC fails."""
    if len(data) < 2:
        raise PayloadError(f"payload of {len(data)} bytes is too short to hold its CRC")
    body, (crc,) = data[:-2], struct.unpack("<H", data[-2:])
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        raise PayloadError("payload fails its CRC")
    return body


PROB_BITS = 16
_TOT = 1 << PROB_BITS


def quantize_pmfs(probs: np.ndarray) -> np.ndarray:
    """Integer frequencies (n, V) summing to 2**16 per row, every symbol >= 1.

    Deterministic for given float inputs, so both ends of a link derive the
    same table from the same model output.
    """
    p = np.asarray(probs, dtype=np.float64)
    n, V = p.shape
    if V > _TOT // 4:
        raise ConfigError(f"alphabet of {V} symbols is too large for {PROB_BITS}-bit frequencies")
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    s = p.sum(1, keepdims=True)
    p = np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / V)
    f = np.floor(p * (_TOT - V)).astype(np.int64) + 1
    f[np.arange(n), f.argmax(1)] += _TOT - f.sum(1)
    return f


class CategoricalStream:
    """A byte-oriented range coder for runs of symbols under their own PMFs.

    The classic multi-symbol range coder (32-bit range, byte renormalisation,
    16-bit frequencies); the code value is kept as an exact integer, so
    carries need no special handling, and the coder ends on the shortest
    byte string inside the final interval (the decoder reads zeros past the
    end). Several runs go into one stream; each run's PMFs may be computed
    after the previous runs were decoded, which is how a packet holding
    several dependent slices is coded. Any byte string decodes to some
    symbols in bounded time: a damaged payload must be caught by a checksum.
    """

    @staticmethod
    def encode(runs: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
        low, rng, shifted = 0, 1 << 32, 0
        for symbols, probs in runs:
            s = np.asarray(symbols, dtype=np.int64).ravel()
            p = np.asarray(probs)
            if p.ndim != 2 or p.shape[0] != s.shape[0]:
                raise ConfigError(f"need one PMF row per symbol: {s.shape[0]} symbols, PMFs of shape {p.shape}")
            if not s.size:
                continue
            if s.min() < 0 or s.max() >= p.shape[1]:
                raise ConfigError(f"symbols must lie in [0, {p.shape[1]}), got range [{s.min()}, {s.max()}]")
            f = quantize_pmfs(p)
            cum = np.cumsum(f, 1) - f
            rows = np.arange(s.size)
            for c, fr in zip(cum[rows, s].tolist(), f[rows, s].tolist()):
                r = rng >> PROB_BITS
                low += r * c
                rng = r * fr
                while rng < (1 << 24):
                    low <<= 8
                    rng <<= 8
                    shifted += 1
        # shortest byte string m whose value, padded with zeros, lies in [low, low + rng)
        total = shifted + 4
        for m in range(0, total + 1):
            unit = 1 << (8 * (total - m))
            v = -(-low // unit) * unit
            if v < low + rng:
                return (v // unit).to_bytes(m, "big") if m else b""
        raise AssertionError("unreachable: the full-length value always lies in the interval")

    def __init__(self, data: bytes):
        self._data = bytes(data)
        self._low, self._rng, self._shifted = 0, 1 << 32, 0

    def _code(self) -> int:
        n = self._shifted + 4
        d = self._data[:n]
        return int.from_bytes(d + b"\0" * (n - len(d)), "big")

    def decode(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs)
        if p.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        f = quantize_pmfs(p)
        cdf = np.cumsum(f, 1)
        out = np.empty(p.shape[0], dtype=np.int64)
        code = self._code()
        for i in range(p.shape[0]):
            r = self._rng >> PROB_BITS
            t = min((code - self._low) // r, _TOT - 1)
            if t < 0:  # only for damaged input
                t = 0
            sym = int(np.searchsorted(cdf[i], t, side="right"))
            fr = int(f[i, sym])
            self._low += r * (int(cdf[i, sym]) - fr)
            self._rng = r * fr
            grew = False
            while self._rng < (1 << 24):
                self._low <<= 8
                self._rng <<= 8
                self._shifted += 1
                grew = True
            if grew:
                code = self._code()
            out[i] = sym
        return out
