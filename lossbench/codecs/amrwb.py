"""AMR-WB (G.722.2) through ctypes: VisualOn's encoder, opencore's decoder.

All nine modes (6.60 to 23.85 kbit/s), 20 ms frames at 16 kHz, in the
RFC 4867 storage format (a one-byte frame header, then the speech bits).
Concealment ``amrwb-bfi`` hands a missing frame to the decoder as a bad
frame, so the decoder's own concealment (ECU) fills it. A payload whose
header or size does not match its mode counts as lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.modes import pick_mode
from lossbench.errors import CodecError

MODES_KBPS = (6.60, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85)
#: speech bytes per mode, without the 1-byte header (RFC 4867, Table 1 rounded up)
FRAME_BYTES = (17, 23, 32, 36, 40, 46, 50, 58, 60)
SID_BYTES = 5
NO_DATA = bytes([0x7C])  # FT=15 (no data), Q=1

_ENC: ctypes.CDLL | None = None
_DEC: ctypes.CDLL | None = None


def _libs() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    global _ENC, _DEC
    if _ENC is None or _DEC is None:
        try:
            enc = ctypes.CDLL(ctypes.util.find_library("vo-amrwbenc") or "libvo-amrwbenc.so.0")
            dec = ctypes.CDLL(ctypes.util.find_library("opencore-amrwb") or "libopencore-amrwb.so.0")
        except OSError:
            raise CodecError(
                "AMR-WB libraries are not installed: apt-get install libvo-amrwbenc0 libopencore-amrwb0 "
                "(make setup does this as root)"
            ) from None
        enc.E_IF_init.restype = ctypes.c_void_p
        enc.E_IF_encode.restype = ctypes.c_int
        enc.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                    ctypes.c_char_p, ctypes.c_int]
        enc.E_IF_exit.argtypes = [ctypes.c_void_p]
        dec.D_IF_init.restype = ctypes.c_void_p
        dec.D_IF_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_short), ctypes.c_int]
        dec.D_IF_exit.argtypes = [ctypes.c_void_p]
        _ENC, _DEC = enc, dec
    return _ENC, _DEC


def valid_frame(fr: bytes) -> bool:
    """Header and size agree (speech modes 0-8, SID, or no-data)."""
    if not fr:
        return False
    ft = (fr[0] >> 3) & 0x0F
    if ft <= 8:
        return len(fr) == 1 + FRAME_BYTES[ft]
    if ft == 9:
        return len(fr) == 1 + SID_BYTES
    return ft == 15 and len(fr) == 1


@CODECS.register("amrwb", "amr-wb")
class AMRWB(FrameCodec):
    """AMR-WB at one of nine modes.

    Args:
        mode: 0–8, or ``kbps`` (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85).
        dtx: discontinuous transmission (SID frames in silence).
    """

    name = "amrwb"
    native_concealments: tuple[str, ...] = ("amrwb-bfi",)

    def __init__(self, mode: int | None = None, kbps: float | None = None, dtx: bool = False, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        self.mode = pick_mode("amrwb", mode, kbps, MODES_KBPS, 2)
        self.dtx = bool(dtx)
        self.sample_rate_hz = 16000
        self.frame_samples = 320
        # measured: median cross-correlation lag of decoded vs input speech over the
        # default corpus, modes 0, 2 and 8 (93.5-94.8 samples; 5.9 ms)
        self.delay_samples = 94
        _libs()

    @property
    def kbps(self) -> float:
        return MODES_KBPS[self.mode]

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"mode": self.mode}
        if self.dtx:
            p["dtx"] = True
        return p

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        enc, _ = _libs()
        st = enc.E_IF_init()
        if not st:
            raise CodecError("E_IF_init failed")
        try:
            pcm = to_int16(samples)
            buf = ctypes.create_string_buffer(64)
            out = []
            for i in range(0, pcm.size, 320):
                fr = np.ascontiguousarray(pcm[i : i + 320])
                n = enc.E_IF_encode(st, self.mode, fr.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), buf, int(self.dtx))
                if n <= 0:
                    raise CodecError(f"E_IF_encode failed ({n})")
                data = buf.raw[:n]
                ft = (data[0] >> 3) & 0x0F
                out.append(b"" if self.dtx and ft == 15 else data)
            return out, {"dtx_frames": sum(1 for f in out if not f)}
        finally:
            enc.E_IF_exit(st)

    def decode_frames(self, frames, concealment):
        _, dec = _libs()
        st = dec.D_IF_init()
        if not st:
            raise CodecError("D_IF_init failed")
        n = len(frames)
        out = np.zeros(n * 320, dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        synth = np.zeros(320, dtype=np.int16)
        ptr = synth.ctypes.data_as(ctypes.POINTER(ctypes.c_short))
        bfi_count = 0
        try:
            for i, fr in enumerate(frames):
                if fr is not None and len(fr) == 0:  # DTX: no packet sent; the decoder's comfort noise
                    dec.D_IF_decode(st, NO_DATA, ptr, 0)
                    out[i * 320 : (i + 1) * 320] = from_int16(synth)
                    continue
                if fr is None or not valid_frame(fr):
                    bad[i] = True
                    if concealment == "amrwb-bfi":
                        dec.D_IF_decode(st, NO_DATA, ptr, 1)
                        out[i * 320 : (i + 1) * 320] = from_int16(synth)
                        bfi_count += 1
                    continue
                dec.D_IF_decode(st, fr, ptr, 0)
                out[i * 320 : (i + 1) * 320] = from_int16(synth)
        finally:
            dec.D_IF_exit(st)
        return out, bad, {"bfi_frames": bfi_count}

