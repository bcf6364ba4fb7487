"""The ``fargan`` backbone: an RVQ quantiser of LPCNet features, voiced by Opus 1.5's FARGAN.

::

    16 kHz audio --LPCNet analysis (C, Opus 1.5.2)--> 20 features per 10 ms
        --pitch tokens: layers 0 and 1 carry each 10 ms frame's integer pitch period
          (the period FARGAN uses, exactly: 224 values) and a 2-bit pitch correlation
        --pairs of frames (40 values per 20 ms), z-scored--> causal conv encoder --> latent (D, 50 Hz)
        --residual VQ on layers 2..23 (1024-entry codebooks)--> codes
        --sum of the code vectors + the decoded pitch--> causal conv decoder --> 36 cepstral values
          and a refinement of the two correlations
        --FARGAN (C, pretrained, speaker-independent)--> audio

The token format is the waveform backbone's (24 layers of 10-bit tokens per
20 ms frame, 0.5 kbit/s each), so SoundSpring's and Glaris's machinery runs
on it. Why the pitch has layers of its own: FARGAN rounds the period to an
integer and is very sensitive to it (a 0.05-sd pitch error drops PESQ-WB by
about 0.36, the same error on the cepstrum by 0.06), and a learned RVQ spends
its first layers on the cepstrum's larger variance. Two tokens code the
period losslessly; the cepstrum is what is learned: the quantiser (encoder,
codebooks, decoder) for a weighted feature-domain error, with the vocoder
fixed, which two CPU cores learn well (../shared/DATA.md).

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
DEFAULT_WEIGHTS = (2.0,) + (1.0,) * 17  # cepstrum; the pitch travels in tokens of its own
PERIOD_MIN, PERIOD_LEVELS = 32, 224  # FARGAN clamps the period to 32..255 (dnn/fargan.c)
CORR_LEVELS = 4


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
    pitch_layers: int = 2
    skip: bool = False  # a linear path around each conv stack (eases the near-identity the transform must learn)

    @property
    def in_dim(self) -> int:
        return NB_FEATURES * self.frames_per_hop

    @property
    def ceps_dim(self) -> int:
        return 18 * self.frames_per_hop

    @property
    def rvq_layers(self) -> int:
        return self.num_quantizers - self.pitch_layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FarganConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})  # type: ignore[arg-type]  # a saved config's values, checked by the dataclass


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
    def __init__(self, cin: int, ch: int, cout: int, k: int, dilations: tuple[int, ...], skip: bool = False):
        super().__init__()
        self.inp = nn.Conv1d(cin, ch, 1)
        self.blocks = nn.ModuleList(_CausalRes(ch, k, d) for d in dilations)
        self.outp = nn.Conv1d(ch, cout, 1)
        self.skip = nn.Conv1d(cin, cout, 1) if skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(x))
        for b in self.blocks:
            h = b(h)
        y = self.outp(F.gelu(h))
        return y if self.skip is None else y + self.skip(x)


def period_of(pitch_feature: np.ndarray | torch.Tensor):
    """FARGAN's integer pitch period for LPCNet's pitch feature (dnn/fargan.c), clamped to 32..255."""
    if isinstance(pitch_feature, torch.Tensor):
        p = torch.floor(0.5 + 256.0 / torch.pow(2.0, pitch_feature + 1.5))
        return p.clamp(PERIOD_MIN, PERIOD_MIN + PERIOD_LEVELS - 1)
    q = np.floor(0.5 + 256.0 / np.power(2.0, np.asarray(pitch_feature, np.float64) + 1.5))
    return np.clip(q, PERIOD_MIN, PERIOD_MIN + PERIOD_LEVELS - 1)


def pitch_feature_of(period):
    """The pitch feature whose period is exactly ``period`` (the inverse of :func:`period_of`)."""
    if isinstance(period, torch.Tensor):
        return torch.log2(256.0 / period) - 1.5
    return np.log2(256.0 / np.asarray(period, np.float64)) - 1.5


class FeatureQuantizer(nn.Module):
    """Pitch tokens + encoder + residual VQ + decoder over z-scored feature pairs (B, 40, T) at 50 Hz."""

    feat_mean: torch.Tensor  # a buffer (register_buffer), typed for mypy
    feat_std: torch.Tensor  # a buffer (register_buffer), typed for mypy
    corr_levels: torch.Tensor  # a buffer (register_buffer), typed for mypy

    def __init__(self, cfg: FarganConfig = FarganConfig()):
        super().__init__()
        if cfg.pitch_layers != cfg.frames_per_hop:
            raise ValueError("one pitch token per 10 ms frame: pitch_layers must equal frames_per_hop")
        self.cfg = cfg
        self.encoder_net = _Stack(cfg.in_dim, cfg.hidden, cfg.latent_dim, cfg.kernel, cfg.enc_dilations, cfg.skip)
        self.quantizer = ResidualVQ(cfg.rvq_layers, cfg.codebook_size, cfg.latent_dim)
        # the decoder gives the cepstrum and a refinement of each frame's 2-bit pitch correlation
        self.decoder_net = _Stack(cfg.latent_dim + 2 * cfg.pitch_layers, cfg.hidden, cfg.ceps_dim + cfg.pitch_layers,
                                  cfg.kernel, cfg.dec_dilations, cfg.skip)
        self.register_buffer("feat_mean", torch.zeros(NB_FEATURES))
        self.register_buffer("feat_std", torch.ones(NB_FEATURES))
        # pitch correlation: CORR_LEVELS reconstruction levels and the thresholds between them (from training data)
        self.register_buffer("corr_levels", torch.linspace(-0.3, 0.45, CORR_LEVELS))

    @property
    def latent_size(self) -> int:
        """Size of a frame's decodable latent: the RVQ latent and four z-scored pitch values."""
        return self.cfg.latent_dim + 2 * self.cfg.pitch_layers

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

    # ---------------------------------------------------------------- pitch tokens

    def pitch_tokens(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, 2T, 20) features -> (B, 2, T) tokens: (period - 32) * 4 + correlation level."""
        B, T2, _ = feats.shape
        per = period_of(feats[..., 18]).long() - PERIOD_MIN
        lv = self.corr_levels
        corr = (feats[..., 19:20] - lv).abs().argmin(-1)
        tok = per * CORR_LEVELS + corr
        return tok.reshape(B, T2 // 2, 2).permute(0, 2, 1)

    def pitch_values(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, k, T) pitch tokens (k = 1 or 2; with 1 the second frame repeats the first) ->
        (B, 4, T) z-scored [pitch A, corr A, pitch B, corr B]."""
        if tokens.shape[1] == 1:
            tokens = tokens.repeat(1, 2, 1)
        tok = tokens.clamp(0, PERIOD_LEVELS * CORR_LEVELS - 1)
        per = (tok // CORR_LEVELS + PERIOD_MIN).float()
        corr = self.corr_levels[tok % CORR_LEVELS]
        f = (pitch_feature_of(per) - self.feat_mean[18]) / self.feat_std[18]
        c = (corr - self.feat_mean[19]) / self.feat_std[19]
        return torch.stack([f[:, 0], c[:, 0], f[:, 1], c[:, 1]], 1)

    # ---------------------------------------------------------------- the learned path

    def encode_latent(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.encoder_net(pairs)

    def decode_latent(self, latent: torch.Tensor, decoder_net: nn.Module | None = None) -> torch.Tensor:
        """(B, D + 4, T) latent (RVQ part, then z-scored pitch values) -> (B, 40, T) z-scored pairs.

        ``decoder_net``: another module of the same shape in place of this one's (Glaris's stage III)."""
        D = self.cfg.latent_dim
        pv = latent[:, D:]
        out = (decoder_net or self.decoder_net)(latent)
        ceps, dcorr = out[:, :36], out[:, 36:38]
        # the exact period; the correlation level refined by the decoder (its residual learns from the RVQ layers)
        a = torch.cat([ceps[:, :18], pv[:, 0:1], pv[:, 1:2] + dcorr[:, 0:1]], 1)
        b = torch.cat([ceps[:, 18:], pv[:, 2:3], pv[:, 3:4] + dcorr[:, 1:2]], 1)
        return torch.cat([a, b], 1)


class FarganQuantizer:
    """The token interface over pitch tokens (layers 0, 1) and the residual VQ (layers 2..23)."""

    def __init__(self, net: FeatureQuantizer):
        self.net = net
        self.rvq = net.quantizer
        self.num_layers = net.cfg.num_quantizers

    def encode_parts(self, pitch_tokens: torch.Tensor, z: torch.Tensor, k: int | None = None) -> torch.Tensor:
        k = self.num_layers if k is None else k
        P = self.net.cfg.pitch_layers
        parts = [pitch_tokens[:, : min(k, P)]]
        if k > P:
            parts.append(self.rvq.encode(z, k - P))
        return torch.cat(parts, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, k, T) codes -> (B, D + 4, T) latent (k >= 1)."""
        P = self.net.cfg.pitch_layers
        B, k, T = codes.shape
        pv = self.net.pitch_values(codes[:, : min(k, P)])
        zq = self.rvq.decode(codes[:, P:]) if k > P else torch.zeros(B, self.net.cfg.latent_dim, T)
        return torch.cat([zq, pv], 1)


# --------------------------------------------------------------------------- the codec-facing backbone


class FarganDecoder:
    """Latents (B, D, T) -> audio (B, 1, 320 T): feature decoder, then FARGAN from the silence prefix."""

    def __init__(self, backbone: FarganBackbone):
        self.b = backbone

    def __call__(self, latent: torch.Tensor, decoder_net: nn.Module | None = None) -> torch.Tensor:
        with torch.no_grad():
            feats = self.b.net.denormalise(self.b.net.decode_latent(latent.float(), decoder_net)).numpy()
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
        self.quantizer = FarganQuantizer(self.net)
        self.decoder = FarganDecoder(self)
        self._silence: np.ndarray | None = None

    @property
    def latent_size(self) -> int:
        return self.net.latent_size

    @property
    def frame_offset_samples(self) -> int:
        """Packet frame i's audio is output samples [320 i, 320 (i + 1)): no offset."""
        return 0

    def layer_tables(self) -> list[torch.Tensor]:
        """Per layer, what each token adds to the latent, (V, D + 4): the pitch layers write their
        frame's z-scored pitch and correlation (zeros for ids past the 896 used), the RVQ layers
        their code vectors; a frame's latent is the sum over its layers."""
        D, V = self.cfg.latent_dim, self.cfg.codebook_size
        tabs = []
        ids = torch.arange(V)
        for layer in range(self.cfg.pitch_layers):
            tok = torch.stack([ids, ids], 0)[None]  # both frames' values for every id
            pv = self.net.pitch_values(tok)[0]  # (4, V)
            t = torch.zeros(V, D + 4)
            t[:, D + 2 * layer] = pv[2 * layer]
            t[:, D + 2 * layer + 1] = pv[2 * layer + 1]
            t[ids >= PERIOD_LEVELS * CORR_LEVELS] = 0.0
            tabs.append(t)
        for cb in self.net.quantizer.codebooks:
            tabs.append(torch.cat([cb.embed, torch.zeros(V, 4)], 1))
        return tabs

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

    def clip_features(self, x: np.ndarray) -> np.ndarray:
        """Features of a clip of any length, zero-padded to whole frames plus the codec delay (as a codec pads it)."""
        hop = self.cfg.hop
        n = -(-(len(x) + self.delay_samples) // hop) * hop
        xp = np.zeros(n, np.float32)
        xp[: len(x)] = x
        return self.features(xp)

    def voice(self, feats: np.ndarray, num_samples: int) -> np.ndarray:
        """FARGAN's audio for ``feats``, aligned with the clip they came from (the codec delay removed)."""
        y = self.synthesize(feats)[self.delay_samples : self.delay_samples + num_samples]
        out = np.zeros(num_samples, np.float32)
        out[: y.size] = y
        return out

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """(B, 1, n) audio -> (B, k, n / 320) codes (pitch tokens first)."""
        feats = torch.from_numpy(np.stack([self.features(a) for a in x[:, 0].numpy()]))
        with torch.no_grad():
            z = self.net.encode_latent(self.net.normalise(feats))
            return self.quantizer.encode_parts(self.net.pitch_tokens(feats), z, k)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))
