"""LC3 (Bluetooth LE Audio's Low Complexity Communication Codec) through liblc3 (Debian ``liblc3-0``, ctypes).

liblc3 1.0.1: 7.5 and 10 ms frames at 8, 16, 24, 32 or 48 kHz, any bitrate from 16 to 320 kbit/s in whole
bytes per frame. Each packet carries one frame as LC3 produces it (the ISO SDU of Bluetooth LE Audio; no RTP
payload format for LC3 is an RFC, so there is no header beyond RTP's). ``lc3-plc`` is liblc3's own
concealment, run by calling ``lc3_decode`` with no frame (it then returns 1, "concealed"): it extrapolates
the last decoded MDCT spectrum with sign scrambling and fades it, as the LC3 specification's standard PLC
does. A payload of the wrong size counts as lost.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import CodecError, ConfigError
from lossbench.native.clib import load_clib

LC3_RATES = (8000, 16000, 24000, 32000, 48000)
LC3_FRAME_MS = (7.5, 10.0)
_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        ci, vp = ctypes.c_int, ctypes.c_void_p
        _LIB = load_clib("lc3", "liblc3.so.0", "liblc3-0", {
            "lc3_frame_samples": (ci, [ci, ci]), "lc3_frame_bytes": (ci, [ci, ci]),
            "lc3_resolve_bitrate": (ci, [ci, ci]), "lc3_delay_samples": (ci, [ci, ci]),
            "lc3_encoder_size": (ctypes.c_uint, [ci, ci]), "lc3_decoder_size": (ctypes.c_uint, [ci, ci]),
            "lc3_setup_encoder": (vp, [ci, ci, ci, vp]), "lc3_setup_decoder": (vp, [ci, ci, ci, vp]),
            "lc3_encode": (ci, [vp, ci, vp, ci, ci, vp]), "lc3_decode": (ci, [vp, vp, ci, ci, vp, ci]),
        })
    return _LIB


@CODECS.register("lc3")
class LC3(FrameCodec):
    """LC3 at one frame duration, sample rate and bitrate.

    Args:
        bitrate: target bit/s (``kbps`` in kbit/s); rounded down to whole bytes per frame, as liblc3 does.
        frame_ms: 7.5 or 10 (the frame duration, ``frame_duration`` in the specification).
        sample_rate_hz: 8000, 16000, 24000, 32000 or 48000.
    """

    name = "lc3"
    native_concealments: tuple[str, ...] = ("lc3-plc",)
    facts = ("plc_frames",)

    def __init__(self, bitrate: int | None = None, kbps: float | None = None, frame_ms: float = 10.0,
                 sample_rate_hz: int = 16000, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        if bitrate is not None and kbps is not None:
            raise ConfigError("lc3: give bitrate (bit/s) or kbps, not both")
        if float(frame_ms) not in LC3_FRAME_MS:
            raise ConfigError(f"lc3: frame_ms must be 7.5 or 10 (liblc3 1.0.1), got {frame_ms!r}")
        if int(sample_rate_hz) not in LC3_RATES:
            raise ConfigError(f"lc3: sample_rate_hz must be one of {', '.join(map(str, LC3_RATES))}, "
                              f"got {sample_rate_hz!r}")
        br = int(round(float(kbps) * 1000)) if kbps is not None else int(bitrate if bitrate is not None else 32000)
        if not 16000 <= br <= 320000:
            raise ConfigError(f"lc3: bitrate must lie in [16000, 320000] bit/s, got {br}")
        L = lib()
        self.frame_ms = float(frame_ms)
        self.dt_us = int(round(self.frame_ms * 1000))
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = L.lc3_frame_samples(self.dt_us, self.sample_rate_hz)
        self.frame_bytes = L.lc3_frame_bytes(self.dt_us, br)
        if self.frame_samples <= 0 or not 20 <= self.frame_bytes <= 400:
            raise ConfigError(f"lc3: {br} bit/s at {self.frame_ms} ms gives {self.frame_bytes} bytes per frame; "
                              f"liblc3 takes 20..400")
        self.bitrate = L.lc3_resolve_bitrate(self.dt_us, self.frame_bytes)
        self.delay_samples = L.lc3_delay_samples(self.dt_us, self.sample_rate_hz)

    def codec_params(self) -> dict[str, Any]:
        return {"bitrate": self.bitrate, "frame_ms": self.frame_ms, "sample_rate_hz": self.sample_rate_hz}

    def _state(self, encoder: bool) -> tuple[ctypes.Array, int]:
        L = lib()
        size = (L.lc3_encoder_size if encoder else L.lc3_decoder_size)(self.dt_us, self.sample_rate_hz)
        mem = ctypes.create_string_buffer(size)
        setup = L.lc3_setup_encoder if encoder else L.lc3_setup_decoder
        h = setup(self.dt_us, self.sample_rate_hz, self.sample_rate_hz, ctypes.cast(mem, ctypes.c_void_p))
        if not h:
            raise CodecError(f"lc3_setup_{'encoder' if encoder else 'decoder'} failed")
        return mem, h  # the handle lives in mem: keep both

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        mem, enc = self._state(True)
        pcm = np.ascontiguousarray(to_int16(samples))
        F, B = self.frame_samples, self.frame_bytes
        out = ctypes.create_string_buffer(B)
        frames = []
        for i in range(0, pcm.size, F):
            fr = np.ascontiguousarray(pcm[i : i + F])
            if L.lc3_encode(enc, 0, fr.ctypes.data, 1, B, ctypes.cast(out, ctypes.c_void_p)) != 0:
                raise CodecError(f"lc3_encode failed at frame {i // F}")
            frames.append(out.raw[:B])
        del mem
        return frames, {}

    def decode_frames(self, frames, concealment):
        L = lib()
        mem, dec = self._state(False)
        F, B = self.frame_samples, self.frame_bytes
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        buf = np.zeros(F, dtype=np.int16)
        plc = 0
        for i, fr in enumerate(frames):
            if fr is None or len(fr) != B:
                bad[i] = True
                if concealment == "lc3-plc":
                    if L.lc3_decode(dec, None, 0, 0, buf.ctypes.data, 1) != 1:
                        raise CodecError("lc3_decode did not conceal a missing frame")
                    out[i * F : (i + 1) * F] = from_int16(buf)
                    plc += 1
                continue
            r = L.lc3_decode(dec, fr, B, 0, buf.ctypes.data, 1)
            if r < 0:
                raise CodecError(f"lc3_decode failed ({r}) at frame {i}")
            if r == 1:  # the frame did not decode: liblc3 concealed it (its CRC-less bitstream checks)
                bad[i] = True
                if concealment != "lc3-plc":
                    continue
                plc += 1
            out[i * F : (i + 1) * F] = from_int16(buf)
        del mem
        return out, bad, {"plc_frames": plc}
