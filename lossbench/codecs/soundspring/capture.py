"""SoundSpring-S's send schedule of the paper's Fig. 9 (``pack=capture``): a packet per 20 ms frame, sent when the
frame is captured, carrying the frame's coarse tokens; a block's fine tokens leave as soon as their coding
context allows, in the packet of the frame that completes the block's look-ahead.

::

    block b = frames b0 .. b0+T-1 (T = T_S); its fine tokens are coded under the MLM given the coarse tokens of
    the window b0-C .. b0+T+F-1 (C = context, F = T_F look-ahead), so they can leave with frame b0+T+F-1's
    packet (the last frame of the stream for the last blocks).

    packet of frame t (sent at the end of frame t):
      byte 0        K of frame t's block; bit 7 (ESCAPE) set when the fine part is raw
      [K_b ...]     one byte per block whose fine tokens the packet carries (usually one, none for most frames)
      coarse        frame t's N_C coarse tokens, 10-bit packed
      [fec]         frame t-1's coarse tokens (fec=next)
      [fine]        the carried blocks' fine tokens, range-coded in block and layer-group order (or raw, ESCAPE)
      CRC-16

With T_S = 3 and T_F = 2 the fine tokens of a block's first frame leave 4 frames after its coarse tokens: a
receiver that waits 80 ms (its playout buffer) plays every frame with its fine tokens; one that waits less plays
the block's first frames from their coarse tokens (and from whatever concealment fills the rest). Every decision is
per frame: frame t uses the fine tokens only if their packet arrived by frame t's playout time, and its coarse
tokens only if theirs did (its own packet, or the next frame's FEC copy).
"""

from __future__ import annotations

import numpy as np

from lossbench.codecs.entropy import CategoricalStream, crc_frame, crc_unframe
from lossbench.codecs.fec import PayloadError
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.codecs.soundspring.coding import (
    ESCAPE,
    CoderModel,
    Layout,
    Received,
    SlicePacket,
    _BlockModel,
    check_layers,
    empty_reception,
    rvq_causal,
)
from lossbench.codecs.soundspring.frequencies import TokenFrequencies


def fine_frames(layout: Layout, n_frames: int) -> list[int]:
    """Per block, the frame whose packet carries its fine tokens."""
    return [min(n_frames - 1, b0 + T + layout.lookahead - 1) for b0, T in layout.blocks(n_frames)]


def capture_plan(layout: Layout, n_frames: int) -> list[SlicePacket]:
    """The packets' structure (no payloads): one per frame, with the blocks whose fine tokens each carries."""
    blocks = layout.blocks(n_frames)
    fb = layout.frame_blocks(n_frames)
    carried: dict[int, list[int]] = {}
    for b, t in enumerate(fine_frames(layout, n_frames)):
        carried.setdefault(t, []).append(b)
    return [SlicePacket(int(fb[t]), t - blocks[fb[t]][0], (0,), b"", range(t, t + 1), t + 1,
                        fine_of=tuple(carried.get(t, ()))) for t in range(n_frames)]


def encode_capture(model: CoderModel, tokens: np.ndarray, Ks: list[int], layout: Layout) -> list[SlicePacket]:
    """The packets of a token stream on the capture schedule (``tokens`` (N, >= max K), one K per block)."""
    sl = layout.slicing
    N = tokens.shape[0]
    blocks = check_layers(tokens, Ks, layout)
    nc = sl.n_coarse
    fb = layout.frame_blocks(N)
    out = []
    for pk in capture_plan(layout, N):
        t = pk.frames[0]
        runs: list[tuple[np.ndarray, np.ndarray]] = []
        for b in pk.fine_of:
            b0, T = blocks[b]
            K = Ks[b]
            w0, w1 = layout.window(b0, T, N)
            bm = _BlockModel(model, layout, tokens[w0:w1, :nc], b0 - w0, T, K)
            f = b0 + sl.frames_of(0, T)
            runs += [(tokens[np.ix_(f, sl.layers_of(j, K))].ravel(), bm.probs(0, j)) for j in sl.groups(K)[1:]]
        head = [Ks[fb[t]]] + [Ks[b] for b in pk.fine_of]
        coarse = pack_indices(tokens[t, :nc])
        fec = pack_indices(tokens[t - 1, :nc]) if layout.fec == "next" and t > 0 else b""
        fine, escaped, raw_n = b"", False, 0
        runs = [r for r in runs if r[0].size]
        if runs:
            fine = CategoricalStream.encode(runs)
            raw = pack_indices(np.concatenate([r[0] for r in runs]))
            raw_n = len(raw)
            if layout.escape and len(raw) <= len(fine):
                fine, escaped = raw, True
        head[0] |= ESCAPE if escaped else 0
        payload = crc_frame(bytes(head) + coarse + fec + fine)
        out.append(SlicePacket(pk.block, pk.column, (0,), payload, pk.frames, pk.send_frame, len(fec), len(fine),
                               escaped, raw_n, pk.fine_of))
    return out


