"""SoundSpring's token coding under the dependency pattern Phi (paper §III-B, Fig. 3–4, Fig. 9).

::

    the token stream (N frames x K layers) is cut into blocks of B frames:
      non-streaming SoundSpring:  a block is a GoS of T_G frames
      SoundSpring-S (streaming):  a block is one stride of T_S frames

    inside a block, S slice columns (column l holds frames t with t mod S = l)
    and layer groups j (0 = the coarse layers 1..N_C; j >= 1 the fine groups
    between the layer bounds, e.g. 3 | 6 | 12 | 24) make the slice grid S_{l,j}

    coarse slices S_{l,0}:   10 bits per token, no model (paper guideline 2)
    key slices S_{l*,j}:     coded under the MLM's PMFs given coarse tokens only
    non-key slices S_{l,j}:  given the coarse tokens and the key slices' groups 1..j

    the model sees a window around the block: ``context`` frames before it and
    ``lookahead`` frames after it contribute their coarse tokens (SoundSpring-S:
    T_C context frames, T_F look-ahead frames; a GoS uses its own frames only)

Tokens inside a slice are coded in parallel from one forward pass (guideline
3): a block costs 1 + J forward passes at the sender and the same at the
receiver. The MLM runs single-threaded so that the sender's and the
receiver's PMFs are bit-identical (range decoding with other PMFs than the
encoder's would silently yield other tokens).

Packets: ``pack="slice"`` sends one packet per slice (the authors' progressive
layer packets); ``pack="frame"`` one packet per slice column, holding all its
layer groups in one range-coded stream. Coarse-token FEC copies a column's
coarse tokens into the packet of the next column (``fec="next"``) or into the
same column's first enhancement packet (``fec="same"``, with per-slice packets).

Wire format of one packet::

    byte 0        K (the block's number of layers, 3..24), signalled in every packet; bit 7 (ESCAPE) set
                  when the packet's fine tokens are sent raw
    [coarse]      10-bit packed coarse tokens of the column, if the packet holds j = 0
    [fec]         10-bit packed coarse tokens of the protected column, if any
    [fine]        range-coded 32-bit words of the packet's fine slices, in group order; or, with ESCAPE, their
                  tokens 10-bit packed in the same order
    CRC-16        over everything before it: a damaged packet is treated as lost

The escape: the coder never sends more than the raw tokens. Where the range-coded fine part of a packet (the
MLM's code length plus the coder's termination) would be as long as the tokens packed at 10 bits or longer, the
packet carries them raw and says so in byte 0, as real codecs escape to PCM. A raw unit needs no condition
tokens at the receiver: it decodes even where the coarse tokens or key slices its PMFs would need were lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union, cast

import numpy as np

from lossbench.codecs.entropy import CategoricalStream, crc_frame, crc_unframe
from lossbench.codecs.fec import PayloadError
from lossbench.codecs.neural.threads import single_thread
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.codecs.soundspring.frequencies import TokenFrequencies
from lossbench.errors import ConfigError

if TYPE_CHECKING:
    from lossbench.codecs.soundspring.mlm import MaskedTokenLM

#: what codes the fine tokens: the masked LM (the paper's), or the context-free token frequencies (``entropy=freq``)
CoderModel = Union["MaskedTokenLM", TokenFrequencies]

PACKINGS = ("slice", "frame", "capture")
FEC_MODES = ("none", "next", "same")
#: bit 7 of a packet's first byte: its fine tokens are 10-bit packed, not range-coded
ESCAPE = 0x80


@dataclass(frozen=True)
class Slicing:
    """The slice grid of one block (a GoS, or one stride of SoundSpring-S)."""

    frames: int  # B: T_G, or T_S when streaming
    slices: int  # S
    bounds: tuple[int, ...] = (3, 6, 12, 24)  # N_1 = N_C, ..., N_{J+1}
    key: int = 0  # l*

    def __post_init__(self) -> None:
        if not 1 <= self.slices <= self.frames:
            raise ConfigError(f"slices must lie in 1..frames ({self.frames}), got {self.slices}")
        if list(self.bounds) != sorted(set(self.bounds)) or self.bounds[0] < 1:
            raise ConfigError(f"layer bounds must increase strictly from >= 1, got {self.bounds}")
        if not 0 <= self.key < self.slices:
            raise ConfigError(f"key slice must lie in 0..{self.slices - 1}, got {self.key}")

    @property
    def n_coarse(self) -> int:
        return self.bounds[0]

    def frames_of(self, col: int, T: int | None = None) -> np.ndarray:
        """Block-relative frames of slice column ``l`` in a block of ``T`` frames."""
        return np.arange(col, T or self.frames, self.slices)

    def layers_of(self, j: int, K: int) -> np.ndarray:
        """Layers (0-based) of layer group j (0 = coarse) among the first K."""
        lo = 0 if j == 0 else self.bounds[j - 1]
        return np.arange(lo, min(self.bounds[j], K))

    def groups(self, K: int) -> list[int]:
        """Layer groups that hold at least one of the first K layers."""
        return [j for j in range(len(self.bounds)) if self.layers_of(j, K).size]

    def columns(self, T: int) -> list[int]:
        return [col for col in range(self.slices) if col < T]


@dataclass(frozen=True)
class Layout:
    """How a token stream is cut into blocks, slices and packets."""

    slicing: Slicing
    context: int = 0  # coarse frames before the block the entropy model sees
    lookahead: int = 0  # coarse frames after the block the entropy model sees
    pack: str = "slice"
    fec: str = "none"
    #: a packet whose range-coded fine part would be as long as its raw tokens or longer sends them raw (ESCAPE);
    #: False codes every packet under the MLM (the ablation: what the model alone costs)
    escape: bool = True

    def __post_init__(self) -> None:
        if self.pack not in PACKINGS:
            raise ConfigError(f"pack must be one of {', '.join(PACKINGS)}; got {self.pack!r}")
        if self.fec not in FEC_MODES:
            raise ConfigError(f"fec must be one of {', '.join(FEC_MODES)}; got {self.fec!r}")
        if self.fec == "same" and self.pack != "slice":
            raise ConfigError("fec='same' puts the coarse copy into the column's enhancement packet, which needs "
                              "pack='slice'; use fec='next' with pack='frame'")
        if self.context < 0 or self.lookahead < 0:
            raise ConfigError(f"context and lookahead must be >= 0, got {self.context}, {self.lookahead}")
        if self.pack == "capture" and (self.slicing.slices != 1 or self.fec not in ("none", "next")):
            raise ConfigError(f"pack='capture' (a packet per frame, sent when the frame is captured, the paper's "
                              f"Fig. 9) codes a block's fine tokens as one slice: it needs slices=1 and fec 'none' or "
                              f"'next', got slices={self.slicing.slices}, fec={self.fec!r}")

    @property
    def block(self) -> int:
        return self.slicing.frames

    def blocks(self, n_frames: int) -> list[tuple[int, int]]:
        """(first frame, frame count) of every block of a stream of ``n_frames`` frames."""
        B = self.block
        return [(b0, min(B, n_frames - b0)) for b0 in range(0, n_frames, B)]

    def frame_blocks(self, n_frames: int) -> np.ndarray:
        """int (n_frames,): the block of every frame."""
        sizes = [T for _, T in self.blocks(n_frames)]
        return np.repeat(np.arange(len(sizes)), sizes)

    def window(self, b0: int, T: int, n_frames: int) -> tuple[int, int]:
        return max(0, b0 - self.context), min(n_frames, b0 + T + self.lookahead)

    def packet_groups(self, K: int, T: int) -> list[tuple[int, tuple[int, ...]]]:
        """(column, layer groups) of each packet of a block of T frames, in send order."""
        sl = self.slicing
        gs = sl.groups(K)
        cols = sl.columns(T)
        if self.pack == "frame":
            return [(col, tuple(gs)) for col in cols]
        out: list[tuple[int, tuple[int, ...]]] = [(col, (0,)) for col in cols]
        return out + [(col, (j,)) for j in gs[1:] for col in cols]


# --------------------------------------------------------------------------- the model's PMFs


def mlm_probs(model: MaskedTokenLM, visible: np.ndarray, frames: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """PMFs (len(frames), len(layers), V) given tokens (W, K): >= 0 visible, -1 masked, -2 absent."""
    return mlm_probs_rows(model, visible[None], frames, [layers])[0]


def mlm_probs_rows(model: MaskedTokenLM, visible: np.ndarray, frames: np.ndarray, layers: list[np.ndarray]
                   ) -> list[np.ndarray]:
    """One batched Transformer pass over windows (B, W, K); row b's PMFs (len(frames), len(layers[b]), V)."""
    import torch

    inp = np.where(visible == -1, model.cfg.mask_id, visible)
    fr = torch.from_numpy(frames)
    with torch.no_grad(), single_thread():
        h = model.hidden(torch.from_numpy(inp.astype(np.int64)), fr)
        return [torch.softmax(model.heads(h[b : b + 1], None, torch.from_numpy(lay))[0].double(), -1).numpy()
                for b, lay in enumerate(layers)]


