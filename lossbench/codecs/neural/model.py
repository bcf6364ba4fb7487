"""The neural RVQ speech codec shared by the SoundStream-style ``rvq``
baseline, SoundSpring and the Glaris-style transceiver.

::

    16 kHz audio --causal conv encoder (strides 2*4*5*8 = 320)--> latent (D=128, 50 Hz)
        --residual VQ (24 x 1024 codes, 10 bits each: 0.5 kbit/s per layer)--> codes
        --sum of the first K code vectors--> latent
        --ConvNeXt decoder (causal, 50 Hz)--> log-magnitude + phase
        --inverse STFT (n_fft 640, hop 320, periodic Hann, overlap-add)--> audio

Why a time-frequency decoder: on two CPU cores, a Vocos-style decoder that
predicts an STFT frame per latent frame and synthesises by an inverse FFT
learned clearly faster per CPU minute than a transposed-convolution decoder
of similar size (measured on this machine, see ../shared/DATA.md), and it runs
its layers at 50 Hz instead of 16 kHz.

Latency: the encoder is strictly causal (latent frame t sees input up to the
end of frame t); the decoder's convolutions are causal, and the 50 %
overlap-add of the inverse STFT needs latent frame t+1 to finish the samples
of frame t: one frame (20 ms) of look-ahead. Output sample n of the decoder
corresponds to input sample n - 320 (a fixed 20 ms delay).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from lossbench.codecs.neural.rvq import ResidualVQ


@dataclass(frozen=True)
class CodecConfig:
    sample_rate_hz: int = 16000
    hop: int = 320
    strides: tuple[int, ...] = (2, 4, 5, 8)
    enc_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    enc_dilations: tuple[int, ...] = (1, 3)
    latent_dim: int = 128
    num_quantizers: int = 24
    codebook_size: int = 1024
    dec_dim: int = 256
    dec_hidden: int = 768
    dec_blocks: int = 6
    dec_kernel: int = 7
    n_fft: int = 640

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CodecConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})  # type: ignore[arg-type]  # a saved config's values, checked by the dataclass


class CausalConv1d(nn.Module):
    """Conv1d padded on the left only: output t sees inputs <= t (in its own stride grid)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1, wn: bool = True):
        super().__init__()
        conv = nn.Conv1d(cin, cout, k, stride=stride, dilation=dilation, groups=groups)
        self.conv = weight_norm(conv) if wn else conv
        self.pad = (k - 1) * dilation + 1 - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))

    def stream(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal convolution of a chunk given the last ``pad`` inputs (None: zeros, as at the start).

        The chunk length must be a multiple of the stride. Returns (output, new cache).
        """
        if cache is None:
            cache = x.new_zeros(x.shape[0], x.shape[1], self.pad)
        full = torch.cat([cache, x], -1)
        y = self._unfolded(full) if self._use_unfold(x.shape[-1]) else self.conv(full)
        return y, full[..., full.shape[-1] - self.pad :]

    def _use_unfold(self, n: int) -> bool:
        """Whether :meth:`_unfolded` beats ``conv1d`` for a chunk of ``n`` inputs (outside training).

        On streaming chunks (up to ~1000 output steps), one matrix product over
        the unfolded input runs up to 4x faster than the CPU convolution kernels
        for dilated, strided and depthwise layers and for layers with few output
        steps; for undilated, unstrided layers over longer chunks conv1d is as
        fast or faster (per-layer timings on this machine, one thread).
        """
        c = self.conv
        t_out, d, s = n // c.stride[0], c.dilation[0], c.stride[0]
        wide = c.in_channels * c.kernel_size[0] >= 1024
        return not self.training and (c.groups > 1 or wide or t_out <= 48 or ((d > 1 or s > 1) and t_out <= 1024))

    def _unfolded(self, full: torch.Tensor) -> torch.Tensor:
        """The convolution as one product of the unfolded input with the (cached, reshaped) weight."""
        c = self.conv
        k, d, s = c.kernel_size[0], c.dilation[0], c.stride[0]
        w = c.weight
        key = (w.data_ptr(), w._version)
        # one tuple, read once and replaced whole: a thread never sees a key with another thread's half-built value
        cache = getattr(self, "_w_cache", None)
        if cache is None or cache[0] != key:
            w2 = w.detach().reshape(w.shape[0], -1)  # (cout, cin * k); depthwise: (C, k)
            bias = c.bias.detach() if c.bias is not None else w.new_zeros(w.shape[0])
            cache = self._w_cache = (key, w2.contiguous(), w2.t().contiguous(), bias)
        _, w_rows, w_cols, bias = cache
        cols = full.unfold(2, (k - 1) * d + 1, s)[..., ::d]  # (B, cin, T_out, k)
        B, C, T, _ = cols.shape
        if c.groups == 1 and B == 1 and T >= 64:  # many output steps: (cout, cin k) @ (cin k, T)
            return torch.addmm(bias[:, None], w_rows, cols[0].transpose(1, 2).reshape(C * k, T))[None]
        if c.groups == 1:  # few output steps: (B T, cin k) @ (cin k, cout)
            y = torch.addmm(bias, cols.permute(0, 2, 1, 3).reshape(B * T, C * k), w_cols)
            return y.view(B, T, -1).transpose(1, 2)
        if c.groups != C or w.shape[0] != C:  # grouped but not depthwise: not used by these models
            return c(full)
        return (cols * w_rows[None, :, None, :]).sum(-1) + bias[None, :, None]


class ResUnit(nn.Module):
    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.c1 = CausalConv1d(ch, ch, 7, dilation=dilation)
        self.c2 = CausalConv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.elu(self.c1(F.elu(x))))

    def stream(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        y, cache = self.c1.stream(F.elu(x), cache)
        return x + self.c2(F.elu(y)), cache


class Encoder(nn.Module):
    def __init__(self, cfg: CodecConfig):
        super().__init__()
        chs = cfg.enc_channels
        layers: list[nn.Module] = [CausalConv1d(1, chs[0], 7)]
        cin = chs[0]
        for i, s in enumerate(cfg.strides):
            cout = chs[min(i + 1, len(chs) - 1)]
            layers += [ResUnit(cin, d) for d in cfg.enc_dilations]
            layers += [nn.ELU(), CausalConv1d(cin, cout, 2 * s, stride=s)]
            cin = cout
        layers += [nn.ELU(), CausalConv1d(cin, cfg.latent_dim, 3)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, n) with n a multiple of the hop -> (B, D, n / hop)."""
        return self.net(x)

    def stream(self, x: torch.Tensor, caches: list | None) -> tuple[torch.Tensor, list]:
        """A chunk of whole hops with per-layer caches -> (latents, new caches)."""
        caches = list(caches) if caches is not None else [None] * len(self.net)
        for i, m in enumerate(self.net):
            if isinstance(m, (CausalConv1d, ResUnit)):
                x, caches[i] = m.stream(x, caches[i])
            else:
                x = m(x)
        return x, caches


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, k: int):
        super().__init__()
        self.dw = CausalConv1d(dim, dim, k, groups=dim, wn=False)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._rest(x, self.dw(x))

    def _rest(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = self.pw2(F.gelu(self.pw1(self.norm(y.transpose(1, 2)))))
        return x + (self.scale * y).transpose(1, 2)

    def stream(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        y, cache = self.dw.stream(x, cache)
        return self._rest(x, y), cache


class Decoder(nn.Module):
    window: torch.Tensor  # a buffer (register_buffer), typed for mypy

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.inp = CausalConv1d(cfg.latent_dim, cfg.dec_dim, cfg.dec_kernel, wn=False)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dec_dim, cfg.dec_hidden, cfg.dec_kernel) for _ in range(cfg.dec_blocks))
        self.norm = nn.LayerNorm(cfg.dec_dim)
        self.nbins = cfg.n_fft // 2 + 1
        self.head = nn.Linear(cfg.dec_dim, 2 * self.nbins)
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)

    def frames(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, D, T) -> windowed time-domain frames (B, T, n_fft)."""
        h = self.inp(z)
        for b in self.blocks:
            h = b(h)
        return self._synth(h)

    def stream_frames(self, z: torch.Tensor, caches: list | None) -> tuple[torch.Tensor, list]:
        """Like :meth:`frames` for a chunk of latents, with per-layer caches."""
        caches = list(caches) if caches is not None else [None] * (1 + len(self.blocks))
        h, caches[0] = self.inp.stream(z, caches[0])
        for i, b in enumerate(self.blocks):
            h, caches[i + 1] = cast(ConvNeXtBlock, b).stream(h, caches[i + 1])
        return self._synth(h), caches

    def _synth(self, h: torch.Tensor) -> torch.Tensor:
        h = self.head(self.norm(h.transpose(1, 2)))  # (B, T, 2 * nbins)
        logmag, phase = h[..., : self.nbins], h[..., self.nbins :]
        mag = torch.exp(logmag.clamp(max=6.0))
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        return torch.fft.irfft(spec, n=self.cfg.n_fft) * self.window

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, 1, T * hop) audio, delayed by one hop (see module doc)."""
        fr = self.frames(z)
        B, T, N = fr.shape
        hop = self.cfg.hop
        out = F.fold(
            fr.transpose(1, 2), output_size=(1, (T + 1) * hop), kernel_size=(1, N), stride=(1, hop)
        )  # overlap-add; frame t spans samples [t*hop, t*hop + n_fft)
        return out.view(B, 1, -1)[..., : T * hop]


