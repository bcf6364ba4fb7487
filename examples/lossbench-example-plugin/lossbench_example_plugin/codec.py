"""``mulaw``: 8-bit mu-law companding (the curve of G.711's mu-law, computed, not table-driven), one byte per
sample, frames of ``frame_ms``.

A frame codec writes two methods; lossbench's :class:`~lossbench.codecs.base.FrameCodec` does the rest (padding,
packets, FEC options, depacketising, the receiver clock, waveform concealment, alignment)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbench.codecs.base import FrameCodec
from lossbench.errors import ConfigError

MU = 255.0


class MuLaw(FrameCodec):
    name = "mulaw"
    native_concealments: tuple[str, ...] = ()  # none of its own: any waveform concealment applies
    facts = ("clipped_samples",)  # a fact becomes a column of every row

    def __init__(self, sample_rate_hz: int = 8000, frame_ms: float = 20.0, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)  # frames_per_packet, red, xor, header_bytes: as every frame codec
        if sample_rate_hz not in (8000, 16000):
            # an error names the bad value and what is allowed
            raise ConfigError(f"mulaw: sample_rate_hz must be 8000 or 16000, got {sample_rate_hz!r}")
        fs = sample_rate_hz * float(frame_ms) / 1000.0
        if not 0 < frame_ms <= 120 or fs != int(fs):
            raise ConfigError(f"mulaw: frame_ms must be in (0, 120] and a whole number of samples, got {frame_ms!r}")
        self.sample_rate_hz, self.frame_ms = int(sample_rate_hz), float(frame_ms)
        self.frame_samples = int(fs)
        self.delay_samples = 0

    def codec_params(self) -> dict[str, Any]:
        return {"sample_rate_hz": self.sample_rate_hz, "frame_ms": self.frame_ms}

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        # no state on self: encode and decode may run at once on one object (threads of a Dask worker)
        x = np.clip(samples, -1.0, 1.0)
        y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
        codes = np.round((y + 1.0) * 127.5).astype(np.uint8)
        F = self.frame_samples
        frames = [codes[i : i + F].tobytes() for i in range(0, codes.size, F)]
        return frames, {"clipped_samples": int(np.sum(np.abs(samples) > 1.0))}

    def decode_frames(self, frames: list[bytes | None], concealment: str | None
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        F = self.frame_samples
        out = np.zeros(len(frames) * F, np.float32)
        bad = np.zeros(len(frames), bool)
        for i, fr in enumerate(frames):
            if fr is None or len(fr) != F:  # lost, late, or corrupt: the harness conceals it
                bad[i] = True
                continue
            y = np.frombuffer(fr, np.uint8).astype(np.float64) / 127.5 - 1.0
            out[i * F : (i + 1) * F] = np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU
        return out, bad, {}
