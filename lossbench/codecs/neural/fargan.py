"""The ``fargan`` backbone: an RVQ quantiser of LPCNet features, voiced by Opus 1.5's FARGAN.

::

    16 kHz audio --LPCNet analysis (C, Opus 1.5.2)--> 20 features per 10 ms
        --pairs of frames (40 values per 20 ms), z-scored--> causal conv encoder --> latent (D, 50 Hz)
        --residual VQ (24 x 1024 codes: the same tokens as the waveform backbone)--> codes
        --sum of the first K code vectors--> causal conv decoder --> 40 features
        --FARGAN (C, pretrained, speaker-independent)--> audio

What is trained is the quantiser (encoder, codebooks, decoder) for a
weighted feature-domain error: the vocoder is fixed, so two CPU cores learn
it well (../shared/DATA.md). Pitch period errors cost far more than cepstral
ones (a 0.05-sd error drops PESQ-WB by about 0.36 against 0.06), so the loss
weighs them accordingly.

Alignment: the encoder analyses the input after ``PRE_PAD`` = 640 samples of
silence (four feature frames, which the decoder knows and never receives);
FARGAN starts on the first five frames and its output at sample j follows
analysis input sample j + 556. Decoder output sample j + 244 therefore
reproduces input sample j (``delay_samples`` = 244), and packet frame i's
audio is output samples [320 i, 320 (i + 1)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lossbench.codecs.neural.rvq import ResidualVQ

NB_FEATURES = 20
PRE_PAD = 640
#: squared-error weights in z units per LPCNet feature (18 cepstral bands, pitch period, pitch correlation)
DEFAULT_WEIGHTS = (2.0,) + (1.0,) * 17 + (0.0, 0.5)  # the pitch period has its own loss, in samples


@dataclass(frozen=True)
class FarganConfig:
    backbone: str = "fargan"
    sample_rate_hz: int = 16000
    hop: int = 320
    frames_per_hop: int = 2
    hidden: int = 256
    latent_dim: int = 64
    enc_dilations: tuple[int, ...] = (1, 2, 4)
    dec_dilations: tuple[int, ...] = (1, 2, 4, 1)
    kernel: int = 3
    num_quantizers: int = 24
    codebook_size: int = 1024

    @property
    def in_dim(self) -> int:
        return NB_FEATURES * self.frames_per_hop

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FarganConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class _CausalRes(nn.Module):
    """x + W2 gelu(causal dilated conv(x))."""

    def __init__(self, ch: int, k: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(ch, ch, k, dilation=dilation)
        self.pad = (k - 1) * dilation
        self.out = nn.Conv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(F.gelu(self.conv(F.pad(x, (self.pad, 0)))))


class _Stack(nn.Module):
    def __init__(self, cin: int, ch: int, cout: int, k: int, dilations: tuple[int, ...]):
        super().__init__()
        self.inp = nn.Conv1d(cin, ch, 1)
        self.blocks = nn.ModuleList(_CausalRes(ch, k, d) for d in dilations)
        self.outp = nn.Conv1d(ch, cout, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + sum(b.pad for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(x))
        for b in self.blocks:
            h = b(h)
        return self.outp(F.gelu(h))


class FeatureQuantizer(nn.Module):
    """Encoder + residual VQ + decoder over z-scored feature pairs (B, 40, T) at 50 Hz."""

    def __init__(self, cfg: FarganConfig = FarganConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder_net = _Stack(cfg.in_dim, cfg.hidden, cfg.latent_dim, cfg.kernel, cfg.enc_dilations)
        self.quantizer = ResidualVQ(cfg.num_quantizers, cfg.codebook_size, cfg.latent_dim)
        self.decoder_net = _Stack(cfg.latent_dim, cfg.hidden, cfg.in_dim, cfg.kernel, cfg.dec_dilations)
        self.register_buffer("feat_mean", torch.zeros(NB_FEATURES))
        self.register_buffer("feat_std", torch.ones(NB_FEATURES))

    # ---------------------------------------------------------------- feature <-> normalised pairs

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, 2T, 20) features -> (B, 40, T) z-scored pairs."""
        B, T2, _ = feats.shape
        z = (feats - self.feat_mean) / self.feat_std
        return z.reshape(B, T2 // 2, 2 * NB_FEATURES).permute(0, 2, 1)

    def denormalise(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 40, T) -> (B, 2T, 20) features."""
        B, _, T = pairs.shape
        z = pairs.permute(0, 2, 1).reshape(B, 2 * T, NB_FEATURES)
        return z * self.feat_std + self.feat_mean

    def encode_latent(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.encoder_net(pairs)

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, 40, T) z-scored pairs."""
        return self.decoder_net(latent)


# --------------------------------------------------------------------------- the codec-facing backbone


class FarganDecoder:
    """Latents (B, D, T) -> audio (B, 1, 320 T): feature decoder, then FARGAN from the silence prefix."""

    def __init__(self, backbone: "FarganBackbone"):
        self.b = backbone

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.b.net.denormalise(self.b.net.decode_latent(latent.float())).numpy()
        return torch.from_numpy(np.stack([self.b.synthesize(f) for f in feats])).unsqueeze(1)


class FarganBackbone(nn.Module):
    """The codec-facing model: the interface of the waveform ``NeuralCodec`` over features.

    ``encode(audio, k)`` gives the same (B, k, T) token format, ``quantizer``
    the same residual VQ, ``decoder(latent)`` audio, ``delay_samples`` the
    alignment; ``features(audio)`` and ``synthesize(features)`` expose the
    feature path for concealment in the feature domain.
    """

    def __init__(self, cfg: FarganConfig = FarganConfig()):
        super().__init__()
        self.cfg = cfg
        self.net = FeatureQuantizer(cfg)
        self.decoder = FarganDecoder(self)
        self._silence: np.ndarray | None = None

    @property
    def quantizer(self) -> ResidualVQ:
        return self.net.quantizer

    @property
    def delay_samples(self) -> int:
        from lossbench.native.fargan import CONT_FRAMES, FRAME, SYNTH_ADVANCE

        return CONT_FRAMES * FRAME - SYNTH_ADVANCE  # 800 - 556 = 244

    def silence_features(self) -> np.ndarray:
        """Features of the four frames of pre-pad silence (what the decoder assumes, never sent)."""
        if self._silence is None:
            from lossbench.native.fargan import analyze

            self._silence = analyze(np.zeros(PRE_PAD, np.float32))
        return self._silence

    def features(self, audio: np.ndarray) -> np.ndarray:
        """(2T, 20) features of ``audio`` (a whole number of 320-sample frames), the pre-pad dropped."""
        from lossbench.native.fargan import analyze

        x = np.concatenate([np.zeros(PRE_PAD, np.float32), np.asarray(audio, np.float32)])
        return analyze(x)[PRE_PAD // 160 :]

    def synthesize(self, feats: np.ndarray) -> np.ndarray:
        """Audio (160 + 160 * (2T - 1) = 320 T samples) for (2T, 20) features, after the silence prefix.

        Non-finite features (a corrupted latent) are replaced by the last good frame's.
        """
        from lossbench.native.fargan import FRAME, synthesize

        f = np.asarray(feats, np.float32).copy()
        bad = ~np.isfinite(f).all(1)
        for i in np.flatnonzero(bad):
            f[i] = f[i - 1] if i > 0 else self.silence_features()[-1]
        y = synthesize(np.concatenate([self.silence_features(), f]))
        out = np.zeros(FRAME + y.size, np.float32)
        out[FRAME:] = y
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """(B, 1, n) audio -> (B, k, n / 320) codes."""
        feats = np.stack([self.features(a) for a in x[:, 0].numpy()])
        with torch.no_grad():
            z = self.net.encode_latent(self.net.normalise(torch.from_numpy(feats)))
        return self.quantizer.encode(z, k)

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        feats = np.stack([self.features(a) for a in x[:, 0].numpy()])
        with torch.no_grad():
            return self.net.encode_latent(self.net.normalise(torch.from_numpy(feats)))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))
