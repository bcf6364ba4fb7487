"""GSM 06.10 full rate (13 kbit/s) through libgsm 1.0.22 (ctypes), with GSM 06.11 substitution and muting.

Frames are 20 ms at 8 kHz, 33 bytes in the RFC 3551 ``GSM`` payload (the 0xD signature nibble, then the
260 bits of the frame's parameters), which is libgsm's own frame format.

``gsm-plc`` is written here after GSM 06.11 (substitution and muting of lost frames), in the parameter
domain: the first lost frame is the last good frame's parameters decoded again; each further lost frame
repeats them with every sub-block's RPE amplitude ``xmaxc`` lowered by ``GSM_MUTE_STEP`` codes (about 3 dB:
the 6-bit code is a 3-bit exponent of 6 dB steps and a 3-bit mantissa), so the output falls silent after
about 16 frames (320 ms), as 06.11's example solution does. libgsm has no concealment of its own.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import CodecError
from lossbench.native.clib import load_clib

GSM_FRAME_BYTES = 33
#: xmaxc codes taken off per further lost frame (one code is 0.5-6 dB depending on the exponent; 4 is about 3 dB)
GSM_MUTE_STEP = 4
#: the bit offset of sub-block k's 6-bit xmaxc in the 264-bit frame: 4 signature + 36 LAR bits, then 56 bits per
#: sub-block of Nc (7), bc (2), Mc (2), xmaxc (6), 13 x xMc (3)
XMAXC_BIT = tuple(4 + 36 + 56 * k + 11 for k in range(4))
_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        vp = ctypes.c_void_p
        _LIB = load_clib("gsm", "libgsm.so.1", "libgsm1", {
            "gsm_create": (vp, []), "gsm_destroy": (None, [vp]),
            "gsm_encode": (None, [vp, vp, ctypes.c_char_p]), "gsm_decode": (ctypes.c_int, [vp, ctypes.c_char_p, vp]),
        })
    return _LIB


def valid_frame(fr: bytes) -> bool:
    return len(fr) == GSM_FRAME_BYTES and fr[0] >> 4 == 0xD


def attenuated(frame: bytes, steps: int) -> bytes:
    """``frame`` with each sub-block's xmaxc lowered by ``steps`` codes (not below 0)."""
    bits = np.unpackbits(np.frombuffer(frame, dtype=np.uint8))
    for b in XMAXC_BIT:
        v = int("".join(map(str, bits[b : b + 6])), 2)
        v = max(0, v - steps)
        bits[b : b + 6] = [(v >> (5 - j)) & 1 for j in range(6)]
    return np.packbits(bits).tobytes()


@CODECS.register("gsm", "gsm-fr")
class GSM(FrameCodec):
    """GSM 06.10 full rate, 13 kbit/s at 8 kHz."""

    name = "gsm"
    native_concealments: tuple[str, ...] = ("gsm-plc",)
    facts = ("plc_frames",)

    def __init__(self, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        self.sample_rate_hz = 8000
        self.frame_samples = 160
        self.delay_samples = 0  # frame-synchronous (measured: lag 0 on corpus speech)
        lib()

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        g = L.gsm_create()
        if not g:
            raise CodecError("gsm_create failed")
        try:
            pcm = to_int16(samples)
            buf = ctypes.create_string_buffer(GSM_FRAME_BYTES)
            out = []
            for i in range(0, pcm.size, 160):
                fr = np.ascontiguousarray(pcm[i : i + 160])
                L.gsm_encode(g, fr.ctypes.data, buf)
                out.append(buf.raw)
            return out, {}
        finally:
            L.gsm_destroy(g)

    def decode_frames(self, frames, concealment):
        L = lib()
        g = L.gsm_create()
        if not g:
            raise CodecError("gsm_create failed")
        n = len(frames)
        out = np.zeros(n * 160, dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        synth = np.zeros(160, dtype=np.int16)
        last: bytes | None = None
        lost_run = plc = 0
        try:
            for i, fr in enumerate(frames):
                if fr is None or not valid_frame(fr):
                    bad[i] = True
                    if concealment == "gsm-plc" and last is not None:
                        sub = last if lost_run == 0 else attenuated(last, GSM_MUTE_STEP * lost_run)
                        L.gsm_decode(g, sub, synth.ctypes.data)
                        out[i * 160 : (i + 1) * 160] = from_int16(synth)
                        plc += 1
                    lost_run += 1
                    continue
                lost_run = 0
                if L.gsm_decode(g, fr, synth.ctypes.data) != 0:
                    bad[i] = True
                    continue
                last = fr
                out[i * 160 : (i + 1) * 160] = from_int16(synth)
        finally:
            L.gsm_destroy(g)
        return out, bad, {"plc_frames": plc}
