"""``glaris``: the Glaris-style transceiver as a packet codec (one packet per 20 ms frame).

Payload of frame t::

    byte 0     the rate index q (0..63)
    z_t        Q RVQ indices of the side information, 10 bits each
    copies     z_{t-k} for every offset k in ``offsets`` with t - k >= 0 (in-band FEC), 10 bits each
    y_t        range-coded under the discretised Gaussians N(mu_t, sigma_t) = f_entropy(h_s(z_{t-1}, z_t))
    CRC-16     a damaged payload is treated as lost

The receiver collects every z it got (its own packet or a later packet's
copy), entropy-decodes y_t when z_{t-1} and z_t are both known (h_s has two
frames of context, so the PMFs equal the sender's), and conceals the rest:

- ``side-info-plc``: y^P from f_PLC(h_s(z^)) and the previous frames' received y,
  with the confidence tokens M_H / M_L (eq. 5); a missing z is the learned mask token;
- ``prior-mean``: the entropy model's predicted mean mu_t;
- ``zero-y``: y_t = 0 (the latent-domain zero filling of the paper's Fig. 5c);
- waveform strategies: the frames that lost y are decoded from y = 0, then concealed in the waveform.

The redundant bitrate (0.5 Q |offsets| kbit/s in theory) is measured from the payloads (``fec_kbps``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, Codec
from lossbench.codecs.entropy import CategoricalStream, crc_frame, crc_unframe
from lossbench.codecs.fec import PayloadError
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.core import Clip, EncodedStream
from lossbench.errors import ConfigError

GLARIS_WEIGHTS = Path(__file__).parent / "weights" / "glaris.safetensors"


@functools.lru_cache(maxsize=4)
def load_glaris(path: str | None = None):
    """The Glaris modules with shipped (or given) safetensors weights, eval mode, CPU; no pickle."""
    from lossbench.codecs.glaris.model import Glaris, GlarisConfig
    from lossbench.codecs.neural import load_state, read_weights

    p = Path(path) if path else GLARIS_WEIGHTS
    meta, tensors = read_weights(p, "Glaris", "lossbench train glaris")
    model = Glaris(GlarisConfig(**json.loads(meta["model_cfg"])))
    load_state(model, tensors, p)
    for layer in model.z_rvq.layers:
        layer.initted.fill_(True)
    model.eval()
    model.codec_sha = meta.get("codec_sha", "")
    return model


def gaussian_pmfs(mu: np.ndarray, sigma: np.ndarray, R: int) -> np.ndarray:
    """PMFs over the integers -R..R of N(mu, sigma) in unit bins, tails folded into the end bins: (n, 2R+1)."""
    from scipy.special import ndtr

    edges = np.arange(-R, R + 2, dtype=np.float64) - 0.5
    cdf = ndtr((edges[None, :] - mu[:, None]) / sigma[:, None])
    cdf[:, 0], cdf[:, -1] = 0.0, 1.0
    return np.diff(cdf, axis=1)


def _offsets(v: Any) -> tuple[int, ...]:
    if v in ("", None, "none", 0):
        return ()
    try:
        out = tuple(int(x) for x in str(v).replace(",", "/").split("/") if x)
    except ValueError:
        raise ConfigError(f"glaris: offsets must be positive integers separated by '/', got {v!r}") from None
    if any(k < 1 for k in out) or len(set(out)) != len(out):
        raise ConfigError(f"glaris: offsets must be distinct integers >= 1, got {v!r}")
    return tuple(sorted(out))


@CODECS.register("glaris")
class GlarisCodec(Codec):
    """Glaris-style transform coding over the shipped RVQ backbone.

    Args:
        q: rate index 0..63 (lambda log-uniform between lambda_min and lambda_max: higher q, lower rate).
        side: Q, RVQ layers of the side information z (0.5 kbit/s each), 1..the model's maximum.
        offsets: frame offsets k of the z copies each packet carries, e.g. ``1/13``; ``none`` for no copies.
        weights, glaris_weights: other safetensors for the backbone or the Glaris modules.
    """

    name = "glaris"
    native_concealments = ("side-info-plc", "prior-mean", "zero-y")

    def __init__(self, q: int = 32, side: int = 2, offsets: Any = "1/13", weights: str | None = None,
                 glaris_weights: str | None = None, **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        from lossbench.codecs.neural import load_model

        self.backbone = load_model(weights)
        self.model = load_glaris(glaris_weights)
        cfg = self.model.cfg
        if int(q) != q or not 0 <= q < cfg.q_num:
            raise ConfigError(f"glaris: q must be an integer 0..{cfg.q_num - 1}, got {q!r}")
        if int(side) != side or not 1 <= side <= cfg.z_quantizers:
            raise ConfigError(f"glaris: side must be an integer 1..{cfg.z_quantizers}, got {side!r}")
        self.q, self.side, self.offsets = int(q), int(side), _offsets(offsets)
        self.weights, self.glaris_weights = weights, glaris_weights
        self.sample_rate_hz = self.backbone.cfg.sample_rate_hz
        self.frame_samples = self.backbone.cfg.hop
        self.delay_samples = self.backbone.delay_samples
        self.conceal_offset_samples = self.backbone.delay_samples
        self._info: dict[str, Any] = {}

    def model_files(self) -> dict[str, Path]:
        from lossbench.codecs.neural import weights_path

        return {"codec": weights_path(self.weights),
                "glaris": Path(self.glaris_weights) if self.glaris_weights else GLARIS_WEIGHTS}

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"q": self.q, "side": self.side, "offsets": "/".join(map(str, self.offsets)) or "none"}
        for k in ("weights", "glaris_weights"):
            if getattr(self, k):
                p[k] = getattr(self, k)
        return p

    # ------------------------------------------------------------------ shared computations

    def _q(self):
        import torch

        return torch.tensor([self.q])

    def _entropy(self, zq, z_missing):
        """(mu, sigma) float64 (T, y_dim) and s, from z^ (1, z_dim, T) — single-threaded, as at both ends."""
        import torch

        from lossbench.codecs.soundspring.coding import single_thread

        with torch.no_grad(), single_thread():
            s = self.model.hyper(zq, z_missing)
            mu, sigma = self.model.entropy_params(s, self._q())
        return mu[0].T.double().numpy(), sigma[0].T.double().numpy(), s

    def analyse(self, samples: np.ndarray):
        """Samples -> (y^Q int (T, y_dim), z codes (T, Q), z^ (1, z_dim, T))."""
        import torch

        from lossbench.codecs.soundspring.coding import single_thread

        m = self.model
        with torch.no_grad(), single_thread():
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1)
            l = self.backbone.quantizer.decode(self.backbone.encode(x)) / m.cfg.latent_scale
            y = m.analysis(l, self._q())
            yq = m.quantize(y, self._q())
            codes = m.z_rvq.encode(m.h_a(y), self.side)  # (1, Q, T)
            zq = m.z_rvq.decode(codes)
        return yq[0].T.numpy().astype(np.int64), codes[0].T.numpy(), zq

    # ------------------------------------------------------------------ sender

    def encode_frames(self, samples: np.ndarray) -> list[bytes]:
        import torch

        yq, codes, zq = self.analyse(samples)
        T = yq.shape[0]
        mu, sigma, _ = self._entropy(zq, torch.zeros(1, T, dtype=torch.bool))
        R = self.model.cfg.y_range
        out = []
        self._fec_bits = 0
        for t in range(T):
            zs = [codes[t]] + [codes[t - k] for k in self.offsets if t - k >= 0]
            self._fec_bits += 10 * self.side * (len(zs) - 1)
            parts = [bytes([self.q]), pack_indices(np.concatenate(zs)),
                     CategoricalStream.encode([(yq[t] + R, gaussian_pmfs(mu[t], sigma[t], R))])]
            out.append(crc_frame(b"".join(parts)))
        return out

    def encode(self, clip: Clip) -> EncodedStream:
        s = super().encode(clip)
        dur = clip.num_samples / self.sample_rate_hz
        s.meta["fec_kbps"] = self._fec_bits / dur / 1000.0  # the copies' bits (they share the packet's byte padding)
        s.meta["side_kbps"] = 0.5 * self.side * s.meta["frames"] * self.frame_duration_s / dur
        return s

    # ------------------------------------------------------------------ receiver

    def _parse(self, t: int, data: bytes) -> tuple[np.ndarray, dict[int, np.ndarray], bytes]:
        body = crc_unframe(data)
        if not body or body[0] != self.q:
            raise PayloadError(f"packet rate index {body[0] if body else None} is not the stream's q = {self.q}")
        src = [t] + [t - k for k in self.offsets if t - k >= 0]
        n = -(-len(src) * self.side * 10 // 8)
        if len(body) < 1 + n:
            raise PayloadError("packet too short for its side information")
        zs = unpack_indices(body[1 : 1 + n], len(src) * self.side).reshape(len(src), self.side)
        return zs[0], dict(zip(src[1:], zs[1:])), body[1 + n :]

    def decode_frames(self, frames: list[bytes | None], concealment: str | None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        m = self.model
        T = len(frames)
        R = m.cfg.y_range
        zc = np.zeros((T, self.side), dtype=np.int64)
        z_ok = np.zeros(T, dtype=bool)
        ybytes: dict[int, bytes] = {}
        corrupt = 0
        for t, fr in enumerate(frames):
            if not fr:
                continue
            try:
                z, copies, rest = self._parse(t, fr)
            except (PayloadError, ValueError):
                corrupt += 1
                continue
            zc[t], z_ok[t] = z, True
            ybytes[t] = rest
            for u, c in copies.items():
                if not z_ok[u]:
                    zc[u], z_ok[u] = c, True
        with torch.no_grad():
            zq = m.z_rvq.decode(torch.from_numpy(zc.T.copy()).unsqueeze(0))
        z_missing = torch.from_numpy(~z_ok).unsqueeze(0)
        mu, sigma, s = self._entropy(zq, z_missing)
        yq = np.zeros((T, m.cfg.y_dim), dtype=np.int64)
        y_ok = np.zeros(T, dtype=bool)
        for t, data in ybytes.items():
            if z_ok[t] and (t == 0 or z_ok[t - 1]):  # h_s(z_{t-1}, z_t) as at the sender
                yq[t] = CategoricalStream(data).decode(gaussian_pmfs(mu[t], sigma[t], R)) - R
                y_ok[t] = True
        lost = ~y_ok
        lost_t = torch.from_numpy(lost).unsqueeze(0)
        with torch.no_grad():
            yq_t = m.dequantize(torch.from_numpy(yq.T.astype(np.float32)).unsqueeze(0), self._q())
            if concealment == "side-info-plc":
                fill = m.plc(s, yq_t, lost_t, z_missing, self._q())
            elif concealment == "prior-mean":
                fill = m.dequantize(torch.from_numpy(mu.T.astype(np.float32)).unsqueeze(0), self._q())
            else:  # zero-y, and the waveform strategies' base decode
                fill = torch.zeros_like(yq_t)
            y_hat = torch.where(lost_t[:, None, :], fill, yq_t)
            l_hat = m.synthesis(y_hat, self._q()) * m.cfg.latent_scale
            audio = self.backbone.decoder(l_hat)[0, 0].numpy()
        self._info = {"y_lost_frames": int(lost.sum()), "z_missing_frames": int((~z_ok).sum()),
                      "z_from_copies": int((z_ok & ~np.isin(np.arange(T), list(ybytes))).sum()),
                      "corrupt_payloads": corrupt}
        return audio, lost

    def decode_info(self) -> dict[str, Any]:
        return dict(self._info)
