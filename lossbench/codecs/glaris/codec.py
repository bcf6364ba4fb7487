"""``glaris``: the Glaris-style transceiver as a packet codec (one packet per 20 ms frame).

Payload of frame t::

    byte 0     the rate index q (0..63)
    z_t        Q RVQ indices of the side information, 10 bits each
               (backbone=fargan: then the frame's two pitch tokens, 10 bits each: the period is
               exact in them and FARGAN needs it to half a sample, so it is sent losslessly as
               side information, never transform-coded)
    copies     z_{t-k} (and its pitch tokens) for every offset k in ``offsets`` with t - k >= 0
               (in-band FEC), 10 bits each
    y_t        range-coded under the discretised Gaussians N(mu_t, sigma_t) = f_entropy(h_s(z_{t-1}, z_t))
    CRC-16     a damaged payload is treated as lost

With backbone=fargan, y codes the RVQ part of the feature quantiser's latent
(layers 2..23); a frame whose side information never arrived holds the last
known pitch tokens.

The receiver collects every z it got (its own packet or a later packet's
copy), entropy-decodes y_t when z_{t-1} and z_t are both known (h_s has two
frames of context, so the PMFs equal the sender's), and conceals the rest:

- ``side-info-plc``: y^P from f_PLC(h_s(z^)) and the previous frames' received y,
  with the confidence tokens M_H / M_L (eq. 5); a missing z is the learned mask token;
- ``prior-mean``: the entropy model's predicted mean mu_t;
- ``zero-y``: y_t = 0 (the latent-domain zero filling of the paper's Fig. 5c);
- ``zero-z``: the side-info PLC with the side information of every frame that lost y zero-filled (z^Q = 0, no
  copy, no mask token): the paper's Fig. 5d, what the PLC does without its side information;
- waveform strategies: the frames that lost y are decoded from y = 0, then concealed in the waveform.

The redundant bitrate (0.5 Q |offsets| kbit/s in theory) is measured from the payloads (``fec_kbps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, FrameCodec
from lossbench.codecs.entropy import CategoricalStream, crc_frame, crc_unframe
from lossbench.codecs.fec import Depacketized, PayloadError
from lossbench.codecs.glaris.weights import check_stage3_option, glaris_path, load_glaris, load_stage3_decoder
from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.errors import ConfigError


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


def hold_missing(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Rows of ``values`` where ``ok`` is False replaced by the last good row before them (the first good row
    for a missing start; unchanged when none is good)."""
    out = values.copy()
    good = np.flatnonzero(ok)
    if good.size == 0:
        return out
    idx = np.maximum.accumulate(np.where(ok, np.arange(len(ok)), -1))
    idx[idx < 0] = good[0]
    return out[idx]