class NeuralCodec(nn.Module):
    """Encoder + residual VQ + decoder."""

    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        if cfg.n_fft != 2 * cfg.hop:
            from lossbench.errors import ConfigError

            raise ConfigError(f"codec config: the decoder's overlap-add needs n_fft = 2 * hop, got n_fft {cfg.n_fft} "
                              f"and hop {cfg.hop}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualVQ(cfg.num_quantizers, cfg.codebook_size, cfg.latent_dim)
        self.decoder = Decoder(cfg)

    @property
    def delay_samples(self) -> int:
        return self.cfg.hop

    @property
    def latent_size(self) -> int:
        """Size of a frame's decodable latent (what ``quantizer.decode`` gives per frame)."""
        return self.cfg.latent_dim

    @property
    def frame_offset_samples(self) -> int:
        """Where frame i's samples start in the decoder output, past i * hop: the decoder is one hop late."""
        return self.cfg.hop

    def layer_tables(self) -> list[torch.Tensor]:
        """Per layer, what each token adds to the latent: (V, latent_size); a frame's latent is the sum
        over its layers (here the RVQ code vectors themselves)."""
        return [cb.embed for cb in self.quantizer.codebooks]

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """(B, 1, n) -> codes (B, k, n / hop)."""
        return self.quantizer.encode(self.encoder(x), k)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))


