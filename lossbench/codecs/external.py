"""``exec:`` — any codec binary that reads and writes ITU-T G.192 bitstreams, as ITU-T and 3GPP reference codecs do.

::

    exec:encode="ENCODER {in} {out}",decode="DECODER {in} {out}",sample_rate_hz=16000,frame_ms=20

- The encoder reads ``{in}``, a 16-bit mono WAV at ``sample_rate_hz`` (the clip, zero-padded to whole frames), and
  writes ``{out}``, a G.192 bitstream (:mod:`lossbench.codecs.g192`) of one frame per ``frame_ms``.
- Each frame's bits, packed into bytes (first bit the most significant), are one packet's payload, so the bitrate
  is that of the codec's frames (a frame of n bits costs ceil(n / 8) bytes, as byte-aligned RTP payloads do).
- The decoder reads ``{in}``, a G.192 bitstream in which every frame that did not arrive in time carries the BFI
  sync word 0x6B20 and zeroed bits (the STL's error-insertion convention), and writes ``{out}``, a 16-bit mono WAV
  at ``sample_rate_hz`` of exactly the frames' samples.
- ``exec-bfi`` is the decoder's own concealment (what it plays on a BFI frame). Any waveform concealment works too:
  the decoder still sees the BFI, and the frames it marks are zeroed and filled by the strategy.
- Commands run in a fresh temporary folder with ``timeout_s``, without a shell unless ``shell=1`` (then the
  fields are quoted for it); ``{rate}`` is the sample rate in Hz. A command that fails, hangs or writes a
  malformed file is an error naming the command, its exit status and the end of its stderr
  (:mod:`lossbench.external`): in a sweep, the task's error row.
- ``delay_ms``: the codec's algorithmic delay, which the harness removes to align the output with the input.

A receiver learns a frame's bit count from its payload's size and the codec's mode table; lossbench keeps the
encoder's counts with the stream (a structural fact, not a column) so that a codec whose frames are not a whole
number of bytes round-trips exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.fec import Depacketized
from lossbench.codecs.g192 import bits_to_bytes, bytes_to_bits, read_g192, write_g192
from lossbench.core import DEFAULT_HEADER_BYTES, EncodedStream
from lossbench.errors import CodecError, ConfigError
from lossbench.external import check_template, run_command

FIELDS = ("in", "out", "rate")


@CODECS.register("exec")
class ExecCodec(FrameCodec):
    """A codec binary over G.192 (see the module docstring).

    Args:
        encode: the encoder command, with ``{in}`` (WAV) and ``{out}`` (G.192).
        decode: the decoder command, with ``{in}`` (G.192) and ``{out}`` (WAV).
        sample_rate_hz: the rate both commands work at.
        frame_ms: the audio of one G.192 frame.
        delay_ms: the codec's algorithmic delay (removed from the output).
        timeout_s: the longest one command may run.
        shell: run the commands through ``/bin/sh`` (pipes, redirections).
        frames_per_packet, red, red_offset, xor, header_bytes: packetisation, as for every frame codec.
    """

    name = "exec"
    native_concealments: tuple[str, ...] = ("exec-bfi",)
    facts = ("g192_frames_bad",)

    def __init__(self, encode: str, decode: str, sample_rate_hz: int = 16000, frame_ms: float = 20.0,
                 delay_ms: float = 0.0, timeout_s: float = 60.0, shell: bool = False, frames_per_packet: int = 1,
                 red: int = 0, red_offset: int = 1, xor: int = 0,
                 header_bytes: int = DEFAULT_HEADER_BYTES) -> None:
        super().__init__(frames_per_packet, red, red_offset, xor, header_bytes)
        check_template(encode, "exec: encode", ("in", "out"), FIELDS)
        check_template(decode, "exec: decode", ("in", "out"), FIELDS)
        if int(sample_rate_hz) != sample_rate_hz or not 1000 <= sample_rate_hz <= 384_000:
            raise ConfigError(f"exec: sample_rate_hz must be an integer rate in 1000..384000 Hz, got {sample_rate_hz!r}")
        fs = float(frame_ms) * sample_rate_hz / 1000.0
        if not 0 < frame_ms <= 1000 or abs(fs - round(fs)) > 1e-6:
            raise ConfigError(f"exec: frame_ms must be in (0, 1000] ms and a whole number of samples at "
                              f"{sample_rate_hz} Hz, got {frame_ms!r}")
        if not 0 <= delay_ms < 1000:
            raise ConfigError(f"exec: delay_ms must lie in [0, 1000), got {delay_ms!r}")
        if not 0 < timeout_s <= 86_400:
            raise ConfigError(f"exec: timeout_s must lie in (0, 86400], got {timeout_s!r}")
        self.encode_cmd, self.decode_cmd = encode, decode
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = int(round(fs))
        self.frame_ms, self.delay_ms = float(frame_ms), float(delay_ms)
        self.delay_samples = int(round(delay_ms * sample_rate_hz / 1000.0))
        self.timeout_s, self.shell = float(timeout_s), bool(shell)

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"encode": self.encode_cmd, "decode": self.decode_cmd, "sample_rate_hz": self.sample_rate_hz,
                             "frame_ms": self.frame_ms}
        if self.delay_ms:
            p["delay_ms"] = self.delay_ms
        if self.timeout_s != 60.0:
            p["timeout_s"] = self.timeout_s
        if self.shell:
            p["shell"] = 1
        return p

    def describe(self) -> str:
        # quoted, so that the description is a spec that builds this codec again
        return "exec:" + ",".join(f'{k}="{v}"' if isinstance(v, str) else f"{k}={v:g}" if isinstance(v, float)
                                  else f"{k}={v}" for k, v in self.config().items())

    # ------------------------------------------------------------------ encoding

    def _run(self, template: str, what: str, tmp: Path, src: Path, dst: Path) -> None:
        run_command(template, {"in": src, "out": dst, "rate": str(self.sample_rate_hz)}, tmp, self.timeout_s,
                    self.shell, f"exec {what}", outputs=(dst,))

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        import soundfile as sf

        n = samples.size // self.frame_samples
        with tempfile.TemporaryDirectory(prefix="lossbench-exec-") as d:
            tmp = Path(d)
            src, dst = tmp / "input.wav", tmp / "coded.g192"
            sf.write(str(src), to_int16(samples), self.sample_rate_hz, subtype="PCM_16")
            self._run(self.encode_cmd, "encoder", tmp, src, dst)
            coded = read_g192(dst.read_bytes(), f"exec encoder's output ({self.encode_cmd!r})")
        if len(coded) != n:
            raise CodecError(f"exec encoder ({self.encode_cmd!r}) wrote {len(coded)} G.192 frames for {n} frames of "
                             f"{self.frame_ms:g} ms ({samples.size} samples at {self.sample_rate_hz} Hz); "
                             f"check frame_ms and sample_rate_hz")
        bad = [i for i, (good, _) in enumerate(coded) if not good]
        if bad:
            raise CodecError(f"exec encoder ({self.encode_cmd!r}) marked frame {bad[0]} bad (sync 0x6B20); an "
                             f"encoder writes good frames only")
        counts = [int(bits.size) for _, bits in coded]
        frames = [bits_to_bytes(bits) for _, bits in coded]
        return frames, {"bit_counts": counts}

    # ------------------------------------------------------------------ decoding

    def decode_frames(self, frames: list[bytes | None], concealment: str | None
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        raise CodecError("exec: frames decode with their bit counts; call decode or decode_many")

    def decode_received(self, stream: EncodedStream, dp: Depacketized, hooks: list[str | None]
                        ) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """One decoder run per reception (the BFI frames are the same for every concealment): its output for
        ``exec-bfi``, the same with the bad frames zeroed for a waveform concealment."""
        counts = stream.meta.get("bit_counts")
        if not isinstance(counts, list):
            raise CodecError("exec: the stream carries no bit counts (it was not encoded by exec)")
        raw, bad = self._decode_g192(dp.frames, counts)
        info = {"g192_frames_bad": int(bad.sum())}
        out = []
        for h in hooks:
            audio = raw
            if h is None:
                audio = raw.copy()
                for i in np.flatnonzero(bad):
                    audio[i * self.frame_samples : (i + 1) * self.frame_samples] = 0.0
            out.append((audio, bad, info))
        return out

    def _decode_g192(self, frames: list[bytes | None], counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        import soundfile as sf

        n = len(frames)
        if len(counts) != n:
            raise CodecError(f"exec: the stream has {len(counts)} bit counts for {n} frames")
        bad = np.zeros(n, bool)
        bits: list[np.ndarray] = []
        for i, (fr, c) in enumerate(zip(frames, counts)):
            if fr is None or len(fr) != -(-c // 8):  # lost, late, or a payload of the wrong size: a BFI frame
                bad[i] = True
                bits.append(np.zeros(c, np.uint8))
            else:
                bits.append(bytes_to_bits(fr, c))
        want = n * self.frame_samples
        with tempfile.TemporaryDirectory(prefix="lossbench-exec-") as d:
            tmp = Path(d)
            src, dst = tmp / "received.g192", tmp / "decoded.wav"
            src.write_bytes(write_g192(bits, ~bad))
            self._run(self.decode_cmd, "decoder", tmp, src, dst)
            try:
                x, sr = sf.read(str(dst), dtype="int16", always_2d=True)
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise CodecError(f"exec decoder ({self.decode_cmd!r}) wrote a file that is not audio: {exc}") from None
        if sr != self.sample_rate_hz or x.shape[1] != 1 or x.shape[0] != want:
            raise CodecError(f"exec decoder ({self.decode_cmd!r}) wrote {x.shape[0]} samples, {x.shape[1]} "
                             f"channel(s) at {sr} Hz; expected {want} samples ({n} frames of {self.frame_ms:g} ms), "
                             f"1 channel at {self.sample_rate_hz} Hz")
        return from_int16(x[:, 0]), bad
