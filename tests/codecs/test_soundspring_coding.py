"""SoundSpring's slice coding: bit-exact round trips over random configurations, R/L/I labels, FEC, garbage."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs.soundspring.coding import (Layout, SlicePacket, Slicing, decode_tokens, encode_tokens,
                                                stream_schedule)
from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig
from lossbench.errors import ConfigError

CFG = MLMConfig(num_quantizers=12, vocab=64, n_coarse=3, dim=32, depth=2, heads=2, ff=64, max_frames=64)


@pytest.fixture(scope="module", params=["eager", "frozen"])
def model(request):
    """Both inference paths: eager, and the frozen graph the codec loads (``MaskedTokenLM.freeze``)."""
    import torch

    torch.manual_seed(0)
    m = MaskedTokenLM(CFG).eval()
    return m.freeze() if request.param == "frozen" else m


def _decode(model, plan, N, layout, lost=(), replace=None):
    got = [None if i in lost else (SlicePacket(p.block, p.column, p.groups, (replace or {}).get(i, p.payload),
                                               p.frames, p.send_frame)) for i, p in enumerate(plan)]
    return decode_tokens(model, got, plan, N, layout, K_max=12)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(N=st.integers(1, 40), B=st.integers(1, 12), S=st.integers(1, 6), key=st.integers(0, 5),
       ctx=st.integers(0, 6), la=st.integers(0, 3), pack=st.sampled_from(["slice", "frame"]),
       fec=st.sampled_from(["none", "next", "same"]), bounds=st.sampled_from([(3, 6, 12), (3, 12), (3, 4, 8, 12)]),
       seed=st.integers(0, 999), escape=st.booleans())
def test_full_reception_is_bit_exact(model, N, B, S, key, ctx, la, pack, fec, bounds, seed, escape):
    S = min(S, B)
    if fec == "same":
        pack = "slice"
    layout = Layout(Slicing(B, S, bounds, min(key, S - 1)), ctx, la, pack, fec, escape)
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, CFG.vocab, (N, 12))
    Ks = rng.integers(3, 13, len(layout.blocks(N))).tolist()  # variable K per block, signalled in the packets
    plan = encode_tokens(model, toks, Ks, layout)
    rec = _decode(model, plan, N, layout)
    assert rec.Ks == Ks and rec.corrupt == 0
    for (b0, T), K in zip(layout.blocks(N), Ks):
        assert np.array_equal(rec.tokens[b0 : b0 + T, :K], toks[b0 : b0 + T, :K])
        assert (rec.state[b0 : b0 + T, :K] == "R").all() and (rec.state[b0 : b0 + T, K:] == "-").all()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(N=st.integers(4, 30), B=st.integers(2, 8), S=st.integers(1, 4), ctx=st.integers(0, 5),
       pack=st.sampled_from(["slice", "frame"]), bounds=st.sampled_from([(3, 6, 12), (3, 4, 8, 12)]),
       loss=st.floats(0.05, 0.6), seed=st.integers(0, 999), escape=st.booleans())
def test_every_token_received_under_loss_is_the_senders(model, N, B, S, ctx, pack, bounds, loss, seed, escape):
    """Under any loss pattern the receiver's PMFs equal the sender's for every slice it decodes: the
    non-key passes of a block are batched over the fine groups at both ends, and a group whose key slice
    was lost (its row's input differs from the sender's) must not disturb the other groups' rows."""
    layout = Layout(Slicing(B, min(S, B), bounds), ctx, 1, pack, "next", escape)
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, CFG.vocab, (N, 12))
    plan = encode_tokens(model, toks, [12] * len(layout.blocks(N)), layout)
    lost = set(np.flatnonzero(rng.random(len(plan)) < loss).tolist())
    rec = _decode(model, plan, N, layout, lost=lost)
    ok = rec.state == "R"
    assert np.array_equal(rec.tokens[ok], toks[ok])
    # the streaming receiver (each block decided at its cutoff) receives a subset, still the sender's tokens
    send = np.array([p.send_frame for p in plan])
    sched = stream_schedule(plan, send, layout, N, 1)
    got = [None if i in lost else p for i, p in enumerate(plan)]
    srec = decode_tokens(model, got, plan, N, layout, 12, send, sched.cutoff)
    sok = srec.state == "R"
    assert not (sok & ~ok).any()
    assert np.array_equal(srec.tokens[sok], toks[sok])


def test_losses_are_labelled(model):
    layout = Layout(Slicing(12, 3, (3, 6, 12), key=0), pack="slice", escape=False)  # every packet under Phi
    N = 12
    toks = np.random.default_rng(1).integers(0, CFG.vocab, (N, 12))
    plan = encode_tokens(model, toks, [12], layout)
    idx = {(p.column, p.groups): i for i, p in enumerate(plan)}
    sl = layout.slicing
    # a non-key fine slice lost: its tokens L, the layers above them I, the rest exact
    rec = _decode(model, plan, N, layout, lost={idx[(1, (1,))]})
    f1 = sl.frames_of(1)
    assert (rec.state[np.ix_(f1, [3, 4, 5])] == "L").all() and (rec.state[np.ix_(f1, range(6, 12))] == "I").all()
    ok = rec.state == "R"
    assert np.array_equal(rec.tokens[ok], toks[ok]) and ok.sum() == N * 12 - f1.size * 9
    assert np.array_equal(rec.prefix()[f1], [3] * f1.size)
    # a key slice lost: the non-key slices of that group and above are invalid (Case 4)
    rec = _decode(model, plan, N, layout, lost={idx[(0, (1,))]})
    assert (rec.state[np.ix_(sl.frames_of(2), range(3, 12))] == "I").all()
    # a coarse slice lost: all fine tokens of the block are invalid (Case 2)
    rec = _decode(model, plan, N, layout, lost={idx[(2, (0,))]})
    assert (rec.state[:, 3:] == "I").all() and (rec.state[np.ix_(sl.frames_of(2), range(3))] == "L").all()
    # garbage in a packet is caught (CRC) and counted as lost
    i = idx[(1, (2,))]
    for junk in (b"\x00" * len(plan[i].payload), b"", b"\xff" * 3, plan[i].payload[:-1]):
        rec = _decode(model, plan, N, layout, replace={i: junk})
        assert rec.corrupt == 1 and (rec.state[np.ix_(sl.frames_of(1), range(6, 12))] == "L").all()