# --------------------------------------------------------------------------- streaming


@dataclass
class EncoderState:
    """Per-layer input caches of the causal encoder (explicit streaming state)."""

    caches: list = field(default_factory=list)


@dataclass
class DecoderState:
    """Per-layer caches of the causal decoder and the pending overlap-add tail."""

    caches: list = field(default_factory=list)
    tail: torch.Tensor = field(default_factory=lambda: torch.zeros(0))


class StreamingCodec:
    """Frame-by-frame encoder and decoder with explicit state, equal to the offline model.

    Every causal convolution keeps the inputs it still needs (its padding
    length) in the state, so each call does only the new frame's work; the
    decoder keeps the second half of the last synthesised frame for the
    overlap-add.
    """

    def __init__(self, model: NeuralCodec):
        self.model = model.eval()
        self.hop = model.cfg.hop

    @torch.no_grad()
    def encode_frame(self, frame: torch.Tensor, state: EncoderState | None) -> tuple[torch.Tensor, EncoderState]:
        """One hop of audio (hop,) -> latent (D,), new state."""
        z, caches = self.model.encoder.stream(frame.view(1, 1, -1), state.caches if state and state.caches else None)
        return z[0, :, -1], EncoderState(caches)

    @torch.no_grad()
    def decode_frame(self, latent: torch.Tensor, state: DecoderState | None) -> tuple[torch.Tensor, DecoderState]:
        """Latent of frame t (D,) -> the hop of audio that frame t completes, new state.

        The returned samples are output samples [t*hop, (t+1)*hop), which
        reproduce input samples of frame t-1 (one hop of delay).
        """
        fr, caches = self.model.decoder.stream_frames(latent.view(1, -1, 1), state.caches if state and state.caches else None)
        fr = fr[0, -1]
        tail = state.tail if state is not None and state.tail.numel() else torch.zeros(self.hop)
        return tail + fr[: self.hop], DecoderState(caches, fr[self.hop :].clone())