@CODECS.register("glaris")
class GlarisCodec(FrameCodec):
    """Glaris-style transform coding over the shipped RVQ backbone.

    Args:
        backbone: ``waveform`` (the waveform decoder) or ``fargan`` (the feature quantiser, voiced by FARGAN).
        q: rate index 0..63 (lambda log-uniform between lambda_min and lambda_max: higher q, lower rate).
        side: Q, RVQ layers of the side information z (0.5 kbit/s each), 1..the model's maximum.
        offsets: frame offsets k of the z copies each packet carries, e.g. ``1/13``; ``none`` for no copies.
        weights, glaris_weights: other safetensors for the backbone or the Glaris modules.
        decoder: ``stage3`` (default): the backbone decoder fine-tuned to the shipped Glaris's reconstructions
            (stage III, :mod:`lossbench.codecs.glaris.stage3`) where one is shipped for these modules (fargan),
            else the backbone's; ``backbone``: always the backbone's own decoder.
    """

    name = "glaris"
    native_concealments: tuple[str, ...] = ("side-info-plc", "prior-mean", "zero-y", "zero-z")
    facts = ("side_kbps", "y_lost_frames", "z_missing_frames", "z_from_copies", "corrupt_payloads")

    def __init__(self, q: int = 32, side: int = 2, offsets: Any = "1/13", weights: str | None = None,
                 glaris_weights: str | None = None, backbone: str = DEFAULT_BACKBONE, decoder: str = "stage3",
                 **packet_kw: Any) -> None:
        super().__init__(**packet_kw)
        from lossbench.codecs.neural.backbones import get_backbone

        self.backbone = get_backbone(backbone, weights)
        self.glaris = load_glaris(glaris_weights, self.backbone.name)
        self.pitch_layers = self.backbone.pitch_layers  # token layers sent as side information, not coded in y
        cfg = self.glaris.cfg
        if int(q) != q or not 0 <= q < cfg.q_num:
            raise ConfigError(f"glaris: q must be an integer 0..{cfg.q_num - 1}, got {q!r}")
        if int(side) != side or not 1 <= side <= cfg.z_quantizers:
            raise ConfigError(f"glaris: side must be an integer 1..{cfg.z_quantizers}, got {side!r}")
        self.q, self.side, self.offsets = int(q), int(side), _offsets(offsets)
        self.weights, self.glaris_weights = weights, glaris_weights
        self.sample_rate_hz = self.backbone.sample_rate_hz
        self.frame_samples = self.backbone.hop
        self.delay_samples = self.backbone.delay_samples
        self.conceal_offset_samples = self.backbone.frame_offset_samples
        self.side_tokens = self.side + self.pitch_layers  # 10-bit indices per frame's side information
        self.decoder = check_stage3_option(decoder)
        self._stage3 = None
        if self.decoder == "stage3" and not weights:  # fine-tuned to the shipped codec: none for other weights
            self._stage3 = load_stage3_decoder(glaris_weights, self.backbone.name)

    def model_files(self) -> dict[str, Path]:
        files = {"codec": self.backbone.weights, "glaris": glaris_path(self.glaris_weights, self.backbone.name)}
        if self._stage3 is not None:
            files["decoder"] = self.backbone.shipped_path("glaris_decoder")
        return files

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"q": self.q, "side": self.side, "offsets": "/".join(map(str, self.offsets)) or "none"}
        p["backbone"] = self.backbone.name
        if self._stage3 is not None:
            p["decoder"] = "stage3"
        elif self.decoder == "backbone":  # kept in the config, or a rebuilt codec would take the default
            p["decoder"] = "backbone"
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

        from lossbench.codecs.neural.threads import single_thread

        with torch.no_grad(), single_thread():
            s = self.glaris.hyper(zq, z_missing)
            mu, sigma = self.glaris.entropy_params(s, self._q())
        return mu[0].T.double().numpy(), sigma[0].T.double().numpy(), s

    def analyse(self, samples: np.ndarray):
        """Samples -> (y^Q int (T, y_dim), side tokens (T, Q + pitch layers): z codes then pitch tokens,
        z^ (1, z_dim, T))."""
        import torch

        from lossbench.codecs.neural.threads import single_thread

        m = self.glaris
        P = self.pitch_layers
        with torch.no_grad(), single_thread():
            x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1)
            tokens = self.backbone.encode_torch(x)
            lat = self.backbone.quantizer.decode(tokens)[:, : m.cfg.latent_dim] / m.cfg.latent_scale
            y = m.analysis(lat, self._q())
            yq = m.quantize(y, self._q())
            codes = m.z_rvq.encode(m.h_a(y), self.side)  # (1, Q, T)
            zq = m.z_rvq.decode(codes)
        side = torch.cat([codes, tokens[:, :P]], 1)[0].T.numpy()
        return yq[0].T.numpy().astype(np.int64), side, zq

    def _voice(self, l_hat, pitch: np.ndarray | None) -> np.ndarray:
        """Decoded latent (1, D, T) (and the pitch tokens (T, P) with fargan) -> audio."""
        lat = l_hat[0].numpy().T
        if self.pitch_layers:
            assert pitch is not None  # a backbone with pitch layers always decodes its pitch tokens
            lat = np.concatenate([lat, self.backbone.pitch_latent(pitch)], 1)
        return self.backbone.latent_to_audio(lat, self._stage3)

    # ------------------------------------------------------------------ sender

    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        import torch

        yq, codes, zq = self.analyse(samples)
        T = yq.shape[0]
        mu, sigma, _ = self._entropy(zq, torch.zeros(1, T, dtype=torch.bool))
        R = self.glaris.cfg.y_range
        out = []
        fec_bits = 0
        for t in range(T):
            zs = [codes[t]] + [codes[t - k] for k in self.offsets if t - k >= 0]
            fec_bits += 10 * self.side_tokens * (len(zs) - 1)
            parts = [bytes([self.q]), pack_indices(np.concatenate(zs)),
                     CategoricalStream.encode([(yq[t] + R, gaussian_pmfs(mu[t], sigma[t], R))])]
            out.append(crc_frame(b"".join(parts)))
        # the copies' bits (they share the packet's byte padding) and the side information's, per second of clip
        return out, {"fec_bits": fec_bits, "side_bits": 10 * self.side_tokens * T}

    # ------------------------------------------------------------------ receiver

    def _parse(self, t: int, data: bytes) -> tuple[np.ndarray, dict[int, np.ndarray], bytes]:
        body = crc_unframe(data)
        if not body or body[0] != self.q:
            raise PayloadError(f"packet rate index {body[0] if body else None} is not the stream's q = {self.q}")
        src = [t] + [t - k for k in self.offsets if t - k >= 0]
        n = -(-len(src) * self.side_tokens * 10 // 8)
        if len(body) < 1 + n:
            raise PayloadError("packet too short for its side information")
        zs = unpack_indices(body[1 : 1 + n], len(src) * self.side_tokens).reshape(len(src), self.side_tokens)
        return zs[0], dict(zip(src[1:], zs[1:])), body[1 + n :]

    #: its copies of z repair earlier frames from later packets: the decoder is handed the receiver clock
    repairs_from_later_packets = True

    def decode_frames(self, frames: list[bytes | None], concealment: str | None, clock: Depacketized | None = None):
        return self.decode_frames_many(frames, [concealment], clock)[0]

    def decode_frames_many(self, frames: list[bytes | None], concealments: list[str | None],
                           clock: Depacketized | None = None) -> list:
        """Parsing, z and the entropy decoding of y once; then each concealment's fill and synthesis."""
        rx = self._receive_y(frames, clock)
        return [self._synthesise(rx, c) for c in concealments]

    def _receive_y(self, frames: list[bytes | None], clock: Depacketized | None = None) -> dict:
        """What every concealment shares: the side information, the entropy parameters and y where it decodes.

        The copies of z keep to the receiver clock (``clock``): z_u from a copy in the packet of frame c counts for
        frame u's own output (its concealment, its pitch) only if that packet arrived by frame u's playout time
        (``z_own``), and for decoding y_{u+1} only if it arrived by frame u+1's (``z_state``). Without a clock, or
        with every copy in time, the two are one mask and the decode is the single pass it always was."""
        import torch

        m = self.glaris
        T = len(frames)
        R = m.cfg.y_range
        zc = np.zeros((T, self.side_tokens), dtype=np.int64)
        z_own = np.zeros(T, dtype=bool)  # z_t known by frame t's playout time: what frame t uses itself
        z_state = np.zeros(T, dtype=bool)  # z_t known by frame t+1's: what decoding y_{t+1} may use
        ybytes: dict[int, bytes] = {}
        corrupt = 0

        def in_time(carrier: int, frame: int) -> bool:
            return clock is None or frame >= T or clock.in_time(carrier, frame)

        for t, fr in enumerate(frames):
            if not fr:
                continue
            try:
                z, copies, rest = self._parse(t, fr)
            except (PayloadError, ValueError):
                corrupt += 1
                continue
            zc[t], z_own[t], z_state[t] = z, True, True
            ybytes[t] = rest
            for u, c in copies.items():
                own, state = in_time(t, u), in_time(t, u + 1)
                if (own and not z_own[u]) or (state and not z_state[u]):
                    zc[u] = c  # a copy is the same z as the original
                    z_own[u] |= own
                    z_state[u] |= state
        with torch.no_grad():
            zq = m.z_rvq.decode(torch.from_numpy(zc[:, : self.side].T.copy()).unsqueeze(0))
        z_missing = torch.from_numpy(~z_own).unsqueeze(0)
        mu, sigma, s = self._entropy(zq, z_missing)  # frames' own concealment: the prior mean, s for the PLC
        if np.array_equal(z_own, z_state):
            mu_y, sigma_y = mu, sigma
        else:  # y_t is entropy-decoded with what frame t may use of z_{t-1}
            mu_y, sigma_y, _ = self._entropy(zq, torch.from_numpy(~z_state).unsqueeze(0))
        yq = np.zeros((T, m.cfg.y_dim), dtype=np.int64)
        y_ok = np.zeros(T, dtype=bool)
        for t, data in ybytes.items():
            if z_own[t] and (t == 0 or z_state[t - 1]):  # h_s(z_{t-1}, z_t) as at the sender
                yq[t] = CategoricalStream(data).decode(gaussian_pmfs(mu_y[t], sigma_y[t], R)) - R
                y_ok[t] = True
        return {"T": T, "zc": zc, "z_ok": z_own, "ybytes": ybytes, "corrupt": corrupt, "mu": mu, "s": s,
                "z_missing": z_missing, "yq": yq, "y_ok": y_ok}

    def _synthesise(self, rx: dict, concealment: str | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        import torch

        m = self.glaris
        T, zc, z_ok, mu, s, z_missing = rx["T"], rx["zc"], rx["z_ok"], rx["mu"], rx["s"], rx["z_missing"]
        lost = ~rx["y_ok"]
        lost_t = torch.from_numpy(lost).unsqueeze(0)
        with torch.no_grad():
            yq_t = m.dequantize(torch.from_numpy(rx["yq"].T.astype(np.float32)).unsqueeze(0), self._q())
            if concealment == "side-info-plc":
                fill = m.plc(s, yq_t, lost_t, z_missing, self._q())
            elif concealment == "zero-z":  # Fig. 5d: the lost frames' z^Q zero-filled, then the same PLC
                z0 = torch.from_numpy(zc[:, : self.side].T.copy()).unsqueeze(0)
                zq0 = m.z_rvq.decode(z0) * (~lost_t)[:, None, :]
                _, _, s0 = self._entropy(zq0, torch.zeros_like(z_missing))
                fill = m.plc(s0, yq_t, lost_t, torch.zeros_like(z_missing), self._q())
            elif concealment == "prior-mean":
                fill = m.dequantize(torch.from_numpy(mu.T.astype(np.float32)).unsqueeze(0), self._q())
            else:  # zero-y, and the waveform strategies' base decode
                fill = torch.zeros_like(yq_t)
            y_hat = torch.where(lost_t[:, None, :], fill, yq_t)
            l_hat = m.synthesis(y_hat, self._q()) * m.cfg.latent_scale
            audio = self._voice(l_hat, hold_missing(zc[:, self.side :], z_ok) if self.pitch_layers else None)
        info = {"y_lost_frames": int(lost.sum()), "z_missing_frames": int((~z_ok).sum()),
                "z_from_copies": int((z_ok & ~np.isin(np.arange(T), list(rx["ybytes"]))).sum()),
                "corrupt_payloads": rx["corrupt"]}
        return audio, lost, info