def mlm_logits(model: MaskedTokenLM, visible: np.ndarray, frames: np.ndarray, layer: int) -> np.ndarray:
    """Logits (len(frames), V) of one layer."""
    import torch

    inp = np.where(visible == -1, model.cfg.mask_id, visible)
    with torch.no_grad(), single_thread():
        return model(torch.from_numpy(inp.astype(np.int64)).unsqueeze(0), torch.from_numpy(frames),
                     torch.tensor([layer]))[0, :, 0].numpy()


class _BlockModel:
    """The PMFs of one block's fine slices, pass by pass, as both ends compute them.

    Two Transformer passes per block, whatever the number J of fine groups:
    the key pass (coarse tokens only) gives the key column's fine PMFs; the
    non-key pass, batched over the fine groups (group g sees the key slices of
    groups 1..g), gives each group's PMFs for the other columns. Output heads
    run only for the frames and layers a pass codes. Floating-point results
    depend on the shapes of these calls, and both ends make the same calls.
    """

    def __init__(self, model: CoderModel, layout: Layout, coarse_win: np.ndarray, off: int, T: int, K: int):
        sl = layout.slicing
        self.sl, self.off, self.T, self.K = sl, off, T, K
        self.free: TokenFrequencies | None = model if isinstance(model, TokenFrequencies) else None
        self.model = cast("MaskedTokenLM", model)  # used only when ``free`` is None
        W = coarse_win.shape[0]
        self.vis = np.full((W, K), -1, dtype=np.int64)
        self.vis[:, : sl.n_coarse] = coarse_win
        self.coarse_vis = self.vis.copy()
        self.key_cols = sl.frames_of(sl.key, T)
        self.key_f = off + self.key_cols
        self.other_cols = np.setdiff1d(np.arange(T), self.key_cols)
        self._key_p: np.ndarray | None = None
        self._nonkey_p: dict[int, np.ndarray] = {}

    def key_probs(self) -> np.ndarray:
        """PMFs (frames of the key column, K - N_C fine layers, V)."""
        if self._key_p is None and self.free is not None:
            self._key_p = self.free.probs(self.key_f.size, np.arange(self.sl.n_coarse, self.K))
        if self._key_p is None:
            self._key_p = mlm_probs(self.model, self.coarse_vis, self.key_f, np.arange(self.sl.n_coarse, self.K))
        return self._key_p

    def set_key(self, j: int, toks: np.ndarray) -> None:
        """Key-slice tokens of group j, (frames of the key column, layers of j)."""
        if self._nonkey_p:
            raise RuntimeError("key slices must all be set before the non-key PMFs are computed")
        self.vis[np.ix_(self.key_f, self.sl.layers_of(j, self.K))] = toks

    def nonkey_probs(self, j: int) -> np.ndarray:
        """PMFs (non-key frames of the block, layers of group j, V): need the key slices of groups 1..j set.

        The first call computes every fine group's in one batched pass. Both
        ends call it only after reading every key slice they can; a group whose
        key slices are missing gets PMFs that are never used (its non-key
        slices are invalid), and the batch keeps the same shape at both ends.
        """
        if not self._nonkey_p and self.free is not None:
            self._nonkey_p = {g: self.free.probs(self.other_cols.size, self.sl.layers_of(g, self.K))
                              for g in self.sl.groups(self.K)[1:]}
        if not self._nonkey_p:
            fine = self.sl.groups(self.K)[1:]
            vs = np.repeat(self.vis[None], len(fine), 0)
            for i, g in enumerate(fine):
                above = np.arange(self.sl.layers_of(g, self.K)[-1] + 1, self.K)
                vs[i][np.ix_(self.key_f, above)] = -1
            ps = mlm_probs_rows(self.model, vs, self.off + self.other_cols, [self.sl.layers_of(g, self.K) for g in fine])
            self._nonkey_p = dict(zip(fine, ps))
        return self._nonkey_p[j]

    def probs(self, col: int, j: int) -> np.ndarray:
        """PMFs of slice (l, j), frame-major then layer: (frames x layers, V)."""
        lay = self.sl.layers_of(j, self.K)
        if col == self.sl.key:
            p = self.key_probs()[:, lay - self.sl.n_coarse]
        else:
            p = self.nonkey_probs(j)[np.searchsorted(self.other_cols, self.sl.frames_of(col, self.T))]
        return p.reshape(-1, p.shape[-1])


