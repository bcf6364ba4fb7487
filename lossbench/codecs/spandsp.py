"""G.711 (A-law, µ-law) and G.722 through spandsp 0.0.6 (ctypes), with spandsp's packet loss concealer.

Packets carry the RFC 3551 payloads: PCMA / PCMU one byte per 8 kHz sample, G722 one byte per two 16 kHz
samples at 64 kbit/s (mode 1; modes 2 and 3 code 56 and 48 kbit/s and leave the low bits of each byte to
data, which a receiver ignores: the payload stays one byte per sample pair). 20 ms frames by default.

Concealment:

- ``g711-plc``: spandsp's ``plc_rx`` / ``plc_fillin``, a G.711 Appendix I-style concealer (pitch found by
  AMDF over the last 20 ms, the last pitch period repeated with overlap-add, attenuated after 10 ms and
  silent after 60 ms of loss). It is written for 8 kHz: its history, pitch range and OLA are in samples.
- ``g722-plc``: the same concealer run on G.722's 16 kHz output (its pitch search then spans 133–400 Hz
  instead of 67–200 Hz), **and the decoder re-synchronised**: G.722 is ADPCM, so after a gap the decoder's
  predictor and step sizes still hold their pre-gap values while the sender's moved on, and the first frames
  after the gap decode with the wrong state (clicks, a burst of noise; see docs/codecs.md). ``resync``
  chooses what the decoder does about it: ``reencode`` (the default) feeds the concealed audio through a
  shadow G.722 encoder, which has tracked the decoder's own output all along, and decodes its codes so
  that the decoder's state follows the concealed signal; ``reset`` re-initialises the decoder at the first
  good frame after a gap; ``none`` leaves it as it is.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import CodecError, ConfigError
from lossbench.native.clib import load_clib

G711_LAWS = {"alaw": 0, "ulaw": 1}  # spandsp's G711_ALAW, G711_ULAW
G722_MODES = {1: 64000, 2: 56000, 3: 48000}
G722_RESYNC = ("reencode", "reset", "none")
_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        vp, ci = ctypes.c_void_p, ctypes.c_int
        u8p, i16p = ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_int16)
        _LIB = load_clib("spandsp", "libspandsp.so.2", "libspandsp2", {
            "g711_init": (vp, [vp, ci]), "g711_free": (ci, [vp]),
            "g711_encode": (ci, [vp, u8p, i16p, ci]), "g711_decode": (ci, [vp, i16p, u8p, ci]),
            "g722_encode_init": (vp, [vp, ci, ci]), "g722_encode_free": (ci, [vp]),
            "g722_encode": (ci, [vp, u8p, i16p, ci]),
            "g722_decode_init": (vp, [vp, ci, ci]), "g722_decode_free": (ci, [vp]),
            "g722_decode": (ci, [vp, i16p, u8p, ci]),
            "plc_init": (vp, [vp]), "plc_free": (ci, [vp]),
            "plc_rx": (ci, [vp, i16p, ci]), "plc_fillin": (ci, [vp, i16p, ci]),
        })
    return _LIB


def _u8(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))


def _i16(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))


class _Handle:
    """A spandsp state pointer freed with its ``*_free``."""

    def __init__(self, ptr: int | None, free: str) -> None:
        if not ptr:
            raise CodecError(f"spandsp: allocating a state for {free} failed")
        self.ptr: int | None = ptr
        self._free = free

    def close(self) -> None:
        if self.ptr:
            getattr(lib(), self._free)(self.ptr)
            self.ptr = None


def _check_frame_ms(name: str, frame_ms: float, rate: int) -> int:
    fs = rate * float(frame_ms) / 1000.0
    if fs != int(fs) or not 5 <= float(frame_ms) <= 120:
        raise ConfigError(f"{name}: frame_ms must be a whole number of samples at {rate} Hz between 5 and 120, "
                          f"got {frame_ms!r}")
    return int(fs)


@CODECS.register("g711", "pcma", "pcmu")
class G711(FrameCodec):
    """ITU-T G.711 at 8 kHz, 64 kbit/s.

    Args:
        law: ``alaw`` (PCMA, RTP payload type 8) or ``ulaw`` (PCMU, type 0).
        frame_ms: packet duration (RFC 3551's default is 20 ms).
    """

    name = "g711"
    native_concealments: tuple[str, ...] = ("g711-plc",)
    facts = ("plc_frames",)

    def __init__(self, law: str = "alaw", frame_ms: float = 20.0, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        if law not in G711_LAWS:
            raise ConfigError(f"g711: law must be one of {', '.join(G711_LAWS)}, got {law!r}")
        self.law = law
        self.sample_rate_hz = 8000
        self.frame_ms = float(frame_ms)
        self.frame_samples = _check_frame_ms("g711", frame_ms, 8000)
        self.delay_samples = 0  # sample-by-sample companding
        lib()

    @property
    def payload_type(self) -> int:
        return 8 if self.law == "alaw" else 0

    def codec_params(self) -> dict[str, Any]:
        return {"law": self.law, "frame_ms": self.frame_ms}

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        st = _Handle(L.g711_init(None, G711_LAWS[self.law]), "g711_free")
        try:
            pcm = np.ascontiguousarray(to_int16(samples))
            out = np.zeros(pcm.size, dtype=np.uint8)
            L.g711_encode(st.ptr, _u8(out), _i16(pcm), pcm.size)
        finally:
            st.close()
        F = self.frame_samples
        return [out[i : i + F].tobytes() for i in range(0, out.size, F)], {}

    def decode_frames(self, frames, concealment):
        L = lib()
        F = self.frame_samples
        st = _Handle(L.g711_init(None, G711_LAWS[self.law]), "g711_free")
        plc = _Handle(L.plc_init(None), "plc_free") if concealment == "g711-plc" else None
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        buf = np.zeros(F, dtype=np.int16)
        filled = 0
        try:
            for i, fr in enumerate(frames):
                if fr is None or len(fr) != F:
                    bad[i] = True
                    if plc is not None:
                        L.plc_fillin(plc.ptr, _i16(buf), F)
                        out[i * F : (i + 1) * F] = from_int16(buf)
                        filled += 1
                    continue
                codes = np.frombuffer(fr, dtype=np.uint8).copy()
                L.g711_decode(st.ptr, _i16(buf), _u8(codes), F)
                if plc is not None:
                    L.plc_rx(plc.ptr, _i16(buf), F)  # keeps its history; smooths the first frame after a gap
                out[i * F : (i + 1) * F] = from_int16(buf)
        finally:
            st.close()
            if plc is not None:
                plc.close()
        return out, bad, {"plc_frames": filled}


@CODECS.register("g722")
class G722(FrameCodec):
    """ITU-T G.722 sub-band ADPCM at 16 kHz (spandsp, bit exact to the ITU test vectors).

    Args:
        mode: 1 (64 kbit/s), 2 (56) or 3 (48); ``kbps`` names the rate instead.
        frame_ms: packet duration (RFC 3551: 20 ms).
        resync: what ``g722-plc`` does to the decoder's ADPCM state after a gap: ``reencode`` (the default),
            ``reset`` or ``none`` (see the module).
        pcm_shift: bits the encoder's input is shifted right and the decoder's output left (0-2). PJSIP's G.722
            does this by default (``PJMEDIA_G722_DEFAULT_PCM_SHIFT = 1``, against overflow), which costs about
            0.44 PESQ-WB on clean speech (4.507 to 4.065, en_00); ``pcm_shift=1`` models it (live mode's pjsua twin).
    """

    name = "g722"
    native_concealments: tuple[str, ...] = ("g722-plc",)
    facts = ("plc_frames", "resynced_gaps")

    def __init__(self, mode: int | None = None, kbps: float | None = None, frame_ms: float = 20.0,
                 resync: str = "reencode", pcm_shift: int = 0, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        if mode is not None and kbps is not None:
            raise ConfigError("g722: give mode or kbps, not both")
        if int(pcm_shift) != pcm_shift or not 0 <= int(pcm_shift) <= 2:
            raise ConfigError(f"g722: pcm_shift must be 0, 1 or 2 bits, got {pcm_shift!r}")
        self.pcm_shift = int(pcm_shift)
        if kbps is not None:
            match = [m for m, r in G722_MODES.items() if abs(r / 1000 - float(kbps)) < 1e-6]
            if not match:
                raise ConfigError(f"g722: kbps must be one of 64, 56, 48, got {kbps!r}")
            mode = match[0]
        mode = 1 if mode is None else mode
        if mode not in G722_MODES:
            raise ConfigError(f"g722: mode must be 1 (64 kbit/s), 2 (56) or 3 (48), got {mode!r}")
        if resync not in G722_RESYNC:
            raise ConfigError(f"g722: resync must be one of {', '.join(G722_RESYNC)}, got {resync!r}")
        self.mode, self.resync = int(mode), resync
        self.sample_rate_hz = 16000
        self.frame_ms = float(frame_ms)
        self.frame_samples = _check_frame_ms("g722", frame_ms, 16000)
        if self.frame_samples % 2:
            raise ConfigError(f"g722: frame_ms={frame_ms!r} is an odd number of samples (G.722 codes sample pairs)")
        # the QMF analysis and synthesis filters: 2 x 11 samples at 16 kHz (measured on corpus speech: 22)
        self.delay_samples = 22
        lib()

    @property
    def bitrate(self) -> int:
        return G722_MODES[self.mode]

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"mode": self.mode, "frame_ms": self.frame_ms}
        if self.resync != "reencode":
            p["resync"] = self.resync
        if self.pcm_shift:
            p["pcm_shift"] = self.pcm_shift
        return p

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        st = _Handle(L.g722_encode_init(None, self.bitrate, 0), "g722_encode_free")
        try:
            pcm = np.ascontiguousarray(to_int16(samples) >> self.pcm_shift)
            out = np.zeros(pcm.size // 2, dtype=np.uint8)
            n = L.g722_encode(st.ptr, _u8(out), _i16(pcm), pcm.size)
            if n != out.size:
                raise CodecError(f"g722_encode gave {n} bytes for {pcm.size} samples")
        finally:
            st.close()
        B = self.frame_samples // 2
        return [out[i : i + B].tobytes() for i in range(0, out.size, B)], {}

    def _unshift(self, buf: np.ndarray) -> np.ndarray:
        if not self.pcm_shift:
            return from_int16(buf)
        return from_int16(np.clip(buf.astype(np.int32) << self.pcm_shift, -32768, 32767).astype(np.int16))

    def decode_frames(self, frames, concealment):
        L = lib()
        F, B = self.frame_samples, self.frame_samples // 2
        native = concealment == "g722-plc"
        dec = _Handle(L.g722_decode_init(None, self.bitrate, 0), "g722_decode_free")
        plc = _Handle(L.plc_init(None), "plc_free") if native else None
        shadow = (_Handle(L.g722_encode_init(None, self.bitrate, 0), "g722_encode_free")
                  if native and self.resync == "reencode" else None)
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        buf = np.zeros(F, dtype=np.int16)
        codes = np.zeros(B, dtype=np.uint8)
        scratch = np.zeros(F, dtype=np.int16)  # the decoder's output while it follows the concealment
        filled = resynced = 0
        in_gap = False
        try:
            for i, fr in enumerate(frames):
                if fr is None or len(fr) != B:
                    bad[i] = True
                    if plc is not None:
                        L.plc_fillin(plc.ptr, _i16(buf), F)
                        out[i * F : (i + 1) * F] = self._unshift(buf)
                        filled += 1
                        if shadow is not None:  # the decoder's state follows the concealed audio
                            L.g722_encode(shadow.ptr, _u8(codes), _i16(buf), F)
                            L.g722_decode(dec.ptr, _i16(scratch), _u8(codes), B)
                    in_gap = True
                    continue
                if in_gap and native:
                    resynced += 1
                    if self.resync == "reset":
                        dec.close()
                        dec = _Handle(L.g722_decode_init(None, self.bitrate, 0), "g722_decode_free")
                in_gap = False
                c = np.frombuffer(fr, dtype=np.uint8).copy()
                n = L.g722_decode(dec.ptr, _i16(buf), _u8(c), B)
                if n != F:
                    raise CodecError(f"g722_decode gave {n} samples for {B} bytes")
                if plc is not None:
                    L.plc_rx(plc.ptr, _i16(buf), F)
                if shadow is not None:  # tracks the decoder: it codes what the decoder put out
                    L.g722_encode(shadow.ptr, _u8(codes), _i16(buf), F)
                out[i * F : (i + 1) * F] = self._unshift(buf)
        finally:
            dec.close()
            for h in (plc, shadow):
                if h is not None:
                    h.close()
        return out, bad, {"plc_frames": filled, "resynced_gaps": resynced if native and self.resync != "none" else 0}
