#!/usr/bin/env python3
"""A packet-loss concealer over the Deep PLC Challenge's interface, for lossbench's ``cmd:`` and ``py:``
concealments: spandsp's G.711 Appendix I-style concealer (``plc_rx`` / ``plc_fillin`` of libspandsp, which
Debian ships as libspandsp2).

    spandsp_plc.py LOSSY.wav MASK.txt OUT.wav

LOSSY.wav is 16-bit mono audio whose lost 20 ms frames are zeroed; MASK.txt holds one 0 or 1 per 20 ms frame
(1 = lost), the challenge's loss-file format; OUT.wav is the concealed audio, of the same length. In a sweep::

    lossbench sweep --codec g711 --channel bernoulli --loss 0.1 \
        --concealment 'cmd:run="python3 examples/plc/spandsp_plc.py {lossy} {mask} {out}",sample_rate_hz=0'

``conceal(lossy, mask, sample_rate_hz)`` is the same concealer for ``py:fn=spandsp_plc:conceal`` (this folder on
the Python path). Only the standard library and ctypes are used by the command, so that it reads as a template.
"""

import array
import ctypes
import sys
import wave


def _lib():
    lib = ctypes.CDLL("libspandsp.so.2")
    lib.plc_init.restype = ctypes.c_void_p
    lib.plc_init.argtypes = [ctypes.c_void_p]
    for f in (lib.plc_rx, lib.plc_fillin):
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
    lib.plc_free.argtypes = [ctypes.c_void_p]
    return lib


def conceal_int16(samples, lost_frames, frame):
    """int16 samples (array('h')) concealed in place, frame by frame: plc_fillin on a lost frame, plc_rx (which
    keeps the history and smooths the first frame after a gap) on a received one."""
    lib = _lib()
    st = lib.plc_init(None)
    try:
        for k, lost in enumerate(lost_frames):
            a, b = k * frame, min((k + 1) * frame, len(samples))
            if a >= b:
                break
            buf = (ctypes.c_int16 * (b - a))(*samples[a:b])
            (lib.plc_fillin if lost else lib.plc_rx)(st, buf, b - a)
            samples[a:b] = array.array("h", buf)
    finally:
        lib.plc_free(st)
    return samples


def conceal(lossy, mask, sample_rate_hz):
    """The ``py:`` form: float32 audio and a bool mask per 20 ms frame in, concealed float32 audio out."""
    import numpy as np

    pcm = array.array("h", np.clip(np.round(np.asarray(lossy, np.float64) * 32768), -32768, 32767).astype(np.int16))
    out = conceal_int16(pcm, [bool(m) for m in mask], sample_rate_hz // 50)
    return np.frombuffer(out, dtype=np.int16).astype(np.float32) / 32768


def main(lossy, mask_file, out):
    with wave.open(lossy, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"spandsp_plc: {lossy} must be 16-bit mono")
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    with open(mask_file) as f:
        mask = [line.strip() == "1" for line in f if line.strip()]
    conceal_int16(samples, mask, rate // 50)
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: spandsp_plc.py LOSSY.wav MASK.txt OUT.wav")
    main(*sys.argv[1:])
