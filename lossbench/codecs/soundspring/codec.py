"""``soundspring``: the SoundSpring transceiver as a packet codec.

Sender: the RVQ backbone's tokens -> K layers per block (fixed, or chosen per
block from the block's level with ``vbr``) -> slices under Phi, coarse tokens
raw and fine tokens range-coded under the masked LM's PMFs -> packets
(:mod:`lossbench.codecs.soundspring.coding`).

Receiver: entropy decoding of every slice whose condition tokens arrived,
R/L/I labels, then one of

- ``mlm`` (the paper's rule, §III-C): the MLM predicts the lost and invalid tokens
  of the lower levels only, up to ``conceal_layers`` (predicting the high levels
  does not help; the higher layers of a concealed frame stay out of its latent),
  each the most likely index under the MLM's PMF, in concealment windows of the
  received tokens (:mod:`lossbench.codecs.soundspring.conceal`);
- ``mlm-head`` (lossbench's extension, not the paper's): the same, but on the
  fargan backbone with the shipped MLM a frame that lost all its coarse tokens
  gets them from lossbench's concealment head on the frozen MLM
  (:mod:`lossbench.codecs.soundspring.coarse_head`: the pitch as a change from the
  last known frame, the first RVQ vector as a residual from it), a regression
  from the previous frame of the kind the Glaris paper (§IV-A3) contrasts with
  SoundSpring's index prediction. Reported beside ``mlm``, never instead of it;
- ``mlm-all`` (the paper's ablation): the MLM predicts every missing layer up to
  the frame's K;
- ``mlm-soft`` (lossbench's, not the paper's): the ``mlm`` concealment, but each
  concealed layer contributes its expected code vector under the MLM's PMF
  instead of the most likely one;
- ``zero-token``: the paper's baseline: each frame is decoded from the layers
  it received before its first missing one; a frame without coarse tokens
  decodes from a zero latent;
- any waveform strategy, applied to the frames that lost their coarse tokens.

Modes: ``mode=stream`` is SoundSpring-S (blocks of ``stride`` frames, the
entropy model and the concealment see ``context`` frames ending ``lookahead``
frames after the block); ``mode=gos`` is the non-streaming SoundSpring
(groups of ``gos`` frames with ``slices`` periodic slices, concealment
windows of ``context`` frames centred on the gap).

Latency is computed from the send schedule, not from the block size: a
block's packets go out when its look-ahead frames have been captured, and
its fine tokens are coded on those frames' coarse tokens, which travel in
the *next* block's packets; frame t's output also needs frame t+1's latent
(the decoder's look-ahead). ``latency_ms`` is what the harness charges as
algorithmic delay: a frame's start to its own block's send, plus the
decoder's look-ahead (6 frames, 120 ms, for stride 3 and look-ahead 2). The
wait for the next block (60 ms more) is the playout buffer's: under the
harness's receiver clock a block uses a packet only if it arrived by the
block's playout time, so with a buffer under 60 ms its fine tokens and its
FEC copy come too late. ``own_clock_latency_ms`` (9 frames, 180 ms) is the
whole wait; without a playout buffer (a direct ``decode`` with no
deadlines) the receiver keeps to that schedule: block b uses only the
packets sent by its decision time (the output time of the first frame that
depends on it), so nothing sent later changes the frames already due
(``tests/codecs/test_soundspring_latency.py``).

Which packet holds what (block, slice column, layer groups) is what an RTP
receiver reads from each packet's timestamp and payload type; lossbench keeps
it in the stream's packet plan, and the payload itself carries K and a CRC.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.codecs.base import CODECS, CodecBase, DecodeResult
from lossbench.codecs.neural import DEFAULT_BACKBONE
from lossbench.codecs.soundspring.capture import capture_latency, capture_plan, decode_capture, encode_capture
from lossbench.codecs.soundspring.coding import (
    CoderModel,
    Layout,
    Schedule,
    SlicePacket,
    Slicing,
    decode_tokens,
    encode_tokens,
    nominal_plan,
    stream_schedule,
)
from lossbench.codecs.soundspring.conceal import centred_windows, conceal_tokens, stream_windows
from lossbench.codecs.soundspring.frequencies import ENTROPY_MODELS, load_frequencies
from lossbench.codecs.soundspring.weights import load_mlm, mlm_path
from lossbench.core import CLOCK_TOLERANCE_S, DEFAULT_HEADER_BYTES, Clip, EncodedStream, Packet, PacketKind, Reception
from lossbench.errors import ConfigError

MODES = ("stream", "gos")
#: SoundSpring-S's entropy-coding window: the block (3) and its look-ahead (2), no past coarse frames; at the
#: same rate as 20 frames (6.33 against 6.34 kbit/s, K = 12) it leaves 4 % of the sent tokens invalid at 5 %
#: loss instead of 20 % (docs/sweeps/soundspring_context.toml)
STREAM_CONTEXT = 5
#: layers the model-based concealments restore (the lower levels): 3 (the coarse layers) scored best of 3, 4 and 6
#: on held-out speech with the concealment head (docs/sweeps/soundspring_depth.toml, docs/soundspring.md)
DEFAULT_CONCEAL_LAYERS = 3


def _clock_in_frames(reception: Reception | None, frame_s: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The harness's receiver clock in frames: (each packet's arrival, inf if lost; its playout deadline, with
    the clock's tolerance), or None where no playout buffer set deadlines."""
    if reception is None or not np.isfinite(reception.playout_deadline_s).any():
        return None
    arrival = np.where(reception.arrived, reception.arrival_time_s, np.inf) / frame_s
    return arrival, (reception.playout_deadline_s + CLOCK_TOLERANCE_S) / frame_s


