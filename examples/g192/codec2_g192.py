#!/usr/bin/env python3
"""Codec 2 (Debian's c2enc and c2dec) as a G.192 codec, for lossbench's ``exec:`` codec.

    codec2_g192.py enc MODE IN.wav OUT.g192     # 16-bit mono WAV at 8 kHz -> G.192, one frame per Codec 2 frame
    codec2_g192.py dec MODE IN.g192 OUT.wav     # G.192 (BFI frames: 0x6B20) -> 16-bit mono WAV at 8 kHz

c2enc and c2dec read and write headerless raw files (16-bit samples; packed frames of bits), not G.192, as many
codec binaries do: this adapter converts. Codec 2 leaves concealment to the application, so on a BFI frame the
adapter hands c2dec the last good frame again (silence before the first). Only the standard library is used,
so that the adapter reads as a template for wrapping another binary.

    lossbench sweep --codec 'exec:encode="python3 examples/g192/codec2_g192.py enc 3200 {in} {out}",
        decode="python3 examples/g192/codec2_g192.py dec 3200 {in} {out}",sample_rate_hz=8000,frame_ms=20,
        delay_ms=17.5' --channel bernoulli --loss 0.1
"""

import os
import struct
import subprocess
import sys
import tempfile
import wave

#: bits per frame and frame duration (ms) of the modes this adapter knows
MODES = {"3200": (64, 20), "2400": (48, 20), "1600": (64, 40), "1400": (56, 40), "1300": (52, 40), "1200": (48, 40)}
SYNC_GOOD, SYNC_BAD, BIT0, BIT1 = 0x6B21, 0x6B20, 0x007F, 0x0081


def encode(mode, src, dst):
    with wave.open(src, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 8000:
            sys.exit(f"codec2_g192: {src} must be 16-bit mono at 8000 Hz")
        pcm = w.readframes(w.getnframes())
    nbits = MODES[mode][0]
    nbytes = (nbits + 7) // 8
    with tempfile.TemporaryDirectory() as d:
        raw, bits = os.path.join(d, "in.raw"), os.path.join(d, "out.bin")
        with open(raw, "wb") as f:
            f.write(pcm)
        subprocess.run(["c2enc", mode, raw, bits], check=True)
        with open(bits, "rb") as f:
            data = f.read()
    out = bytearray()
    for i in range(0, len(data) - nbytes + 1, nbytes):
        frame = data[i : i + nbytes]
        words = [BIT1 if frame[k // 8] >> (7 - k % 8) & 1 else BIT0 for k in range(nbits)]
        out += struct.pack(f"<{2 + nbits}H", SYNC_GOOD, nbits, *words)
    with open(dst, "wb") as f:
        f.write(out)


def decode(mode, src, dst):
    nbits = MODES[mode][0]
    nbytes = (nbits + 7) // 8
    with open(src, "rb") as f:
        data = f.read()
    frames, last, pos = [], bytes(nbytes), 0
    while pos < len(data):
        sync, n = struct.unpack_from("<2H", data, pos)
        if sync not in (SYNC_GOOD, SYNC_BAD) or n != nbits:
            sys.exit(f"codec2_g192: byte {pos}: sync 0x{sync:04X}, length {n}; expected a frame of {nbits} bits")
        words = struct.unpack_from(f"<{n}H", data, pos + 4)
        pos += 4 + 2 * n
        if sync == SYNC_GOOD:
            b = bytearray(nbytes)
            for k, wd in enumerate(words):
                if wd > 0x80:
                    b[k // 8] |= 1 << (7 - k % 8)
            last = bytes(b)
        frames.append(last)  # a BFI frame: the last good frame again
    with tempfile.TemporaryDirectory() as d:
        bits, raw = os.path.join(d, "in.bin"), os.path.join(d, "out.raw")
        with open(bits, "wb") as f:
            f.write(b"".join(frames))
        subprocess.run(["c2dec", mode, bits, raw], check=True)
        with open(raw, "rb") as f:
            pcm = f.read()
    with wave.open(dst, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("enc", "dec") or sys.argv[2] not in MODES:
        sys.exit(f"usage: codec2_g192.py enc|dec {'|'.join(MODES)} IN OUT")
    (encode if sys.argv[1] == "enc" else decode)(*sys.argv[2:])
