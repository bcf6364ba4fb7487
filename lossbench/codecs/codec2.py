"""Codec 2 (David Rowe's low-rate speech codec) through libcodec2 1.0.5 (ctypes), 8 kHz.

Modes 3200, 2400 (20 ms frames), 1600, 1400, 1300, 1200, 700C and 450 (40 ms frames), in bit/s. A frame is
``codec2_bytes_per_frame`` bytes, packed as ``c2enc`` writes them (its headerless ``.bin``), one frame per
packet; there is no RTP payload format for Codec 2.

libcodec2 keeps one piece of decoder state outside the decoder object: the seed of its random phases (see
:func:`_rand_state`); each decode resets it to c2dec's start, under a lock, so that decodes do not depend on
one another.

Codec 2 leaves concealment to the application. ``codec2-repeat`` is written here, in the parameter domain:
a lost frame is the last good frame's bits decoded again (the decoder interpolates its model parameters
from them, so pitch and spectral envelope hold), with the output faded by ``CODEC2_FADE_DB`` per further
lost frame and silent after ``CODEC2_MUTE_FRAMES`` lost frames in a row.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import CodecError, ConfigError
from lossbench.native.clib import load_clib

#: libcodec2's CODEC2_MODE_* numbers
CODEC2_MODES = {"3200": 0, "2400": 1, "1600": 2, "1400": 3, "1300": 4, "1200": 5, "700C": 8, "450": 10}
#: output delay per mode in samples: the median lag of the energy envelope of decoded corpus speech against the
#: input (12 clips; a parametric codec keeps no waveform phase, so the waveform's cross-correlation cannot say)
CODEC2_DELAY = {"3200": 140, "2400": 140, "1600": 140, "1400": 146, "1300": 146, "1200": 146, "700C": 225, "450": 168}
CODEC2_FADE_DB = 3.0
CODEC2_MUTE_FRAMES = 8
_LIB: ctypes.CDLL | None = None
_RAND_STATE: ctypes.c_ulong | None = None
_DECODE_LOCK = threading.Lock()


def _rand_state(L: ctypes.CDLL) -> ctypes.c_ulong:
    """libcodec2's hidden decoder state: ``codec2_rand``'s seed, a ``static unsigned long`` of the library (the
    unvoiced phases of every mode below 3200 are drawn from it), so a decode depends on every decode before it
    in the process, unlike ``c2dec``, which starts from seed 1. The seed is found from ``codec2_rand``'s code
    (x86-64: ``imul rax, [rip+d], 1103515245`` and ``mov [rip+d'], rax`` name it) and checked: set to 1, the
    next draw must be 16838, the first draw of that generator from seed 1."""
    global _RAND_STATE
    if _RAND_STATE is None:
        import platform

        addr = ctypes.cast(L.codec2_rand, ctypes.c_void_p).value
        if addr is None:
            raise CodecError("codec2: codec2_rand has no address in the loaded library")
        code = ctypes.string_at(addr, 64)
        found = set()
        for i in range(len(code) - 7):
            if code[i : i + 3] in (b"\x48\x69\x05", b"\x48\x89\x05", b"\x48\x8b\x05"):
                disp = int.from_bytes(code[i + 3 : i + 7], "little", signed=True)
                length = 11 if code[i + 1] == 0x69 else 7
                found.add(addr + i + length + disp)
        if platform.machine() not in ("x86_64", "AMD64") or len(found) != 1:
            raise CodecError("codec2: cannot find libcodec2's random seed (codec2_rand) on this machine, so its "
                             "decodes would depend on each other; lossbench's Codec 2 needs x86-64")
        state = ctypes.c_ulong.from_address(found.pop())
        state.value = 1
        ok = L.codec2_rand() == 16838
        state.value = 1
        if not ok:
            raise CodecError("codec2: the seed found in codec2_rand's code did not behave as its seed")
        _RAND_STATE = state
    return _RAND_STATE


def lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        vp, ci = ctypes.c_void_p, ctypes.c_int
        _LIB = load_clib("codec2", "libcodec2.so.1.0", "libcodec2-1.0", {
            "codec2_create": (vp, [ci]), "codec2_destroy": (None, [vp]), "codec2_rand": (ci, []),
            "codec2_bits_per_frame": (ci, [vp]), "codec2_bytes_per_frame": (ci, [vp]),
            "codec2_samples_per_frame": (ci, [vp]),
            "codec2_encode": (None, [vp, ctypes.c_char_p, vp]), "codec2_decode": (None, [vp, vp, ctypes.c_char_p]),
        })
    return _LIB


@CODECS.register("codec2")
class Codec2(FrameCodec):
    """Codec 2 at one mode.

    Args:
        mode: 3200, 2400, 1600, 1400, 1300, 1200, 700C or 450 (bit/s).
    """

    name = "codec2"
    native_concealments: tuple[str, ...] = ("codec2-repeat",)
    facts = ("plc_frames",)

    def __init__(self, mode: str | int = "3200", **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        m = str(mode).upper()
        if m not in CODEC2_MODES:
            raise ConfigError(f"codec2: mode must be one of {', '.join(CODEC2_MODES)}, got {mode!r}")
        self.mode = m
        L = lib()
        c = L.codec2_create(CODEC2_MODES[m])
        if not c:
            raise CodecError(f"codec2_create({m}) failed")
        try:
            self.frame_samples = L.codec2_samples_per_frame(c)
            self.frame_bytes = L.codec2_bytes_per_frame(c)
            self.frame_bits = L.codec2_bits_per_frame(c)
        finally:
            L.codec2_destroy(c)
        self.sample_rate_hz = 8000
        self.delay_samples = CODEC2_DELAY[m]

    def codec_params(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        L = lib()
        c = L.codec2_create(CODEC2_MODES[self.mode])
        try:
            pcm = to_int16(samples)
            buf = ctypes.create_string_buffer(self.frame_bytes)
            F = self.frame_samples
            out = []
            for i in range(0, pcm.size, F):
                fr = np.ascontiguousarray(pcm[i : i + F])
                L.codec2_encode(c, buf, fr.ctypes.data)
                out.append(buf.raw)
            return out, {}
        finally:
            L.codec2_destroy(c)

    def decode_frames(self, frames, concealment):
        with _DECODE_LOCK:  # the seed is the library's, shared by every thread
            _rand_state(lib()).value = 1  # as a fresh c2dec: a decode depends on nothing before it
            return self._decode(frames, concealment)

    def _decode(self, frames, concealment):
        L = lib()
        c = L.codec2_create(CODEC2_MODES[self.mode])
        F, B = self.frame_samples, self.frame_bytes
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        synth = np.zeros(F, dtype=np.int16)
        last: bytes | None = None
        run = plc = 0
        try:
            for i, fr in enumerate(frames):
                if fr is None or len(fr) != B:
                    bad[i] = True
                    if concealment == "codec2-repeat" and last is not None and run < CODEC2_MUTE_FRAMES:
                        L.codec2_decode(c, synth.ctypes.data, last)
                        g = 10 ** (-CODEC2_FADE_DB * run / 20)
                        out[i * F : (i + 1) * F] = from_int16(synth) * g
                        plc += 1
                    run += 1
                    continue
                run = 0
                L.codec2_decode(c, synth.ctypes.data, fr)
                last = fr
                out[i * F : (i + 1) * F] = from_int16(synth)
        finally:
            L.codec2_destroy(c)
        return out, bad, {"plc_frames": plc}
