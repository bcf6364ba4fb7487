"""AMR-NB (3GPP TS 26.071) through opencore-amrnb 0.1.6 (ctypes), encoder and decoder.

Eight modes, 4.75 to 12.2 kbit/s, 20 ms frames at 8 kHz. Each packet is an RFC 4867 octet-aligned RTP
payload of one frame: the CMR byte (15, no mode request), the table-of-contents byte (F = 0, FT, Q), then the
speech bits padded to whole octets. The ToC byte and the speech bits are what opencore's interface reads
and writes (RFC 4867's storage form), so the payload is ``CMR + frame``. With
``dtx`` the encoder sends SID frames in silence and no frame at all between them. ``amrnb-bfi`` gives a
missing frame to the decoder as a bad frame (``bfi = 1``), so its own concealment (TS 26.091 substitution
and muting) fills it. A payload whose header or size does not match its type counts as lost.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.modes import pick_mode
from lossbench.errors import CodecError
from lossbench.native.clib import load_clib

MODES_KBPS = (4.75, 5.15, 5.90, 6.70, 7.40, 7.95, 10.2, 12.2)
#: speech bytes per mode without the header (RFC 4867 Table 1: class A+B+C bits, rounded up to bytes)
FRAME_BYTES = (12, 13, 15, 17, 19, 20, 26, 31)
SID_BYTES = 5
NO_DATA = bytes([0x7C])  # FT = 15, Q = 1
CMR_NONE = 0xF0  # CMR = 15 (no mode request), 4 reserved zero bits
_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        vp, ci, sp = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short)
        _LIB = load_clib("opencore-amrnb", "libopencore-amrnb.so.0", "libopencore-amrnb0", {
            "Encoder_Interface_init": (vp, [ci]), "Encoder_Interface_exit": (None, [vp]),
            "Encoder_Interface_Encode": (ci, [vp, ci, sp, ctypes.c_char_p, ci]),
            "Decoder_Interface_init": (vp, []), "Decoder_Interface_exit": (None, [vp]),
            "Decoder_Interface_Decode": (None, [vp, ctypes.c_char_p, sp, ci]),
        })
    return _LIB


def valid_frame(fr: bytes) -> bool:
    """An octet-aligned payload of one frame: the CMR byte, a ToC with F = 0, and as many bytes as its FT takes."""
    if len(fr) < 2 or fr[0] & 0x0F or fr[1] & 0x80:
        return False
    fr = fr[1:]
    ft = (fr[0] >> 3) & 0x0F
    if ft <= 7:
        return len(fr) == 1 + FRAME_BYTES[ft]
    if ft == 8:
        return len(fr) == 1 + SID_BYTES
    return ft == 15 and len(fr) == 1


@CODECS.register("amrnb", "amr-nb", "amr")
class AMRNB(FrameCodec):
    """AMR-NB at one of eight modes.

    Args:
        mode: 0–7 (MR475 ... MR122), or ``kbps`` (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2).
        dtx: discontinuous transmission.
    """

    name = "amrnb"
    native_concealments: tuple[str, ...] = ("amrnb-bfi",)
    facts = ("dtx_frames", "bfi_frames")

    def __init__(self, mode: int | None = None, kbps: float | None = None, dtx: bool = False, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        self.mode, self.dtx = pick_mode("amrnb", mode, kbps, MODES_KBPS, 7), bool(dtx)
        self.sample_rate_hz = 8000
        self.frame_samples = 160
        # measured: median cross-correlation lag of decoded against input corpus speech, 12 clips, modes 0 and 7
        # (38 samples, 4.75 ms: the encoder's 5 ms look-ahead)
        self.delay_samples = 38
        lib()

    @property
    def kbps(self) -> float:
        return MODES_KBPS[self.mode]

    @property
    def emodel_key(self) -> str:
        """G.113 Appendix I tabulates AMR-NB per mode: ``amrnb@<kbit/s>``."""
        return f"amrnb@{self.kbps:g}"

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"mode": self.mode}
        if self.dtx:
            p["dtx"] = True
        return p

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        st = L.Encoder_Interface_init(int(self.dtx))
        if not st:
            raise CodecError("Encoder_Interface_init failed")
        try:
            pcm = to_int16(samples)
            buf = ctypes.create_string_buffer(64)
            out = []
            for i in range(0, pcm.size, 160):
                fr = np.ascontiguousarray(pcm[i : i + 160])
                n = L.Encoder_Interface_Encode(st, self.mode, fr.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), buf, 0)
                if n <= 0:
                    raise CodecError(f"Encoder_Interface_Encode failed ({n})")
                data = buf.raw[:n]
                out.append(b"" if self.dtx and (data[0] >> 3) & 0x0F == 15 else bytes([CMR_NONE]) + data)
            return out, {"dtx_frames": sum(1 for f in out if not f)}
        finally:
            L.Encoder_Interface_exit(st)

    def decode_frames(self, frames, concealment):
        L = lib()
        st = L.Decoder_Interface_init()
        if not st:
            raise CodecError("Decoder_Interface_init failed")
        n = len(frames)
        out = np.zeros(n * 160, dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        synth = np.zeros(160, dtype=np.int16)
        ptr = synth.ctypes.data_as(ctypes.POINTER(ctypes.c_short))
        bfi = 0
        last_mode = self.mode  # a bad frame is handed over with the last speech mode's header (bfi = 1)
        try:
            for i, fr in enumerate(frames):
                if fr is not None and len(fr) == 0:  # DTX: nothing sent, the decoder's comfort noise
                    L.Decoder_Interface_Decode(st, NO_DATA, ptr, 0)
                    out[i * 160 : (i + 1) * 160] = from_int16(synth)
                    continue
                if fr is None or not valid_frame(fr):
                    bad[i] = True
                    if concealment == "amrnb-bfi":
                        filler = bytes([(last_mode << 3) | 0x04]) + bytes(FRAME_BYTES[last_mode])
                        L.Decoder_Interface_Decode(st, filler, ptr, 1)
                        out[i * 160 : (i + 1) * 160] = from_int16(synth)
                        bfi += 1
                    continue
                fr = fr[1:]  # the ToC byte and the speech bits, as opencore reads them
                if (fr[0] >> 3) & 0x0F <= 7:
                    last_mode = (fr[0] >> 3) & 0x0F
                L.Decoder_Interface_Decode(st, fr, ptr, 0)
                out[i * 160 : (i + 1) * 160] = from_int16(synth)
        finally:
            L.Decoder_Interface_exit(st)
        return out, bad, {"bfi_frames": bfi}