def _fec_target(layout: Layout, blocks: list[tuple[int, int]], b: int, col: int) -> tuple[int, int] | None:
    """(block, column) whose coarse tokens the packet of (b, l) carrying FEC protects."""
    if layout.fec == "same":
        return (b, col)
    if layout.fec == "next":
        if col > 0:
            return (b, col - 1)
        if b > 0:
            return (b - 1, layout.slicing.columns(blocks[b - 1][1])[-1])
    return None


def _carries_fec(layout: Layout, K: int, groups: tuple[int, ...]) -> bool:
    if layout.fec == "next":
        return 0 in groups
    if layout.fec == "same":
        fine = layout.slicing.groups(K)[1:]
        return bool(fine) and groups == (fine[0],)
    return False


@dataclass(frozen=True)
class SlicePacket:
    """One packet of the token stream: the block, its slice column and layer groups."""

    block: int
    column: int
    groups: tuple[int, ...]
    payload: bytes
    frames: range  # the block's frames (absolute)
    send_frame: int  # the frame after whose end the packet can be sent
    fec_bytes: int = 0  # bytes of the coarse-token FEC copy inside the payload
    coded_bytes: int = 0  # bytes of the fine tokens inside the payload (range-coded, or raw when escaped)
    escaped: bool = False  # the fine tokens went raw: the MLM's code would have been as long or longer
    raw_bytes: int = 0  # bytes the packet's fine tokens take 10-bit packed
    #: pack='capture': the blocks whose fine tokens the packet carries (the packet's own coarse tokens are frame
    #: ``frames[0]``'s, of block ``block``)
    fine_of: tuple[int, ...] = ()


