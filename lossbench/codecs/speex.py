"""Speex 1.2.1 through libspeex (ctypes): narrowband (8 kHz), wideband (16 kHz) and ultra-wideband (32 kHz).

20 ms frames, one per packet, each the bytes ``speex_bits_write`` gives for one frame: the RFC 5574 payload
of one Speex frame (padded to whole octets as libspeex pads). Options as libspeex names them: ``quality``
0–10 (CBR) or, with ``vbr``, the VBR quality; ``complexity`` 1–10; ``vad`` / ``dtx``.

``speex-plc`` is libspeex's own concealment: ``speex_decode_int`` with no bits extrapolates the excitation
and the LPC of the last frame and fades them; ``plc_tuning`` (``SPEEX_SET_PLC_TUNING``, the expected loss in
percent, 0–100) tunes the encoder to lean less on the previous frame. The decoder's perceptual enhancement is
on, as ``speexdec`` runs it (``enh`` turns it off).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import CodecError, ConfigError
from lossbench.native.clib import load_clib

SPEEX_MODES = {"nb": (0, 8000), "wb": (1, 16000), "uwb": (2, 32000)}
SET_ENH, GET_FRAME_SIZE, SET_QUALITY, SET_VBR, SET_VBR_QUALITY = 0, 3, 4, 12, 14
SET_COMPLEXITY, SET_VAD, SET_DTX, GET_LOOKAHEAD, SET_PLC_TUNING = 16, 30, 34, 39, 40
_BITS_SIZE = 64  # sizeof(SpeexBits) is 48 on LP64; room to spare
_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        vp, ci, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        _LIB = load_clib("speex", "libspeex.so.1", "libspeex1", {
            "speex_lib_get_mode": (vp, [ci]), "speex_encoder_init": (vp, [vp]), "speex_decoder_init": (vp, [vp]),
            "speex_encoder_destroy": (None, [vp]), "speex_decoder_destroy": (None, [vp]),
            "speex_encoder_ctl": (ci, [vp, ci, vp]), "speex_decoder_ctl": (ci, [vp, ci, vp]),
            "speex_bits_init": (None, [vp]), "speex_bits_destroy": (None, [vp]), "speex_bits_reset": (None, [vp]),
            "speex_bits_write": (ci, [vp, cp, ci]), "speex_bits_read_from": (None, [vp, cp, ci]),
            "speex_encode_int": (ci, [vp, vp, vp]), "speex_decode_int": (ci, [vp, vp, vp]),
        })
    return _LIB


def _ctl(fn, st, req: int, value: int | None = None) -> int:
    v = ctypes.c_int(0 if value is None else int(value))
    if fn(st, req, ctypes.byref(v)) != 0:
        raise CodecError(f"speex ctl {req} failed")
    return v.value


@CODECS.register("speex")
class Speex(FrameCodec):
    """Speex at one mode and quality.

    Args:
        mode: ``nb`` (8 kHz), ``wb`` (16 kHz) or ``uwb`` (32 kHz).
        quality: 0–10 (``vbr``: the VBR quality, 0–10).
        vbr: variable bitrate.
        complexity: 1–10 (libspeex's default is 2; speexenc's is 3).
        vad, dtx: voice activity detection and discontinuous transmission (DTX frames are still sent).
        plc_tuning: the encoder's expected loss in percent (0–100).
        enh: the decoder's perceptual enhancement (on, as speexdec).
    """

    name = "speex"
    native_concealments: tuple[str, ...] = ("speex-plc",)
    facts = ("plc_frames",)

    def __init__(self, mode: str = "wb", quality: int = 8, vbr: bool = False, complexity: int = 3,
                 vad: bool = False, dtx: bool = False, plc_tuning: int | None = None, enh: bool = True,
                 **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        if mode not in SPEEX_MODES:
            raise ConfigError(f"speex: mode must be one of {', '.join(SPEEX_MODES)}, got {mode!r}")
        if int(quality) != quality or not 0 <= quality <= 10:
            raise ConfigError(f"speex: quality must be an integer 0..10, got {quality!r}")
        if int(complexity) != complexity or not 1 <= complexity <= 10:
            raise ConfigError(f"speex: complexity must be an integer 1..10, got {complexity!r}")
        if plc_tuning is not None and (int(plc_tuning) != plc_tuning or not 0 <= plc_tuning <= 100):
            raise ConfigError(f"speex: plc_tuning must be an integer percentage 0..100, got {plc_tuning!r}")
        self.mode, self.quality, self.vbr, self.complexity = mode, int(quality), bool(vbr), int(complexity)
        self.vad, self.dtx, self.plc_tuning, self.enh = bool(vad), bool(dtx), plc_tuning, bool(enh)
        self.sample_rate_hz = SPEEX_MODES[mode][1]
        L = lib()
        st = self._encoder()
        try:
            self.frame_samples = _ctl(L.speex_encoder_ctl, st, GET_FRAME_SIZE)
        finally:
            L.speex_encoder_destroy(st)
        # CBR without VAD/DTX gives every frame the same size: a payload of another size is corrupt (the Speex
        # bitstream has no length or check of its own, so a truncated frame would otherwise decode)
        self.cbr_bytes: int | None = None
        if not (self.vbr or self.vad or self.dtx):
            self.cbr_bytes = len(self.encode_frames(np.zeros(self.frame_samples, np.float32))[0][0])
        # measured: median cross-correlation lag of decoded against input corpus speech (12 clips); libspeex's
        # SPEEX_GET_LOOKAHEAD reports only the encoder's part (40 / 143 / 270)
        self.delay_samples = {"nb": 78, "wb": 222, "uwb": 506}[mode]

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"mode": self.mode, "quality": self.quality}
        for k in ("vbr", "vad", "dtx"):
            if getattr(self, k):
                p[k] = True
        if self.complexity != 3:
            p["complexity"] = self.complexity
        if self.plc_tuning is not None:
            p["plc_tuning"] = self.plc_tuning
        if not self.enh:
            p["enh"] = False
        return p

    def _encoder(self):
        L = lib()
        st = L.speex_encoder_init(L.speex_lib_get_mode(SPEEX_MODES[self.mode][0]))
        if not st:
            raise CodecError("speex_encoder_init failed")
        if self.vbr:
            _ctl(L.speex_encoder_ctl, st, SET_VBR, 1)
            f = ctypes.c_float(float(self.quality))
            L.speex_encoder_ctl(st, SET_VBR_QUALITY, ctypes.byref(f))
        else:
            _ctl(L.speex_encoder_ctl, st, SET_QUALITY, self.quality)
        _ctl(L.speex_encoder_ctl, st, SET_COMPLEXITY, self.complexity)
        if self.vad:
            _ctl(L.speex_encoder_ctl, st, SET_VAD, 1)
        if self.dtx:
            _ctl(L.speex_encoder_ctl, st, SET_DTX, 1)
        if self.plc_tuning is not None:
            _ctl(L.speex_encoder_ctl, st, SET_PLC_TUNING, self.plc_tuning)
        return st

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        st = self._encoder()
        bits = ctypes.create_string_buffer(_BITS_SIZE)
        L.speex_bits_init(bits)
        try:
            pcm = to_int16(samples)
            F = self.frame_samples
            buf = ctypes.create_string_buffer(512)
            out = []
            for i in range(0, pcm.size, F):
                fr = np.ascontiguousarray(pcm[i : i + F])
                L.speex_bits_reset(bits)
                L.speex_encode_int(st, fr.ctypes.data, bits)
                n = L.speex_bits_write(bits, buf, 512)
                out.append(buf.raw[:n])
            return out, {}
        finally:
            L.speex_bits_destroy(bits)
            L.speex_encoder_destroy(st)

    def decode_frames(self, frames, concealment):
        L = lib()
        st = L.speex_decoder_init(L.speex_lib_get_mode(SPEEX_MODES[self.mode][0]))
        if not st:
            raise CodecError("speex_decoder_init failed")
        _ctl(L.speex_decoder_ctl, st, SET_ENH, int(self.enh))
        bits = ctypes.create_string_buffer(_BITS_SIZE)
        L.speex_bits_init(bits)
        F = self.frame_samples
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        synth = np.zeros(F, dtype=np.int16)
        plc = 0
        try:
            for i, fr in enumerate(frames):
                if fr is not None and len(fr) > 0 and (self.cbr_bytes is None or len(fr) == self.cbr_bytes):
                    L.speex_bits_read_from(bits, fr, len(fr))
                    if L.speex_decode_int(st, bits, synth.ctypes.data) == 0:
                        out[i * F : (i + 1) * F] = from_int16(synth)
                        continue
                bad[i] = True  # missing, the wrong size (CBR), or bits that did not decode (-1, -2)
                if concealment == "speex-plc":
                    L.speex_decode_int(st, None, synth.ctypes.data)
                    out[i * F : (i + 1) * F] = from_int16(synth)
                    plc += 1
        finally:
            L.speex_bits_destroy(bits)
            L.speex_decoder_destroy(st)
        return out, bad, {"plc_frames": plc}
