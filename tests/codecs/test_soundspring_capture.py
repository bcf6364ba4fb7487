"""SoundSpring-S on the paper's Fig. 9 schedule (pack=capture): a packet per 20 ms frame sent at capture, a
block's fine tokens in the packet of the frame that completes its look-ahead; bit-exact round trips, per-frame
decisions on the receiver clock, the latency the schedule gives, and damaged packets lost, never crashes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs.soundspring.capture import capture_plan, decode_capture, encode_capture, fine_frames
from lossbench.codecs.soundspring.coding import Layout, SlicePacket, Slicing
from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig
from lossbench.errors import ConfigError

CFG = MLMConfig(num_quantizers=12, vocab=64, n_coarse=3, dim=32, depth=2, heads=2, ff=64, max_frames=64)


@pytest.fixture(scope="module")
def model():
    import torch

    torch.manual_seed(0)
    return MaskedTokenLM(CFG).eval()


def _got(plan, packets, lost=()):
    return [None if i in lost else SlicePacket(p.block, p.column, p.groups, q.payload, p.frames, p.send_frame,
                                                fine_of=p.fine_of) for i, (p, q) in enumerate(zip(plan, packets))]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(N=st.integers(1, 30), B=st.integers(1, 6), ctx=st.integers(0, 4), la=st.integers(0, 3),
       fec=st.sampled_from(["none", "next"]), escape=st.booleans(), seed=st.integers(0, 999))
def test_full_reception_is_bit_exact(model, N, B, ctx, la, fec, escape, seed):
    layout = Layout(Slicing(B, 1, (3, 6, 12)), ctx, la, "capture", fec, escape)
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, CFG.vocab, (N, 12))
    Ks = rng.integers(3, 13, len(layout.blocks(N))).tolist()
    packets = encode_capture(model, toks, Ks, layout)
    plan = capture_plan(layout, N)
    assert len(packets) == N and [p.send_frame for p in packets] == list(range(1, N + 1))  # sent at capture
    assert sorted(b for p in plan for b in p.fine_of) == list(range(len(Ks)))  # every block's fine tokens, once
    rec = decode_capture(model, _got(plan, packets), plan, N, layout, 12)
    assert rec.Ks == Ks and rec.corrupt == 0
    for (b0, T), K in zip(layout.blocks(N), Ks):
        assert np.array_equal(rec.tokens[b0 : b0 + T, :K], toks[b0 : b0 + T, :K])
        assert (rec.state[b0 : b0 + T, :K] == "R").all()


def test_each_frame_decides_at_its_own_playout_time(model):
    """No network delay, a buffer of D frames: frame i of a block (T = 3, look-ahead 2) has its fine tokens iff
    the packet of frame b0 + 4, sent 4 - i frames after its own, arrived by its playout time."""
    N = 15
    layout = Layout(Slicing(3, 1, (3, 6, 12)), 0, 2, "capture", "next", escape=False)
    toks = np.random.default_rng(1).integers(0, CFG.vocab, (N, 12))
    packets = encode_capture(model, toks, [12] * 5, layout)
    plan = capture_plan(layout, N)
    send = np.array([p.send_frame for p in packets], float)
    assert fine_frames(layout, N) == [4, 7, 10, 13, 14]
    for D in range(0, 5):
        rec = decode_capture(model, _got(plan, packets), plan, N, layout, 12, send, send + D)
        for b0 in (0, 3, 6):  # full blocks whose fine packet is 4 frames after the block's first
            for i in range(3):
                want = D >= 4 - i
                assert (rec.state[b0 + i, 3:12] == "R").all() == want, (D, b0, i)
                assert (rec.state[b0 + i, :3] == "R").all()  # coarse tokens always in time: their own packet
    # a lost frame's coarse tokens come from the next packet's FEC copy if that was in time
    rec = decode_capture(model, _got(plan, packets, lost={5}), plan, N, layout, 12, send, send + 1)
    assert rec.fec_recovered[5] and (rec.state[5, :3] == "R").all()
    rec = decode_capture(model, _got(plan, packets, lost={5}), plan, N, layout, 12, send, send + 0)
    assert not rec.fec_recovered[5] and (rec.state[5, :3] == "L").all()


def test_a_lost_condition_token_invalidates_the_range_coded_fine_tokens_but_not_raw_ones(model):
    N = 12
    toks = np.random.default_rng(2).integers(0, CFG.vocab, (N, 12))
    for escape, want in ((False, "I"), (True, "R")):
        layout = Layout(Slicing(3, 1, (3, 6, 12)), 0, 2, "capture", "none", escape)
        packets = encode_capture(model, toks, [12] * 4, layout)
        plan = capture_plan(layout, N)
        assert all(p.escaped for p in packets if p.fine_of) == escape  # an untrained MLM never beats raw
        rec = decode_capture(model, _got(plan, packets, lost={3}), plan, N, layout, 12)  # frame 3: block 0's look-ahead
        assert (rec.state[3, :3] == "L").all() and (rec.state[0:3, 3:12] == want).all()


def test_damaged_packets_are_lost_not_crashes(model):
    from lossbench.codecs.entropy import crc_frame, crc_unframe

    N = 9
    layout = Layout(Slicing(3, 1, (3, 6, 12)), 0, 2, "capture", "next")
    toks = np.random.default_rng(3).integers(0, CFG.vocab, (N, 12))
    packets = encode_capture(model, toks, [12] * 3, layout)
    plan = capture_plan(layout, N)
    i = next(k for k, p in enumerate(plan) if p.fine_of)
    body = crc_unframe(packets[i].payload)
    for bad in (b"", b"\x00" * 3, packets[i].payload[:-1], crc_frame(body[:-1]), crc_frame(bytes([99]) + body[1:])):
        got = _got(plan, packets)
        got[i] = SlicePacket(plan[i].block, plan[i].column, (0,), bad, plan[i].frames, 0, fine_of=plan[i].fine_of)
        rec = decode_capture(model, got, plan, N, layout, 12)
        assert rec.corrupt == 1 and (rec.state[0:3, 3:12] != "R").all()


def test_layout_and_codec_name_what_is_wrong():
    with pytest.raises(ConfigError, match="pack='capture'.*slices=1"):
        Layout(Slicing(3, 3, (3, 6, 12)), pack="capture")
    with pytest.raises(ConfigError, match="fec='same'.*needs pack='slice'"):
        Layout(Slicing(3, 1, (3, 6, 12)), pack="capture", fec="same")
    from lossbench.codecs import make_codec

    with pytest.raises(ConfigError, match="pack=capture is SoundSpring-S's send schedule"):
        make_codec("soundspring:mode=gos,slices=1,pack=capture")


@pytest.mark.slow
def test_the_codec_on_the_capture_schedule():
    """The shipped models: 20 ms packets, 40 ms charged by the clock (the frame and the decoder's look-ahead), the
    fine tokens 80 ms later at most (120 ms in all, the paper's Fig. 9 with T_F = 2), and the receiver clock's rule
    kept (the causality probe)."""
    from lossbench.codecs import make_codec
    from lossbench.codecs.causality import clock_violation
    from lossbench.core import Clip, Reception
    from lossbench.corpus import default_corpus

    cod = make_codec("soundspring:layers=6,slices=1,pack=capture,fec=next")
    clip = default_corpus()[0].load(16000)
    s = cod.encode(clip)
    assert cod.packet_duration_s == pytest.approx(0.02) and s.meta["latency_ms"] == pytest.approx(40.0)
    assert s.meta["own_clock_latency_ms"] == pytest.approx(120.0) and cod.latency_frames == 6
    n = cod.n_frames(clip.num_samples)
    assert s.num_packets == n and s.meta["fine_coded_kbps"] <= s.meta["fine_raw_kbps"]
    send = s.send_times_s()
    full = cod.decode(s, Reception(np.ones(n, bool), send, send + 0.08), "mlm").audio
    assert np.array_equal(full, cod.decode(s, None, "mlm").audio)
    short = cod.decode(s, Reception(np.ones(n, bool), send, send + 0.0), "mlm").audio
    assert not np.array_equal(short, full)  # at 0 ms the fine tokens come too late: coarse tokens only
    for conc in ("mlm", "zero-token"):
        assert clock_violation(cod, conc, Clip("c", clip.samples[: 3 * 16000], 16000)) is None