def check_layers(tokens: np.ndarray, Ks: list[int], layout: Layout) -> list[tuple[int, int]]:
    """The blocks of a token stream (N, >= max K), after checking one K per block, each in N_C..the tokens' layers."""
    blocks = layout.blocks(tokens.shape[0])
    if len(Ks) != len(blocks):
        raise ConfigError(f"need one K per block: {len(blocks)} blocks, {len(Ks)} values")
    nc = layout.slicing.n_coarse
    for K in Ks:
        if not nc <= K <= tokens.shape[1]:
            raise ConfigError(f"K must lie in {nc}..{tokens.shape[1]}, got {K}")
    return blocks


def encode_tokens(model: CoderModel, tokens: np.ndarray, Ks: list[int], layout: Layout) -> list[SlicePacket]:
    """Packets of a token stream: ``tokens`` (N, >= max K) int, ``Ks`` one K per block."""
    sl = layout.slicing
    N = tokens.shape[0]
    blocks = check_layers(tokens, Ks, layout)
    nc = sl.n_coarse
    out: list[SlicePacket] = []
    for b, ((b0, T), K) in enumerate(zip(blocks, Ks)):
        w0, w1 = layout.window(b0, T, N)
        bm = _BlockModel(model, layout, tokens[w0:w1, :nc], b0 - w0, T, K)
        fine = sl.groups(K)[1:]
        if fine:
            for j in fine:  # key slices first: the non-key PMFs condition on them
                bm.set_key(j, tokens[np.ix_(b0 + sl.frames_of(sl.key, T), sl.layers_of(j, K))])
        for col, groups in layout.packet_groups(K, T):
            f = b0 + sl.frames_of(col, T)
            parts = [bytes([K])]
            fec_bytes = 0
            if 0 in groups:
                parts.append(pack_indices(tokens[np.ix_(f, np.arange(nc))].ravel()))
            if _carries_fec(layout, K, groups) and (tg := _fec_target(layout, blocks, b, col)) is not None:
                tb0, tT = blocks[tg[0]]
                ff = tb0 + sl.frames_of(tg[1], tT)
                parts.append(pack_indices(tokens[np.ix_(ff, np.arange(nc))].ravel()))
                fec_bytes = len(parts[-1])
            runs = [(tokens[np.ix_(f, sl.layers_of(j, K))].ravel(), bm.probs(col, j)) for j in groups if j > 0]
            coded, escaped, raw_n = b"", False, 0
            if runs:
                coded = CategoricalStream.encode(runs)
                raw = pack_indices(np.concatenate([r[0] for r in runs]))
                raw_n = len(raw)
                if layout.escape and len(raw) <= len(coded):  # the escape: never more than the raw tokens
                    coded, escaped = raw, True
                    parts[0] = bytes([K | ESCAPE])
            parts.append(coded)
            out.append(SlicePacket(b, col, groups, crc_frame(b"".join(parts)), range(b0, b0 + T),
                                   min(N, b0 + T + layout.lookahead), fec_bytes, len(coded), escaped, raw_n))
    return out


