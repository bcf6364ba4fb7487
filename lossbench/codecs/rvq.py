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

from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.base import CODECS, Codec
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
class RVQCodec(Codec):
    """Neural RVQ codec, first ``layers`` of 24 quantisers (0.5 kbit/s each).

    Args:
        layers: K, 1..24.
        weights: path to other safetensors weights (default: the shipped ones).
        decay: per-frame gain of ``repeat-latent`` over a burst.
    """

    name = "rvq"
    native_concealments = ("zero-latent", "repeat-latent", "fargan-plc")

    def __init__(self, layers: int = 12, weights: str | None = None, decay: float = 0.8, backbone: str = DEFAULT_BACKBONE,
                 **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        from lossbench.codecs.neural import load_model

        self.backbone = backbone
        self.model = load_model(weights, backbone)
        if backbone != "fargan":  # what "native" means for this instance
            self.native_concealments = ("zero-latent", "repeat-latent")
        nq = self.model.cfg.num_quantizers
        if int(layers) != layers or not 1 <= layers <= nq:
            raise ConfigError(f"rvq: layers must be an integer 1..{nq}, got {layers!r}")
        if not 0.0 <= float(decay) <= 1.0:
            raise ConfigError(f"rvq: decay must lie in [0, 1], got {decay!r}")
        self.layers = int(layers)
        self.weights = weights
        self.decay = float(decay)
        self.sample_rate_hz = self.model.cfg.sample_rate_hz
        self.frame_samples = self.model.cfg.hop
        self.delay_samples = self.model.delay_samples
        # where frame i's samples start in the decoder output: the waveform decoder is one hop late
        self.conceal_offset_samples = self.model.frame_offset_samples
        self.frame_bytes = -(-self.layers * 10 // 8)

    def check_concealment(self, concealment: str) -> str:
        if concealment == "fargan-plc" and self.backbone != "fargan":
            from lossbench.errors import choices

            raise ConfigError(f"rvq: 'fargan-plc' conceals features, so it needs backbone=fargan; valid with "
                              f"backbone={self.backbone}: {choices(self.concealments)}")
        return super().check_concealment(concealment)

    def model_files(self) -> dict[str, Path]:
        from lossbench.codecs.neural import weights_path

        return {"codec": weights_path(self.weights, self.backbone)}

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"layers": self.layers}
        p["backbone"] = self.backbone
        if self.weights:
            p["weights"] = self.weights
        return p

    def encode_codes(self, samples: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1)
            return self.model.encode(x, self.layers)[0].numpy().T  # (frames, K)

    def encode_frames(self, samples: np.ndarray) -> list[bytes]:
        return [pack_indices(c) for c in self.encode_codes(samples)]

    def decode_latents(self, latents: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            z = torch.from_numpy(latents.T.astype(np.float32)).unsqueeze(0)
            return self.model.decoder(z)[0, 0].numpy()

    def decode_frames(self, frames, concealment):
        import torch

        n = len(frames)
        D = self.model.latent_size
        lat = np.zeros((n, D), dtype=np.float32)
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
            with torch.no_grad():
                z = self.model.quantizer.decode(torch.from_numpy(codes[good].T.copy()).unsqueeze(0))[0].numpy().T
            lat[good] = z
        if concealment == "repeat-latent":
            last, g = None, 1.0
            for i in range(n):
                if not bad[i]:
                    last, g = lat[i], 1.0
                elif last is not None:
                    g *= self.decay
                    lat[i] = last * g
        if concealment == "fargan-plc":
            from lossbench.codecs.neural.fargan_plc import conceal_features

            with torch.no_grad():
                feats = self.model.net.denormalise(self.model.net.decode_latent(torch.from_numpy(lat.T.copy())[None]))[0]
            out = conceal_features(self.model, feats.numpy(), np.repeat(bad, 2))
        else:
            out = self.decode_latents(lat)
        if concealment is None:
            # without concealment the samples a lost frame produces are silenced, frame-aligned
            # with the input timeline
            F, o = self.frame_samples, self.conceal_offset_samples
            for i in np.flatnonzero(bad):
                out[i * F + o : (i + 1) * F + o] = 0.0
        return out, bad