def test_coarse_fec_recovers_a_lost_column_and_its_fine_tokens(model):
    layout = Layout(Slicing(3, 3, (3, 6, 12)), context=4, lookahead=1, pack="frame", fec="next", escape=False)
    N = 15
    toks = np.random.default_rng(2).integers(0, CFG.vocab, (N, 12))
    plan = encode_tokens(model, toks, [12] * 5, layout)
    # frame 4 (block 1, non-key column 1) is lost; the packet of frame 5 carries its coarse tokens
    lost = next(i for i, p in enumerate(plan) if p.block == 1 and p.column == 1)
    rec = _decode(model, plan, N, layout, lost={lost})
    assert rec.fec_recovered[4] and rec.fec_recovered.sum() == 1
    assert (rec.state[4, :3] == "R").all() and (rec.state[4, 3:] == "L").all()
    # every other frame, including those whose coding window holds frame 4, decodes fully
    assert (rec.state[np.r_[0:4, 5:N]] == "R").all()
    assert np.array_equal(rec.tokens[rec.state == "R"], toks[rec.state == "R"])
    # without FEC the coarse loss invalidates the fine tokens of every block whose window holds frame 4
    layout0 = Layout(Slicing(3, 3, (3, 6, 12)), context=4, lookahead=1, pack="frame", fec="none", escape=False)
    plan0 = encode_tokens(model, toks, [12] * 5, layout0)
    rec0 = _decode(model, plan0, N, layout0, lost={lost})
    assert (rec0.state[4, :3] == "L").all() and (rec0.state[4, 3:] != "R").all() and not rec0.fec_recovered.any()
    assert (rec0.state[np.r_[3, 5, 6:9], 3:] == "I").all()  # block 1, and block 2 whose context reaches back
    assert (rec0.state[np.r_[0:3, 9:N]] == "R").all()  # block 0 looks only 1 frame ahead; blocks 3-4 too far


def test_the_escape_never_sends_more_than_the_raw_tokens_and_needs_no_conditions(model):
    """An untrained MLM codes random tokens in more bytes than their raw indices: every such packet escapes
    (flag in byte 0, tokens packed at 10 bits), so the fine part is never longer than raw. An escaped packet
    decodes without its condition tokens: the coarse loss that invalidates a block's range-coded fine tokens
    leaves its escaped ones received. A unit cut short counts as lost, never a crash."""
    from lossbench.codecs.entropy import crc_frame, crc_unframe
    from lossbench.codecs.soundspring.coding import ESCAPE

    N = 15
    toks = np.random.default_rng(2).integers(0, CFG.vocab, (N, 12))
    lay = dict(context=4, lookahead=1, pack="frame", fec="none")
    plan = encode_tokens(model, toks, [12] * 5, Layout(Slicing(3, 3, (3, 6, 12)), **lay))
    bare = encode_tokens(model, toks, [12] * 5, Layout(Slicing(3, 3, (3, 6, 12)), escape=False, **lay))
    assert all(p.coded_bytes <= p.raw_bytes for p in plan) and any(p.escaped for p in plan)
    for p, q in zip(plan, bare):
        assert p.escaped == (q.coded_bytes >= q.raw_bytes)  # escaped exactly where the MLM's code was no shorter
        assert bool(crc_unframe(p.payload)[0] & ESCAPE) == p.escaped and not crc_unframe(q.payload)[0] & ESCAPE
    layout = Layout(Slicing(3, 3, (3, 6, 12)), **lay)
    lost = next(i for i, p in enumerate(plan) if p.block == 1 and p.column == 1)
    rec = _decode(model, plan, N, layout, lost={lost})
    assert (rec.state[np.r_[3, 5, 6:9], 3:] == "R").all()  # "I" without the escape (see the FEC test above)
    assert np.array_equal(rec.tokens[rec.state == "R"], toks[rec.state == "R"])
    # an escaped unit cut short (re-framed with a valid CRC) or padded: the packet is lost, nothing crashes
    i = next(k for k, p in enumerate(plan) if p.escaped)
    body = crc_unframe(plan[i].payload)
    for bad in (body[:-1], body + b"\x00"):
        rec = _decode(model, plan, N, layout, replace={i: crc_frame(bad)})
        assert rec.corrupt == 1
        f = plan[i].block * 3 + layout.slicing.frames_of(plan[i].column, 3)
        assert (rec.state[f] != "R").any()


def test_layout_errors_name_the_value():
    with pytest.raises(ConfigError, match="pack"):
        Layout(Slicing(3, 3), pack="bundle")
    with pytest.raises(ConfigError, match="fec='same'"):
        Layout(Slicing(3, 3), pack="frame", fec="same")
    with pytest.raises(ConfigError, match="slices"):
        Slicing(3, 5)