# --------------------------------------------------------------------------- the send schedule

@dataclass(frozen=True)
class Schedule:
    """When a streaming receiver may use what, from the packets' send times (in frames).

    Frame t's output starts ``latency`` frames after frame t starts (its algorithmic latency: the frame itself,
    the wait for every packet its latent needs, and the decoder's look-ahead). Block b's tokens are decided
    (entropy-decoded and concealed) at ``cutoff[b]``, the output time of the first frame whose samples depend
    on them: only packets sent by then count for block b, so nothing sent later can change its frames.
    """

    latency: int
    cutoff: np.ndarray  # int (blocks,)
    #: frames from a frame's start to the send of the packets holding its own tokens, plus the decoder's
    #: look-ahead: the algorithmic delay a receiver clock charges (a playout buffer must cover the rest of
    #: ``latency``: the wait for the next block's packets)
    send_latency: int = 0


def coarse_carriers(plan: list[SlicePacket], layout: Layout, n_frames: int) -> np.ndarray:
    """Per frame, the index in ``plan`` of the packet carrying its coarse tokens (not the FEC copy)."""
    sl = layout.slicing
    blocks = layout.blocks(n_frames)
    out = np.full(n_frames, -1, dtype=np.int64)
    for i, pk in enumerate(plan):
        if 0 in pk.groups:
            b0, T = blocks[pk.block]
            out[b0 + sl.frames_of(pk.column, T)] = i
    return out


def stream_schedule(plan: list[SlicePacket], send: np.ndarray, layout: Layout, n_frames: int,
                    decoder_lookahead: int) -> Schedule:
    """The algorithmic latency and each block's decision time, from the packets' send frames ``send``.

    A block's latents need all its packets and the coarse tokens of its entropy-coding window (the look-ahead
    frames of the next block among them); frame t's output needs the latents of frames t .. t + the decoder's
    look-ahead. The latency is the largest wait, over frames, from a frame's start to the last send it needs.
    """
    blocks = layout.blocks(n_frames)
    send = np.asarray(send, dtype=np.int64)
    carrier = coarse_carriers(plan, layout, n_frames)
    block_send = np.zeros(len(blocks), dtype=np.int64)
    for i, pk in enumerate(plan):
        block_send[pk.block] = max(block_send[pk.block], send[i])
    need_block = np.zeros(len(blocks), dtype=np.int64)
    for b, (b0, T) in enumerate(blocks):
        w0, w1 = layout.window(b0, T, n_frames)
        c = carrier[w0:w1]
        need_block[b] = max(int(block_send[b]), int(send[c[c >= 0]].max(initial=0)))
    need_frame = need_block[layout.frame_blocks(n_frames)]
    dl = int(decoder_lookahead)
    latency = 0
    for t in range(n_frames):
        latency = max(latency, int(need_frame[t : t + dl + 1].max()) - t)
    cutoff = np.array([max(0, b0 - dl) + latency for b0, _ in blocks], dtype=np.int64)
    own = block_send[layout.frame_blocks(n_frames)] - np.arange(n_frames)
    return Schedule(latency, cutoff, int(own.max(initial=0)) + dl)


def nominal_plan(layout: Layout, K: int, n_frames: int) -> tuple[list[SlicePacket], np.ndarray]:
    """The packet plan and send frames ``encode_tokens`` gives a stream of ``n_frames`` frames (no payloads)."""
    plan, send = [], []
    for b, (b0, T) in enumerate(layout.blocks(n_frames)):
        for col, groups in layout.packet_groups(K, T):
            plan.append(SlicePacket(b, col, groups, b"", range(b0, b0 + T), min(n_frames, b0 + T + layout.lookahead)))
            send.append(plan[-1].send_frame)
    return plan, np.array(send, dtype=np.int64)


# --------------------------------------------------------------------------- receiver