def _int_list(v: Any, what: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),)
    try:
        return tuple(int(x) for x in str(v).replace(",", "/").split("/") if x != "")
    except ValueError:
        raise ConfigError(f"soundspring: {what} must be integers separated by '/', got {v!r}") from None


@CODECS.register("soundspring", "soundspring-s")
class SoundSpringCodec(CodecBase):
    """SoundSpring / SoundSpring-S over the shipped RVQ codec and masked LM.

    Args:
        layers: K, the RVQ layers sent (3..24; 0.5 kbit/s each before entropy coding).
        mode: ``stream`` (SoundSpring-S) or ``gos`` (non-streaming).
        stride: T_S, frames per block in stream mode.
        context: T_C, frames the MLM sees: in stream mode for entropy coding (default 5, the block and its
            look-ahead only: the past coarse frames bought no rate and made one lost packet invalidate the
            fine tokens of every block whose window held it, docs/sweeps/soundspring_context.toml), in gos
            mode for concealment (default 20).
        conceal_context: stream mode: frames the MLM sees when it conceals (default 20).
        lookahead: T_F, frames after a block the stream mode may wait for.
        gos: T_G, frames per group of slices in gos mode.
        slices: S, slice columns per block (default: one per frame in stream mode, 10 per GoS).
        bounds: layer-group bounds, e.g. ``3/6/12/24`` (the first is N_C, the coarse layers).
        pack: ``slice`` (a packet per slice), ``frame`` (a packet per slice column) or ``capture`` (stream mode,
            slices=1: the paper's Fig. 9 schedule, a packet per 20 ms frame sent when the frame is captured with
            its coarse tokens, a block's fine tokens in the packet of the frame that completes its look-ahead;
            :mod:`lossbench.codecs.soundspring.capture`).
        fec: coarse-token FEC: ``none``, ``next`` (copy in the next column's packet) or
            ``same`` (copy in the column's first enhancement packet, pack=slice).
        escape: 1 (default): a packet whose range-coded fine tokens would take as many bytes as their raw 10-bit
            indices or more sends them raw, flagged in its first byte, so the stream never costs more than the
            raw tokens; 0: every packet range-coded under the MLM (the ablation).
        entropy: what codes the fine tokens: ``mlm`` (default, the paper's: the masked LM's PMFs under Phi) or
            ``freq`` (lossbench's: each layer's token frequencies on the training tokens, no context and no
            Transformer pass; on the fargan backbone's tokens it codes in fewer bits than the MLM, whose context
            adds nothing measurable, and its fine tokens decode without their coarse condition tokens;
            :mod:`lossbench.codecs.soundspring.frequencies`). Concealment uses the MLM either way.
        freq_weights: another token-frequency table (``lossbench train soundspring-freq``).
        conceal_layers: the depth the ``mlm`` concealments restore (lower layers only).
        vbr: layer counts to choose from per block by its level, e.g. ``3/6/12/24``
            (empty: always ``layers``); thresholds in ``vbr_db`` (dBFS, one fewer).
        weights, mlm_weights: other safetensors for the backbone or the masked LM.
    """

    name = "soundspring"
    native_concealments: tuple[str, ...] = ("mlm", "mlm-head", "mlm-all", "mlm-soft", "zero-token")
    #: names of earlier releases: a spec that uses one is told the new name, never silently given another rule
    RENAMED = {"mlm-argmax": "mlm (the paper's rule, which mlm-argmax was); the concealment head is now mlm-head"}
    facts = ("mean_layers", "raw_token_kbps", "fine_coded_kbps", "fine_raw_kbps", "fine_escaped_fraction",
             "latency_ms", "own_clock_latency_ms", "token_loss",
             "token_invalid", "i_token_fraction", "coarse_fec_frames", "concealed_frames")

    def __init__(self, layers: int = 12, mode: str = "stream", stride: int = 3, context: int | None = None,
                 lookahead: int = 2, gos: int = 100, slices: int | None = None, bounds: Any = "3/6/12/24",
                 pack: str = "slice", fec: str = "next", conceal_layers: int = DEFAULT_CONCEAL_LAYERS, vbr: Any = "",
                 vbr_db: Any = "-50/-40/-30", weights: str | None = None, mlm_weights: str | None = None,
                 backbone: str = DEFAULT_BACKBONE, header_bytes: int = DEFAULT_HEADER_BYTES,
                 conceal_context: int = 20, escape: Any = 1, entropy: str = "mlm",
                 freq_weights: str | None = None) -> None:
        from lossbench.codecs.neural.backbones import get_backbone

        self._set_header(header_bytes)
        if mode not in MODES:
            raise ConfigError(f"soundspring: mode must be one of {', '.join(MODES)}; got {mode!r}")
        if pack == "capture" and mode != "stream":
            raise ConfigError("soundspring: pack=capture is SoundSpring-S's send schedule (mode=stream), got "
                              f"mode={mode!r}")
        self.backbone = get_backbone(backbone, weights)
        self.mlm = load_mlm(mlm_weights, self.backbone.name)
        if entropy not in ENTROPY_MODELS:
            raise ConfigError(f"soundspring: entropy must be one of {', '.join(ENTROPY_MODELS)}; got {entropy!r}")
        self.entropy, self.freq_weights = entropy, freq_weights
        #: what codes the fine tokens (the MLM, or the context-free frequencies)
        self.coder: CoderModel = (self.mlm if entropy == "mlm"
                                  else load_frequencies(freq_weights, self.backbone.name))
        nq = self.backbone.num_quantizers
        bnd = _int_list(bounds, "bounds")
        nc = bnd[0]
        if nc != self.mlm.cfg.n_coarse:
            raise ConfigError(f"soundspring: the first bound (coarse layers) must be the MLM's N_C = "
                              f"{self.mlm.cfg.n_coarse}, got {nc}")
        if bnd[-1] != nq:
            raise ConfigError(f"soundspring: the last bound must be {nq}, got bounds {bounds!r}")
        if int(layers) != layers or not nc <= layers <= nq:
            raise ConfigError(f"soundspring: layers must be an integer {nc}..{nq}, got {layers!r}")
        self.vbr = _int_list(vbr, "vbr") if vbr not in ("", None, 0) else ()
        self.vbr_db = _int_list(vbr_db, "vbr_db") if self.vbr else ()
        if self.vbr:
            if any(not nc <= k <= nq for k in self.vbr) or list(self.vbr) != sorted(self.vbr):
                raise ConfigError(f"soundspring: vbr layer counts must increase within {nc}..{nq}, got {vbr!r}")
            if len(self.vbr_db) != len(self.vbr) - 1:
                raise ConfigError(f"soundspring: vbr_db needs {len(self.vbr) - 1} thresholds for vbr={vbr!r}, "
                                  f"got {vbr_db!r}")
        if context is None:
            context = STREAM_CONTEXT if mode == "stream" else 20
        for nm, v, lo in (("stride", stride, 1), ("context", context, 1), ("lookahead", lookahead, 0),
                          ("conceal_context", conceal_context, 1),
                          ("gos", gos, 1), ("conceal_layers", conceal_layers, 0)):
            if int(v) != v or v < lo:
                raise ConfigError(f"soundspring: {nm} must be an integer >= {lo}, got {v!r}")
        if str(escape).lower() not in ("0", "1", "true", "false"):
            raise ConfigError(f"soundspring: escape must be 0 or 1, got {escape!r}")
        self.escape = str(escape).lower() in ("1", "true")
        self.mode = mode
        self.layers = int(layers)
        self.stride, self.context, self.lookahead, self.gos = int(stride), int(context), int(lookahead), int(gos)
        self.conceal_context = int(conceal_context)
        self.conceal_layers = int(conceal_layers)
        B = self.stride if mode == "stream" else self.gos
        S = int(slices) if slices is not None else (B if mode == "stream" else min(10, B))
        self.slices = S
        if mode == "stream":
            for nm, v in (("context", self.context), ("conceal_context", self.conceal_context)):
                if v > self.mlm.cfg.max_frames:
                    raise ConfigError(f"soundspring: {nm} ({v}) exceeds the MLM's {self.mlm.cfg.max_frames} frames")
            if self.conceal_context < B + self.lookahead:
                raise ConfigError(f"soundspring: conceal_context ({self.conceal_context}) must cover stride + "
                                  f"lookahead ({B + self.lookahead})")
            if self.context < B + self.lookahead:
                raise ConfigError(f"soundspring: context ({self.context}) must cover stride + lookahead "
                                  f"({B + self.lookahead})")
            ctx = self.context - B - self.lookahead
            self.layout = Layout(Slicing(B, S, bnd), ctx, self.lookahead, pack, fec, self.escape)
        else:
            self.layout = Layout(Slicing(B, S, bnd), 0, 0, pack, fec, self.escape)
        if B + self.layout.context + self.layout.lookahead > self.mlm.cfg.max_frames:
            raise ConfigError(f"soundspring: a window of {B + self.layout.context + self.layout.lookahead} frames "
                              f"exceeds the MLM's {self.mlm.cfg.max_frames}")
        self.bounds = bnd
        self.pack, self.fec = pack, fec
        self.weights, self.mlm_weights = weights, mlm_weights
        self.sample_rate_hz = self.backbone.sample_rate_hz
        self.frame_samples = self.backbone.hop
        self.delay_samples = self.backbone.delay_samples
        self.conceal_offset_samples = self.backbone.frame_offset_samples

    # ------------------------------------------------------------------ description

    def model_files(self) -> dict[str, Path]:
        files = {"codec": self.backbone.weights, "mlm": mlm_path(self.mlm_weights, self.backbone.name)}
        if self.entropy == "freq":
            from lossbench.codecs.neural.backbones import backbone_class

            files["token_freq"] = backbone_class(self.backbone.name).shipped_path("token_freq", self.freq_weights)
        return files

    def codec_params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"layers": self.layers, "mode": self.mode}
        if self.mode == "stream":
            p |= {"stride": self.stride, "context": self.context, "lookahead": self.lookahead}
            if self.conceal_context != 20:
                p["conceal_context"] = self.conceal_context
        else:
            p |= {"gos": self.gos, "context": self.context}
        p |= {"slices": self.slices, "pack": self.pack, "fec": self.fec}
        if not self.escape:
            p["escape"] = 0
        if self.entropy != "mlm":
            p["entropy"] = self.entropy
        p["backbone"] = self.backbone.name
        if self.conceal_layers != DEFAULT_CONCEAL_LAYERS:
            p["conceal_layers"] = self.conceal_layers
        if self.bounds != (3, 6, 12, 24):
            p["bounds"] = "/".join(map(str, self.bounds))
        if self.vbr:
            p["vbr"] = "/".join(map(str, self.vbr))
            p["vbr_db"] = "/".join(map(str, self.vbr_db))
        for k in ("weights", "mlm_weights", "freq_weights"):
            if getattr(self, k):
                p[k] = getattr(self, k)
        return p

    @property
    def latency_frames(self) -> int:
        """Algorithmic latency in frames, from the send schedule of a long stream at K = ``layers`` (see
        :func:`~lossbench.codecs.soundspring.coding.stream_schedule`): stream mode waits for the block, the
        next block's packets (they carry its look-ahead frames' coarse tokens) and the decoder's look-ahead;
        gos mode for the whole group of slices and the decoder's look-ahead."""
        n = 8 * (self.layout.block + self.layout.lookahead + self.backbone.decoder_lookahead_frames)
        if self.capture:
            return capture_latency(self.layout, n, self.backbone.decoder_lookahead_frames)[1]
        plan, send = nominal_plan(self.layout, self.layers, n)
        return self.schedule(plan, send, n).latency

    @property
    def capture(self) -> bool:
        """SoundSpring-S on the paper's Fig. 9 schedule: a packet per frame, sent when the frame is captured."""
        return self.layout.pack == "capture"

    @property
    def packet_duration_s(self) -> float:
        """The audio a packet carries: a slice column's frames (``pack=slice`` sends a column's layer groups in
        packets of their own, each for the same frames)."""
        if self.capture:
            return self.frame_duration_s
        return self.layout.block / self.slices * self.frame_duration_s

    def schedule(self, plan: list, send: np.ndarray, n_frames: int) -> Schedule:
        dl = self.backbone.decoder_lookahead_frames
        # gos mode conceals in windows centred on the frame: up to ``context`` frames ahead count as needed
        ahead = dl if self.mode == "stream" else max(dl, self.context)
        return stream_schedule(plan, send, self.layout, n_frames, ahead)

    # ------------------------------------------------------------------ sender

    def tokens(self, samples: np.ndarray) -> np.ndarray:
        """All layers of tokens, (frames, N_q)."""
        return self.backbone.encode(samples)

    def block_layers(self, samples: np.ndarray, n_frames: int) -> list[int]:
        """K of every block: ``layers``, or with ``vbr`` the level class of the block's audio."""
        blocks = self.layout.blocks(n_frames)
        if not self.vbr:
            return [self.layers] * len(blocks)
        F = self.frame_samples
        out = []
        for b0, T in blocks:
            seg = samples[b0 * F : (b0 + T) * F].astype(np.float64)
            db = 10 * np.log10(np.mean(seg**2) + 1e-12)
            out.append(self.vbr[int(np.searchsorted(self.vbr_db, db, side="right"))])
        return out

    def encode(self, clip: Clip) -> EncodedStream:
        n = clip.num_samples
        nf = self.n_frames(n)
        x = self.padded_input(clip)
        toks = self.tokens(x)
        Ks = self.block_layers(x, nf)
        plan = (encode_capture if self.capture else encode_tokens)(self.coder, toks, Ks, self.layout)
        fd = self.frame_duration_s
        packets = [Packet(i, sp.send_frame * fd, sp.payload, sp.frames, PacketKind.PRIMARY) for i, sp in enumerate(plan)]
        blocks = self.layout.blocks(nf)
        K_frame = np.concatenate([[K] * T for (_, T), K in zip(blocks, Ks)])
        raw_bits = 10 * int(K_frame.sum())
        fec_bits = 8 * sum(p.fec_bytes for p in plan)
        coded_bits = 8 * sum(p.coded_bytes for p in plan)
        # the fine tokens raw as the packets would carry them: 10-bit indices, byte-padded per packet (the same
        # framing as the coded stream, so the escape makes coded <= raw hold packet by packet and in total)
        fine_raw_bits = 8 * sum(p.raw_bytes for p in plan)
        fine = [p for p in plan if p.raw_bytes]  # the packets that carry fine tokens
        dur = n / self.sample_rate_hz
        if self.capture:
            own, full = capture_latency(self.layout, nf, self.backbone.decoder_lookahead_frames)
        else:
            sched = self.schedule(plan, np.array([p.send_frame for p in plan]), nf)
            own, full = sched.send_latency, sched.latency
        return EncodedStream(
            codec=self.name, config=self.config(), sample_rate_hz=self.sample_rate_hz, num_samples=n,
            frame_duration_s=fd, packets=tuple(packets), header_bytes=self.header_bytes,
            meta={"frames": nf, "mean_layers": float(K_frame.mean()), "raw_token_kbps": raw_bits / dur / 1000.0,
                  "fec_kbps": fec_bits / dur / 1000.0,
                  # the fine tokens: what they cost as sent (range-coded under the MLM, or raw where that would
                  # cost more: the escape) against raw 10-bit indices; the share of packets whose fine tokens went raw
                  "fine_coded_kbps": coded_bits / dur / 1000.0, "fine_raw_kbps": fine_raw_bits / dur / 1000.0,
                  "fine_escaped_fraction": sum(p.escaped for p in fine) / len(fine) if fine else 0.0,
                  "plan": [(p.block, p.column, p.groups) for p in plan],
                  "latency_ms": 1000.0 * own * fd, "own_clock_latency_ms": 1000.0 * full * fd},
        )

    # ------------------------------------------------------------------ receiver

    def receive_tokens(self, stream: EncodedStream, reception: Reception | None):
        usable = np.ones(stream.num_packets, bool) if reception is None else reception.usable
        nf = self.n_frames(stream.num_samples)
        if self.capture:
            return self._receive_capture(stream, reception, usable, nf)
        plan = [SlicePacket(b, c, tuple(g), b"", range(0), 0) for b, c, g in stream.meta["plan"]]
        got = [SlicePacket(pl.block, pl.column, pl.groups, p.payload, pl.frames, 0) if u else None
               for pl, p, u in zip(plan, stream.packets, usable)]
        send = cutoff = None
        fd = stream.frame_duration_s
        if (clock := _clock_in_frames(reception, fd)) is not None:
            # the receiver clock of the harness (a playout buffer set deadlines): a block uses a packet only if it
            # arrived by the block's playout time, the earliest deadline of the block's own packets
            send, packet_deadline = clock
            cutoff = np.full(len(self.layout.blocks(nf)), np.inf)
            np.minimum.at(cutoff, [pl.block for pl in plan], packet_deadline)
        elif self.mode == "stream":  # no buffer: each block uses what was sent by its decision time
            send = np.rint(np.array([p.send_time_s for p in stream.packets]) / fd).astype(np.int64)
            cutoff = self.schedule(plan, send, nf).cutoff
        return decode_tokens(self.coder, got, plan, nf, self.layout, self.backbone.num_quantizers, send, cutoff)

    def _receive_capture(self, stream: EncodedStream, reception: Reception | None, usable: np.ndarray, nf: int):
        """The capture schedule's receiver: every frame decides at its own playout time (the deadline of its own
        packet), on the one receiver clock; without deadlines every arrived packet counts (no private clock)."""
        plan = capture_plan(self.layout, nf)
        if len(plan) != stream.num_packets:
            raise ConfigError(f"soundspring capture stream: {stream.num_packets} packets for {nf} frames")
        got = [SlicePacket(pl.block, pl.column, pl.groups, p.payload, pl.frames, pl.send_frame, fine_of=pl.fine_of)
               if u else None for pl, p, u in zip(plan, stream.packets, usable)]
        arrival, cutoff = _clock_in_frames(reception, stream.frame_duration_s) or (None, None)  # packet t: frame t's
        return decode_capture(self.coder, got, plan, nf, self.layout, self.backbone.num_quantizers, arrival, cutoff)

    @functools.cached_property
    def _codebooks(self) -> list[np.ndarray]:
        """What each token adds to the latent per layer, float64 (V, D): what mlm-soft takes expectations over."""
        return [t.numpy().astype(np.float64) for t in self.backbone.layer_tables()]

    @functools.cached_property
    def _head(self):
        """The concealment head of the shipped MLM (None for another MLM or a backbone without one)."""
        if self.mlm_weights and Path(self.mlm_weights).resolve() != mlm_path(None, self.backbone.name).resolve():
            return None  # the head is trained on the shipped MLM's hidden states
        from lossbench.codecs.soundspring.coarse_head import load_head

        return load_head(self.backbone.name, self.mlm)

    @functools.cached_property
    def _tables(self) -> list:
        return self.backbone.layer_tables()

    def latents(self, tokens: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """(frames, D): sum over each frame's first ``depth[t]`` layers of what its tokens add."""
        import torch

        cbs = self._tables
        N = tokens.shape[0]
        out = torch.zeros(N, self.backbone.latent_size)
        idx = torch.from_numpy(tokens.astype(np.int64))
        d = torch.from_numpy(depth.astype(np.int64))
        for k in range(int(depth.max(initial=0))):
            m = d > k
            if m.any():
                out[m] += cbs[k][idx[m, k].clamp(0, cbs[k].shape[0] - 1)]
        return out.numpy()

    def decode_latents(self, lat: np.ndarray) -> np.ndarray:
        return self.backbone.latent_to_audio(lat)

    def decode(self, stream: EncodedStream, reception: Reception | None = None,
               concealment: str = "zeros") -> DecodeResult:
        return self.decode_many(stream, reception, [concealment])[0]

    def decode_many(self, stream: EncodedStream, reception: Reception | None,
                    concealments: list[str]) -> list[DecodeResult]:
        """Entropy decoding (the MLM's PMFs of every slice that can be decoded) once; then each concealment."""
        self.check_stream(stream)
        if "plan" not in stream.meta:
            raise ConfigError("soundspring stream has no packet plan in its meta")
        names = [self.check_concealment(c) for c in concealments]
        rec = self.receive_tokens(stream, reception)
        return [self._conceal_and_voice(stream, rec, n) for n in names]

    def _depth(self, name: str, K_frame: np.ndarray) -> int:
        """How many layers a concealment restores: every layer of the frame's K for ``mlm-all``, else the lower
        ``conceal_layers`` (at least the coarse ones)."""
        if name == "mlm-all":
            return int(K_frame.max(initial=self.layers))
        return max(self.layout.slicing.n_coarse, self.conceal_layers)

    def _conceal_and_voice(self, stream: EncodedStream, rec, name: str) -> DecodeResult:
        nf = rec.tokens.shape[0]
        blocks = self.layout.blocks(nf)
        Ks = np.array(rec.Ks)
        known = Ks[Ks > 0]
        fill_K = int(known[0]) if known.size else self.layers
        K_frame = np.concatenate([[K or fill_K] * T for (_, T), K in zip(blocks, Ks)]).astype(np.int64)
        prefix = rec.prefix()
        nc = self.layout.slicing.n_coarse
        toks, depth = rec.tokens, prefix
        concealed = np.zeros(nf, dtype=bool)
        soft = None
        model_based = name in ("mlm", "mlm-head", "mlm-all", "mlm-soft")
        if model_based:
            wins = (stream_windows(blocks, self.conceal_context, self.lookahead, nf) if self.mode == "stream"
                    else centred_windows(nf, self.context))
            cbs = self._codebooks if name == "mlm-soft" else None
            head = self._head if name == "mlm-head" else None
            stream_view = self.mode == "stream" and rec.cutoff is not None
            toks, depth, concealed, soft = conceal_tokens(
                self.mlm, rec.tokens, prefix, K_frame, wins, self._depth(name, K_frame), cbs,
                rec.coarse_time if stream_view else None, rec.cutoff if stream_view else None, head=head)
        bad = depth < nc if model_based else prefix < nc  # frames without their coarse tokens
        if name not in self.native_concealments:
            depth = np.where(prefix >= nc, prefix, 0)
        if name == "mlm-soft":
            lat = self.latents(toks, prefix) + soft
        else:  # the head's continuous correction, where it concealed
            lat = self.latents(toks, depth) + (soft if soft is not None else 0.0)
        audio = self.finish_audio(self.decode_latents(lat), bad, name, stream.num_samples)
        st = rec.state
        sent = st != "-"
        i_frac = float((st == "I").sum() / max(sent.sum(), 1))
        info = {
            "token_loss": float((st == "L").sum() / max(sent.sum(), 1)),
            "token_invalid": i_frac,
            "i_token_fraction": i_frac,  # the sent tokens made invalid by a missing condition token
            "coarse_fec_frames": int(rec.fec_recovered.sum()),
            "concealed_frames": int(concealed.sum()),
        }
        return DecodeResult(audio, prefix < K_frame, rec.fec_recovered.copy(), rec.corrupt, info)