def capture_latency(layout: Layout, n_frames: int, decoder_lookahead: int) -> tuple[int, int]:
    """(frames from a frame's start to its own packet's send plus the decoder's look-ahead: what a receiver clock
    charges; frames to the last packet its full decoding needs, its fine tokens' included, plus the look-ahead)."""
    own = 1 + decoder_lookahead
    blocks = layout.blocks(n_frames)
    fine = fine_frames(layout, n_frames)
    full = max((fine[b] + 1 - b0 for b, (b0, _) in enumerate(blocks)), default=1)
    return own, full + decoder_lookahead


def decode_capture(model: CoderModel, packets: list[SlicePacket | None], plan: list[SlicePacket], n_frames: int,
                   layout: Layout, K_max: int = 24, arrival: np.ndarray | None = None,
                   frame_cutoff: np.ndarray | None = None) -> Received:
    """Recover tokens from the capture-schedule packets that arrived (None = lost).

    ``arrival`` (each packet's arrival, in frames) and ``frame_cutoff`` (each frame's playout time, in frames): a
    frame uses a packet only if it arrived by the frame's playout time, its coarse tokens' and its block's fine
    tokens' alike; the fine tokens' conditions (the window's coarse tokens) must have arrived by then too, unless
    they were sent raw. Without them every arrived packet counts."""
    sl = layout.slicing
    nc = sl.n_coarse
    N = n_frames
    blocks = layout.blocks(N)
    fb = layout.frame_blocks(N)
    arr = np.zeros(len(plan)) if arrival is None else np.asarray(arrival, dtype=np.float64)
    cut = np.full(N, np.inf) if frame_cutoff is None else np.asarray(frame_cutoff, dtype=np.float64)
    toks, state, Ks, fec_rec, coarse_time = empty_reception(N, K_max, len(blocks))
    corrupt = 0
    fine_parts: dict[int, tuple[int, bytes, bool]] = {}  # block -> (packet, fine bytes, escaped)
    cb = -(-nc * 10 // 8)

    def set_K(b: int, K: int) -> bool:
        if not nc <= K <= K_max or (Ks[b] and Ks[b] != K):
            return False
        Ks[b] = K
        return True

    for i, pk in enumerate(plan):
        got = packets[i]
        if got is None:
            continue
        t = pk.frames[0]
        try:
            body = crc_unframe(got.payload)
            n_head = 1 + len(pk.fine_of)
            has_fec = layout.fec == "next" and t > 0
            if len(body) < n_head + cb * (2 if has_fec else 1):
                raise PayloadError("packet too short for its coarse tokens")
            escaped = bool(body[0] & ESCAPE)
            Kt, fine_Ks = body[0] & ~ESCAPE, list(body[1:n_head])
            if not all(nc <= K <= K_max for K in [Kt, *fine_Ks]):
                raise PayloadError("a K outside its range")
            coarse = unpack_indices(body[n_head : n_head + cb], nc)
            fec = unpack_indices(body[n_head + cb : n_head + 2 * cb], nc) if has_fec else None
            fine = body[n_head + cb * (2 if has_fec else 1):]
            if escaped:
                count = sum(blocks[b][1] * (K - nc) for b, K in zip(pk.fine_of, fine_Ks))
                if count == 0 or len(fine) != -(-count * 10 // 8):
                    raise PayloadError(f"escaped packet holds {len(fine)} bytes for {count} raw fine tokens")
        except (PayloadError, ValueError):
            corrupt += 1
            continue
        if not set_K(int(fb[t]), Kt) or not all(set_K(b, K) for b, K in zip(pk.fine_of, fine_Ks)):
            corrupt += 1
            continue
        toks[t, :nc] = coarse
        state[t, :nc] = "R"
        coarse_time[t] = min(coarse_time[t], arr[i])
        if fec is not None and arr[i] < coarse_time[t - 1]:
            if state[t - 1, 0] != "R":
                toks[t - 1, :nc] = fec
                state[t - 1, :nc] = "R"
                fec_rec[t - 1] = True
            coarse_time[t - 1] = arr[i]
        for b in pk.fine_of:
            fine_parts[b] = (i, fine, escaped)
    # a coarse token that came after its frame's playout time is lost for that frame
    late = coarse_time > cut
    state[late & (state[:, 0] == "R"), :nc] = "L"
    fec_rec &= ~late
    for b, (b0, T) in enumerate(blocks):
        if Ks[b]:
            state[b0 : b0 + T, Ks[b] :] = "-"
    # the fine tokens, packet by packet (a packet's blocks in order: a range-coded part decodes block by block)
    by_packet: dict[int, list[int]] = {}
    for b, (i, _, _) in fine_parts.items():
        by_packet.setdefault(i, []).append(b)
    for i, bs in by_packet.items():
        _, data, escaped = fine_parts[bs[0]]
        stream = None if escaped else CategoricalStream(data)
        flat = None
        if escaped:
            flat = unpack_indices(data, sum(blocks[b][1] * (Ks[b] - nc) for b in sorted(bs)))
        pos = 0
        broken = False
        for b in sorted(bs):
            b0, T = blocks[b]
            K = Ks[b]
            frames = np.arange(b0, b0 + T)
            w0, w1 = layout.window(b0, T, N)
            groups = sl.groups(K)[1:]
            got_fine = np.zeros((T, K - nc), dtype=np.int64)
            if escaped:
                assert flat is not None
                for j in groups:
                    lay = sl.layers_of(j, K)
                    got_fine[:, lay - nc] = flat[pos : pos + T * lay.size].reshape(T, lay.size)
                    pos += T * lay.size
                cond_at = np.full(T, -np.inf)
            else:
                free = isinstance(model, TokenFrequencies)  # context-free PMFs: no condition tokens to wait for
                known = free or np.isfinite(coarse_time[w0:w1]).all()
                if broken or not known:  # a condition token never arrived: Phi cannot be followed, nor what follows
                    broken = True
                    state[b0 : b0 + T, nc:K][state[b0 : b0 + T, nc:K] == "L"] = "I"
                    continue
                assert stream is not None
                bm = _BlockModel(model, layout, toks[w0:w1, :nc], b0 - w0, T, K)
                for j in groups:
                    lay = sl.layers_of(j, K)
                    got_fine[:, lay - nc] = stream.decode(bm.probs(0, j)).reshape(T, lay.size)
                cond_at = np.full(T, -np.inf if free else coarse_time[w0:w1].max())
            # per frame: the fine packet, and (range-coded) its conditions, must have come by its playout time
            in_time = (arr[i] <= cut[frames]) & (cond_at <= cut[frames])
            ok = frames[in_time]
            toks[ok, nc:K] = got_fine[in_time]
            state[ok, nc:K] = "R"
            cond_late = frames[(arr[i] <= cut[frames]) & ~(cond_at <= cut[frames])]
            state[cond_late, nc:K] = "I"
    rvq_causal(state)
    block_cut = np.array([cut[b0 : b0 + T].min() for b0, T in blocks], dtype=np.float64)
    return Received(toks, state, Ks, fec_rec, corrupt, coarse_time, block_cut)


__all__ = ["capture_latency", "capture_plan", "decode_capture", "encode_capture", "fine_frames"]
