"""16-bit PCM passthrough: the no-codec reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.audio import from_int16, to_int16
from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.errors import ConfigError


@CODECS.register("pcm")
class PCM(FrameCodec):
    """Uncompressed 16-bit little-endian PCM in frames of ``frame_ms``."""

    name = "pcm"

    def __init__(self, sample_rate_hz: int = 16000, frame_ms: float = 20.0, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        if int(sample_rate_hz) not in (8000, 16000, 24000, 32000, 44100, 48000):
            raise ConfigError(f"pcm: sample_rate_hz must be one of 8000, 16000, 24000, 32000, 44100, 48000, got "
                              f"{sample_rate_hz!r}")
        fs = int(sample_rate_hz) * float(frame_ms) / 1000.0
        if fs != int(fs) or fs <= 0:
            raise ConfigError(f"pcm: frame_ms={frame_ms!r} is not a whole number of samples at {sample_rate_hz} Hz")
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_samples = int(fs)
        self.frame_ms = float(frame_ms)

    def codec_params(self) -> dict[str, Any]:
        return {"sample_rate_hz": self.sample_rate_hz, "frame_ms": self.frame_ms}

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        pcm = to_int16(samples).astype("<i2")
        F = self.frame_samples
        return [pcm[i : i + F].tobytes() for i in range(0, pcm.size, F)], {}

    def decode_frames(self, frames, concealment):
        F = self.frame_samples
        out = np.zeros(len(frames) * F, dtype=np.float32)
        bad = np.zeros(len(frames), dtype=bool)
        for i, fr in enumerate(frames):
            if fr is None or len(fr) != 2 * F:  # missing, or a corrupt (wrong-length) payload
                bad[i] = True
                continue
            out[i * F : (i + 1) * F] = from_int16(np.frombuffer(fr, dtype="<i2"))
        return out, bad, {}