@dataclass
class Received:
    """What the receiver recovered from a token stream.

    Attributes:
        tokens: int (N, 24); values where ``state`` is 'R'.
        state: 'R' received, 'L' lost, 'I' invalid (a condition token or a lower layer missing),
            '-' not sent (above the block's K).
        Ks: K of each block, 0 where no packet of the block arrived.
        fec_recovered: bool (N,), frames whose coarse tokens came from an FEC copy.
        corrupt: payloads that arrived but failed their CRC or did not parse.
        coarse_time: float (N,), the send frame of the first arrived packet holding the frame's coarse tokens
            (inf if none); with ``cutoff``, what a later block's concealment may see of it.
        cutoff: float (blocks,), when each block's tokens were decided (inf: no deadline, the whole stream).
    """

    tokens: np.ndarray
    state: np.ndarray
    Ks: list[int]
    fec_recovered: np.ndarray
    corrupt: int = 0
    coarse_time: np.ndarray | None = None
    cutoff: np.ndarray | None = None

    def prefix(self) -> np.ndarray:
        """Per frame, the number of leading layers received (the RVQ-usable depth)."""
        ok = self.state == "R"
        return np.where(ok.all(1), ok.shape[1], np.argmin(ok, 1))


def _parse(payload: bytes, layout: Layout, K_max: int, groups: tuple[int, ...], col_frames: int,
           fec_frames: int | None) -> tuple[int, np.ndarray | None, np.ndarray | None, bytes, bool]:
    """(K, coarse, fec coarse, fine part, whether it is escaped) of a packet; PayloadError if it does not parse."""
    body = crc_unframe(payload)
    if not body:
        raise PayloadError("empty packet")
    nc = layout.slicing.n_coarse
    K, escaped = body[0] & ~ESCAPE, bool(body[0] & ESCAPE)
    if not nc <= K <= K_max:
        raise PayloadError(f"packet signals K = {K}, outside {nc}..{K_max}")
    pos = 1
    coarse = fec = None
    if 0 in groups:
        n = -(-col_frames * nc * 10 // 8)
        coarse = unpack_indices(body[pos : pos + n], col_frames * nc).reshape(col_frames, nc) if len(body) >= pos + n else None
        if coarse is None:
            raise PayloadError("packet too short for its coarse tokens")
        pos += n
    if fec_frames is not None and _carries_fec(layout, K, groups):
        n = -(-fec_frames * nc * 10 // 8)
        if len(body) < pos + n:
            raise PayloadError("packet too short for its FEC copy")
        fec = unpack_indices(body[pos : pos + n], fec_frames * nc).reshape(fec_frames, nc)
        pos += n
    if escaped:  # the raw fine tokens must fill the rest exactly: a unit cut short does not parse
        layers = layout.slicing
        count = col_frames * sum(layers.layers_of(j, K).size for j in groups if j > 0)
        if count == 0 or len(body) - pos != -(-count * 10 // 8):
            raise PayloadError(f"escaped packet holds {len(body) - pos} bytes for {count} raw fine tokens")
    return K, coarse, fec, body[pos:], escaped


def empty_reception(n_frames: int, K_max: int, n_blocks: int
                    ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray, np.ndarray]:
    """What a receiver starts from: tokens (zeros), states (all 'L'), each block's K (0: unknown), the frames
    recovered from FEC (none) and each frame's coarse-token arrival (never)."""
    return (np.zeros((n_frames, K_max), dtype=np.int64), np.full((n_frames, K_max), "L", dtype="<U1"),
            [0] * n_blocks, np.zeros(n_frames, dtype=bool), np.full(n_frames, np.inf))


def decode_tokens(model: CoderModel, packets: list[SlicePacket | None], plan: list[SlicePacket],
                  n_frames: int, layout: Layout, K_max: int = 24, send: np.ndarray | None = None,
                  cutoff: np.ndarray | None = None) -> Received:
    """Recover tokens from the packets that arrived (None = lost), following Phi.

    ``plan`` is the sender's packet list as the receiver knows it from the
    stream's structure (block, column, groups of each sequence number); only
    ``packets[i].payload`` of the arrived ones is read.

    With ``send`` (each packet's send frame) and ``cutoff`` (each block's decision time, from
    :func:`stream_schedule`), a block uses only what was sent by its cutoff: a coarse token whose only copy
    (an FEC copy) comes later is lost for its block, and a window frame's coarse token counts as a condition
    of a block's fine tokens only if it arrived by that block's cutoff.
    """
    sl = layout.slicing
    nc = sl.n_coarse
    N = n_frames
    blocks = layout.blocks(N)
    if send is None or cutoff is None:
        send = np.zeros(len(plan))
        cutoff = np.full(len(blocks), np.inf)
    send = np.asarray(send, dtype=np.float64)
    cutoff = np.asarray(cutoff, dtype=np.float64)
    toks, state, Ks, fec_rec, coarse_time = empty_reception(N, K_max, len(blocks))
    free = isinstance(model, TokenFrequencies)
    corrupt = 0
    parsed: dict[int, tuple] = {}
    by_block: dict[int, list[int]] = {}
    for i, pk in enumerate(plan):
        by_block.setdefault(pk.block, []).append(i)
    # pass 1: parse every arrived packet; coarse tokens and FEC copies
    for i, pk in enumerate(plan):
        got = packets[i]
        if got is None:
            continue
        b0, T = blocks[pk.block]
        tg = _fec_target(layout, blocks, pk.block, pk.column)
        fec_frames = None if tg is None else sl.frames_of(tg[1], blocks[tg[0]][1]).size
        try:
            K, coarse, fec, rest, escaped = _parse(got.payload, layout, K_max, pk.groups,
                                                   sl.frames_of(pk.column, T).size, fec_frames)
        except (PayloadError, ValueError):
            corrupt += 1
            continue
        if Ks[pk.block] and Ks[pk.block] != K:
            corrupt += 1
            continue
        Ks[pk.block] = K
        parsed[i] = (K, rest, escaped)
        if coarse is not None:
            f = b0 + sl.frames_of(pk.column, T)
            toks[np.ix_(f, np.arange(nc))] = coarse
            state[np.ix_(f, np.arange(nc))] = "R"
            coarse_time[f] = np.minimum(coarse_time[f], send[i])
        if fec is not None and tg is not None:
            tb0, tT = blocks[tg[0]]
            ff = tb0 + sl.frames_of(tg[1], tT)
            miss = (state[ff, 0] != "R") & (send[i] < coarse_time[ff])
            if miss.any():
                toks[np.ix_(ff[miss], np.arange(nc))] = fec[miss]
                state[np.ix_(ff[miss], np.arange(nc))] = "R"
                fec_rec[ff[miss]] = True
                coarse_time[ff[miss]] = send[i]
    # a coarse token that came after its block's decision time is lost for that block (kept in ``tokens``
    # for the later blocks whose windows hold it)
    late = coarse_time > cutoff[layout.frame_blocks(N)]
    late_r = late & (state[:, 0] == "R")
    state[late_r, :nc] = "L"
    fec_rec &= ~late
    # layers above a block's K are not sent
    for b, (b0, T) in enumerate(blocks):
        if Ks[b]:
            state[b0 : b0 + T, Ks[b] :] = "-"
    def raw_slices(i: int, col_frames: int, K: int) -> dict[int, np.ndarray]:
        """The fine slices of escaped packet ``i``, per group: (frames x layers) tokens, no model needed."""
        groups = [j for j in plan[i].groups if j > 0]
        sizes = [col_frames * sl.layers_of(j, K).size for j in groups]
        flat = unpack_indices(parsed[i][1], sum(sizes))
        return dict(zip(groups, np.split(flat, np.cumsum(sizes)[:-1])))

    def take_raw(b: int, b0: int, T: int, K: int) -> None:
        """Every escaped packet of block ``b``: its fine tokens, whatever else was lost."""
        for i in by_block[b]:
            if i in parsed and parsed[i][2]:
                f = b0 + sl.frames_of(plan[i].column, T)
                for j, v in raw_slices(i, f.size, K).items():
                    lay = sl.layers_of(j, K)
                    toks[np.ix_(f, lay)] = v.reshape(f.size, lay.size)
                    state[np.ix_(f, lay)] = "R"

    # pass 2: fine slices, block by block, when their condition tokens arrived (escaped ones need none)
    for b, (b0, T) in enumerate(blocks):
        K = Ks[b]
        fine = sl.groups(K)[1:] if K else []
        if not fine:
            continue
        w0, w1 = layout.window(b0, T, N)
        # a condition (coarse) token is missing: Phi cannot be followed (context-free PMFs need none)
        if not free and not (np.isfinite(coarse_time[w0:w1]) & (coarse_time[w0:w1] <= cutoff[b])).all():
            state[b0 : b0 + T, nc:K][state[b0 : b0 + T, nc:K] == "L"] = "I"
            take_raw(b, b0, T, K)
            continue
        bm = _BlockModel(model, layout, toks[w0:w1, :nc], b0 - w0, T, K)
        streams: dict[int, CategoricalStream] = {}
        key_ok: dict[int, bool] = {}
        got_groups: dict[tuple[int, int], np.ndarray] = {}

        def read(col: int, j: int, b: int = b, T: int = T, K: int = K, streams: dict[int, CategoricalStream] = streams,
                 key_ok: dict[int, bool] = key_ok, got_groups: dict[tuple[int, int], np.ndarray] = got_groups,
                 fine: list[int] = fine, bm: _BlockModel = bm) -> np.ndarray | None:
            """Decode slice (l, j) from its packet, in the packet's group order (this block's state bound as
            defaults: the function is made anew for each block)."""
            for i in by_block[b]:
                pk = plan[i]
                if pk.column == col and j in pk.groups:
                    break
            else:
                return None
            if i not in parsed:
                return None
            if parsed[i][2]:  # escaped: the raw tokens, no PMF
                if (col, j) not in got_groups:
                    got_groups.update({(col, jj): v for jj, v in raw_slices(i, sl.frames_of(col, T).size, K).items()})
                return got_groups.get((col, j))
            if i not in streams:
                try:
                    streams[i] = CategoricalStream(parsed[i][1])
                except PayloadError:
                    return None
            # a packet's runs are coded in group order: decode earlier ones first
            for jj in pk.groups:
                if jj == 0 or (col, jj) in got_groups:
                    continue
                if col != sl.key and not free and not all(key_ok.get(g, False) for g in fine if g <= jj):
                    return None
                got_groups[(col, jj)] = streams[i].decode(bm.probs(col, jj))
                if jj == j:
                    break
            return got_groups.get((col, j))

        def escaped_at(b: int, col: int, j: int) -> bool:
            """Whether the packet holding slice (col, j) of block ``b`` arrived escaped."""
            return any(plan[i].column == col and j in plan[i].groups and i in parsed and parsed[i][2]
                       for i in by_block[b])

        key_f = b0 + sl.frames_of(sl.key, T)
        for j in fine:
            lay = sl.layers_of(j, K)
            if not key_f.size:  # a short last block without the key column: nothing to wait for
                key_ok[j] = True
                continue
            v = read(sl.key, j)
            key_ok[j] = v is not None
            if v is not None:
                v = v.reshape(key_f.size, lay.size)
                toks[np.ix_(key_f, lay)] = v
                state[np.ix_(key_f, lay)] = "R"
                bm.set_key(j, v)
        for j in fine:
            lay = sl.layers_of(j, K)
            for col in sl.columns(T):
                if col == sl.key:
                    continue
                f = b0 + sl.frames_of(col, T)
                if not free and not all(key_ok[g] for g in fine if g <= j) and not escaped_at(b, col, j):
                    state[np.ix_(f, lay)] = "I"  # Case 4: a key slice it is conditioned on is missing
                    continue
                v = read(col, j)
                if v is not None:
                    toks[np.ix_(f, lay)] = v.reshape(f.size, lay.size)
                    state[np.ix_(f, lay)] = "R"
    rvq_causal(state)
    return Received(toks, state, Ks, fec_rec, corrupt, coarse_time, cutoff)


def rvq_causal(state: np.ndarray) -> None:
    """RVQ causality, in place: a received layer above a missing one in the same frame becomes invalid ('I')."""
    ok = state == "R"
    first_bad = np.where(ok.all(1), state.shape[1], np.argmin(ok, 1))
    above = np.arange(state.shape[1])[None, :] > first_bad[:, None]
    state[above & ok] = "I"


def fine_bits(model: CoderModel, tokens: np.ndarray, K: int, layout: Layout) -> np.ndarray:
    """Ideal code length (bits) per fine token under Phi, per layer: float (K - N_C,) means."""
    sl = layout.slicing
    N = tokens.shape[0]
    nc = sl.n_coarse
    tot = np.zeros(K - nc)
    cnt = 0
    for b0, T in layout.blocks(N):
        w0, w1 = layout.window(b0, T, N)
        bm = _BlockModel(model, layout, tokens[w0:w1, :nc], b0 - w0, T, K)
        fine = sl.groups(K)[1:]
        for j in fine:
            bm.set_key(j, tokens[np.ix_(b0 + sl.frames_of(sl.key, T), sl.layers_of(j, K))])
        for j in fine:
            lay = sl.layers_of(j, K)
            for col in sl.columns(T):
                f = b0 + sl.frames_of(col, T)
                p = bm.probs(col, j).reshape(f.size, lay.size, -1)
                t = tokens[np.ix_(f, lay)]
                tot[lay - nc] += -np.log2(np.take_along_axis(p, t[..., None], -1)[..., 0]).sum(0)
        cnt += T
    return tot / max(cnt, 1)
