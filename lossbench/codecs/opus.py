"""Opus through libopus (ctypes), with its own PLC and in-band LBRR FEC.

Concealments:

- ``opus-plc``: a missing frame is decoded from an empty payload (libopus PLC);
- ``opus-fec``: a missing frame n is rebuilt from the LBRR data in packet
  n+1 when n+1 arrived (``decode_fec=1``), else PLC.

libopus emits LBRR only above per-bandwidth bitrate thresholds, so each
stream records whether its packets really carry LBRR, read from the packets
themselves: the SILK layer's LBRR flag is decoded with a minimal RFC 6716
range decoder (:func:`packet_has_lbrr`). ``opus-fec`` on a stream without
LBRR is just PLC, and the result table says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, Codec
from lossbench.errors import CodecError, ConfigError

OPUS_OK = 0
APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
SET_BITRATE, SET_VBR, SET_COMPLEXITY, SET_INBAND_FEC = 4002, 4006, 4010, 4012
SET_PACKET_LOSS_PERC, SET_DTX, SET_VBR_CONSTRAINT, GET_LOOKAHEAD = 4014, 4016, 4020, 4027
SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = (10.0, 20.0, 40.0, 60.0)

_LIB: ctypes.CDLL | None = None


def libopus() -> ctypes.CDLL:
    """Load libopus once; a clear error names the package when it is absent."""
    global _LIB
    if _LIB is not None:
        return _LIB
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise CodecError("libopus is not installed: apt-get install libopus0 (make setup does this as root)") from None
    c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
    lib.opus_encoder_create.restype = c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_create.restype = c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, c_int, ctypes.POINTER(c_int)]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [c_void_p, ctypes.POINTER(ctypes.c_float), c_int, ctypes.c_char_p, ctypes.c_int32]
    lib.opus_decode_float.restype = c_int
    lib.opus_decode_float.argtypes = [c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_float), c_int, c_int]
    lib.opus_encoder_destroy.argtypes = [c_void_p]
    lib.opus_decoder_destroy.argtypes = [c_void_p]
    lib.opus_encoder_ctl.restype = c_int
    lib.opus_decoder_ctl.restype = c_int
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_strerror.restype = ctypes.c_char_p
    _LIB = lib
    return lib


def opus_version() -> str:
    return libopus().opus_get_version_string().decode()


class _Encoder:
    def __init__(self, sr: int, application: int) -> None:
        lib = libopus()
        err = ctypes.c_int(0)
        self.lib = lib
        self.st = lib.opus_encoder_create(sr, 1, application, ctypes.byref(err))
        if err.value != OPUS_OK or not self.st:
            raise CodecError(f"opus_encoder_create failed: {lib.opus_strerror(err.value).decode()}")

    def ctl(self, request: int, value: int) -> None:
        r = self.lib.opus_encoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(request), ctypes.c_int(value))
        if r != OPUS_OK:
            raise CodecError(f"opus_encoder_ctl({request}, {value}) failed: {self.lib.opus_strerror(r).decode()}")

    def get(self, request: int) -> int:
        v = ctypes.c_int(0)
        self.lib.opus_encoder_ctl(ctypes.c_void_p(self.st), ctypes.c_int(request), ctypes.byref(v))
        return v.value

    def encode(self, pcm: np.ndarray) -> bytes:
        buf = ctypes.create_string_buffer(4000)
        x = np.ascontiguousarray(pcm, dtype=np.float32)
        n = self.lib.opus_encode_float(self.st, x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), x.size, buf, 4000)
        if n < 0:
            raise CodecError(f"opus_encode_float failed: {self.lib.opus_strerror(n).decode()}")
        return buf.raw[:n]

    def __del__(self) -> None:
        if getattr(self, "st", None):
            self.lib.opus_encoder_destroy(self.st)
            self.st = None


class _Decoder:
    def __init__(self, sr: int) -> None:
        lib = libopus()
        err = ctypes.c_int(0)
        self.lib = lib
        self.st = lib.opus_decoder_create(sr, 1, ctypes.byref(err))
        if err.value != OPUS_OK or not self.st:
            raise CodecError(f"opus_decoder_create failed: {lib.opus_strerror(err.value).decode()}")

    def decode(self, data: bytes | None, frame_samples: int, fec: bool = False) -> np.ndarray | None:
        """Decoded samples, or None if libopus rejects the payload."""
        out = np.zeros(frame_samples, dtype=np.float32)
        ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        n = self.lib.opus_decode_float(self.st, data if data else None, len(data) if data else 0, ptr, frame_samples,
                                       1 if fec else 0)
        if n < 0:
            return None
        if n != frame_samples:
            out[n:] = 0.0
        return out

    def __del__(self) -> None:
        if getattr(self, "st", None):
            self.lib.opus_decoder_destroy(self.st)
            self.st = None


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
    elif code == 3:
        return False  # several frames with padding; not produced for SILK frames here
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


# --------------------------------------------------------------------------- the codec


@CODECS.register("opus")
class Opus(Codec):
    """Opus (libopus) at 8–48 kHz mono.

    Args:
        bitrate: target bit/s (the ``kbps`` alias takes kbit/s).
        sample_rate_hz: 8000, 12000, 16000, 24000 or 48000.
        frame_ms: 10, 20, 40 or 60.
        vbr: variable bitrate (default on); ``cvbr`` constrains it.
        complexity: 0–10.
        application: voip, audio or lowdelay.
        fec: turn on in-band LBRR FEC (needs ``loss_perc`` > 0 to emit LBRR).
        loss_perc: the packet-loss-percentage hint given to the encoder.
        dtx: discontinuous transmission (silent frames are not sent).
    """

    name = "opus"
    native_concealments = ("opus-plc", "opus-fec")

    def __init__(
        self,
        bitrate: int | None = None,
        kbps: float | None = None,
        sample_rate_hz: int = 16000,
        frame_ms: float = 20.0,
        vbr: bool = True,
        cvbr: bool = False,
        complexity: int = 10,
        application: str = "voip",
        fec: bool = False,
        loss_perc: int = 10,
        dtx: bool = False,
        **packet_kw: Any,
    ) -> None:
        super().__init__(**packet_kw)
        if bitrate is not None and kbps is not None:
            raise ConfigError("opus: give bitrate (bit/s) or kbps, not both")
        br = int(round(kbps * 1000)) if kbps is not None else int(bitrate if bitrate is not None else 16000)
        if not 6000 <= br <= 510000:
            raise ConfigError(f"opus: bitrate must lie in [6000, 510000] bit/s, got {br}")
        if int(sample_rate_hz) not in SAMPLE_RATES:
            raise ConfigError(f"opus: sample_rate_hz must be one of {SAMPLE_RATES}, got {sample_rate_hz!r}")
        if float(frame_ms) not in FRAME_MS:
            raise ConfigError(f"opus: frame_ms must be one of 10, 20, 40, 60, got {frame_ms!r}")
        if not 0 <= int(complexity) <= 10:
            raise ConfigError(f"opus: complexity must lie in 0..10, got {complexity!r}")
        if application not in APPLICATIONS:
            raise ConfigError(f"opus: application must be one of {', '.join(APPLICATIONS)}, got {application!r}")
        if not 0 <= int(loss_perc) <= 100:
            raise ConfigError(f"opus: loss_perc must lie in 0..100, got {loss_perc!r}")
        self.bitrate = br
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_ms = float(frame_ms)
        self.frame_samples = int(self.sample_rate_hz * self.frame_ms / 1000)
        self.vbr, self.cvbr = bool(vbr), bool(cvbr)
        self.complexity = int(complexity)
        self.application = application
        self.fec = bool(fec)
        self.loss_perc = int(loss_perc)
        self.dtx = bool(dtx)
        self.delay_samples = self._new_encoder().get(GET_LOOKAHEAD)
        self._last_info: dict[str, Any] = {}

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"bitrate": self.bitrate, "sample_rate_hz": self.sample_rate_hz, "frame_ms": self.frame_ms}
        if not self.vbr or self.cvbr:
            p.update(vbr=self.vbr, cvbr=self.cvbr)
        if self.complexity != 10:
            p["complexity"] = self.complexity
        if self.application != "voip":
            p["application"] = self.application
        if self.fec:
            p.update(fec=True, loss_perc=self.loss_perc)
        if self.dtx:
            p["dtx"] = True
        return p

    def _new_encoder(self) -> _Encoder:
        enc = _Encoder(self.sample_rate_hz, APPLICATIONS[self.application])
        enc.ctl(SET_BITRATE, self.bitrate)
        enc.ctl(SET_VBR, int(self.vbr))
        enc.ctl(SET_VBR_CONSTRAINT, int(self.cvbr))
        enc.ctl(SET_COMPLEXITY, self.complexity)
        enc.ctl(SET_INBAND_FEC, int(self.fec))
        enc.ctl(SET_PACKET_LOSS_PERC, self.loss_perc if self.fec else 0)
        enc.ctl(SET_DTX, int(self.dtx))
        return enc

    def encode_frames(self, samples: np.ndarray) -> list[bytes]:
        enc = self._new_encoder()
        F = self.frame_samples
        out = []
        for i in range(0, samples.size, F):
            pkt = enc.encode(samples[i : i + F])
            # with DTX, libopus marks frames not worth sending with payloads of <= 2 bytes
            out.append(b"" if self.dtx and len(pkt) <= 2 else pkt)
        return out

    def stream_meta(self, frames: list[bytes]) -> dict[str, Any]:
        sent = [f for f in frames if f]
        lbrr = [packet_has_lbrr(f) for f in sent]
        return {
            "lbrr_fraction": float(np.mean(lbrr)) if lbrr else 0.0,
            "lbrr_present": bool(any(lbrr)),
            "dtx_frames": len(frames) - len(sent),
            "libopus": opus_version(),
        }

    def decode_frames(self, frames, concealment):
        dec = _Decoder(self.sample_rate_hz)
        F = self.frame_samples
        n = len(frames)
        out = np.zeros(n * F, dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        fec_used = 0
        for i, fr in enumerate(frames):
            y = None
            if fr is not None and len(fr) > 0:
                y = dec.decode(fr, F)
            elif fr is not None:  # DTX: the decoder's own comfort-noise path
                y = dec.decode(None, F)
                if y is not None:
                    out[i * F : (i + 1) * F] = y
                continue
            if y is None:  # missing, or libopus rejected a corrupt payload
                bad[i] = True
                if concealment == "opus-fec" and i + 1 < n and frames[i + 1] and packet_has_lbrr(frames[i + 1]):
                    y = dec.decode(frames[i + 1], F, fec=True)
                    fec_used += y is not None
                if y is None and concealment in ("opus-plc", "opus-fec"):
                    y = dec.decode(None, F)
            if y is not None:
                out[i * F : (i + 1) * F] = y
        self._last_info = {"lbrr_recovered_frames": fec_used}
        return out, bad

    def decode_info(self) -> dict[str, Any]:
        return dict(self._last_info)
