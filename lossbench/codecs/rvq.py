"""``rvq``: the neural RVQ codec as a packet codec (the SoundStream-style baseline).

Each packet carries, per frame, the first K layer indices of the residual
VQ, bit-packed at 10 bits each (K = 12: 15 bytes per 20 ms frame, 6 kbit/s).
Two backbones turn the tokens into sound (``backbone=``): ``waveform``, the
project's conv encoder and iSTFT decoder, and ``fargan``, a quantiser of
LPCNet features voiced by Opus 1.5's pretrained FARGAN.

Concealments: ``zero-latent`` (a lost frame's latent is zero: the naive
baseline in both SoundSpring and Glaris), ``repeat-latent`` (the last
received latent, decaying toward zero), on ``fargan`` also ``fargan-plc``
(Opus 1.5's deep-PLC network predicts the features of lost frames from the
past), and the waveform strategies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.errors import ConfigError


def pack_indices(idx: np.ndarray, bits: int = 10) -> bytes:
    """Pack non-negative integers < 2**bits, MSB first, zero-padded to a byte."""
    idx = np.asarray(idx, dtype=np.int64)
    b = ((idx[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8).ravel()
    return np.packbits(b).tobytes()


def unpack_indices(data: bytes, count: int, bits: int = 10) -> np.ndarray:
    need = -(-count * bits // 8)
    if len(data) != need:
        raise ValueError(f"expected {need} bytes for {count} indices, got {len(data)}")
    b = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits)
    return (b.astype(np.int64) << np.arange(bits - 1, -1, -1)).sum(1)


@CODECS.register("rvq", "soundstream")
class RVQCodec(FrameCodec):
    """Neural RVQ codec, first ``layers`` of 24 quantisers (0.5 kbit/s each).

    Args:
        layers: K, 1..24.
        weights: path to other safetensors weights (default: the shipped ones).
        decay: per-frame gain of ``repeat-latent`` over a burst.
    """

    name = "rvq"
    native_concealments: tuple[str, ...] = ("zero-latent", "repeat-latent", "fargan-plc")

    def __init__(self, layers: int = 12, weights: str | None = None, decay: float = 0.8, backbone: str = DEFAULT_BACKBONE,
                 **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        from lossbench.codecs.neural.backbones import get_backbone

        self.backbone = get_backbone(backbone, weights)
        if not self.backbone.feature_plc:  # what "native" means for this instance
            self.native_concealments = ("zero-latent", "repeat-latent")
        nq = self.backbone.num_quantizers
        if int(layers) != layers or not 1 <= layers <= nq:
            raise ConfigError(f"rvq: layers must be an integer 1..{nq}, got {layers!r}")
        if not 0.0 <= float(decay) <= 1.0:
            raise ConfigError(f"rvq: decay must lie in [0, 1], got {decay!r}")
        self.layers = int(layers)
        self.weights = weights
        self.decay = float(decay)
        self.sample_rate_hz = self.backbone.sample_rate_hz
        self.frame_samples = self.backbone.hop
        self.delay_samples = self.backbone.delay_samples
        # where frame i's samples start in the decoder output: the waveform decoder is one hop late
        self.conceal_offset_samples = self.backbone.frame_offset_samples
        self.frame_bytes = -(-self.layers * 10 // 8)

    def check_concealment(self, concealment: str) -> str:
        if concealment == "fargan-plc" and not self.backbone.feature_plc:
            from lossbench.errors import choices

            raise ConfigError(f"rvq: 'fargan-plc' conceals features, so it needs backbone=fargan; valid with "
                              f"backbone={self.backbone.name}: {choices(self.concealments)}")
        return super().check_concealment(concealment)

    def model_files(self) -> dict[str, Path]:
        return {"codec": self.backbone.weights}

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"layers": self.layers}
        p["backbone"] = self.backbone.name
        if self.weights:
            p["weights"] = self.weights
        return p

    def encode_codes(self, samples: np.ndarray) -> np.ndarray:
        return self.backbone.encode(samples, self.layers)  # (frames, K)

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        return [pack_indices(c) for c in self.encode_codes(samples)], {}

    def decode_latents(self, latents: np.ndarray) -> np.ndarray:
        """Latents (frames, D) -> audio, before the codec delay is removed."""
        return self.backbone.latent_to_audio(latents)

    def decode_frames(self, frames, concealment):
        n = len(frames)
        lat = np.zeros((n, self.backbone.latent_size), dtype=np.float32)
        bad = np.zeros(n, dtype=bool)
        codes = np.zeros((n, self.layers), dtype=np.int64)
        for i, fr in enumerate(frames):
            try:
                codes[i] = unpack_indices(fr, self.layers) if fr else 0
                bad[i] = not fr
            except ValueError:  # wrong size: corrupt or truncated
                bad[i] = True
        good = ~bad
        if good.any():
            lat[good] = self.backbone.tokens_to_latent(codes[good])
        if concealment == "repeat-latent":
            last, g = None, 1.0
            for i in range(n):
                if not bad[i]:
                    last, g = lat[i], 1.0
                elif last is not None:
                    g *= self.decay
                    lat[i] = last * g
        if concealment == "fargan-plc":
            out = self.backbone.conceal_features(lat, bad)
        else:
            out = self.decode_latents(lat)
        if concealment is None:
            # without concealment the samples a lost frame produces are silenced, frame-aligned
            # with the input timeline
            F, o = self.frame_samples, self.conceal_offset_samples
            for i in np.flatnonzero(bad):
                out[i * F + o : (i + 1) * F + o] = 0.0
        return out, bad, {}
