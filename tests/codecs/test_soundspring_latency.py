"""SoundSpring-S's latency is what its send schedule says, and the streaming receiver keeps to it.

The causality test: frame t's output samples (from its decision time on) may depend only on packets sent by
t + latency frames. Every packet sent later is replaced by the packet of *another* clip's stream (valid
payloads, CRC included, other tokens) or dropped, and frame t's samples must not change by a single bit.
"""

import dataclasses

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.codecs.soundspring.coding import Layout, Slicing, nominal_plan, stream_schedule
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus

SECONDS = 2.4


@pytest.fixture(scope="module")
def clips():
    c = default_corpus()
    a = c[5].load(16000).samples[: int(SECONDS * 16000)]
    b = c[1].load(16000).samples[: int(SECONDS * 16000)]
    return Clip("a", a, 16000), Clip("b", b, 16000)


def test_latency_counts_the_next_blocks_packets_and_the_decoder_lookahead():
    # stride 3, look-ahead 2, one frame of decoder look-ahead: the block's packets leave at b0 + 5, the
    # coarse tokens of its look-ahead frames at b0 + 8 (in the next block's packets), and the last frame of
    # the block needs the next block's latent, whose window closes at b0 + 11: 11 - 2 = 9 frames
    lay = Layout(Slicing(3, 1, (3, 6, 12, 24)), 0, 2, "frame", "next")
    plan, send = nominal_plan(lay, 6, 60)
    assert stream_schedule(plan, send, lay, 60, 1).latency == 9
    assert stream_schedule(plan, send, lay, 60, 0).latency == 8
    # what a receiver clock charges as algorithmic delay: the block's first frame to its send (5 frames), plus
    # the decoder's look-ahead; the rest (the next block, 3 frames later) is the playout buffer's wait
    assert stream_schedule(plan, send, lay, 60, 1).send_latency == 6
    # without look-ahead a block waits only for itself: 3 frames, plus the decoder's look-ahead frame
    lay0 = Layout(Slicing(3, 1, (3, 6, 12, 24)), 0, 0, "frame", "next")
    plan0, send0 = nominal_plan(lay0, 6, 60)
    assert stream_schedule(plan0, send0, lay0, 60, 1).latency == 4
    # one frame per block, no look-ahead, no decoder look-ahead: the frame itself
    lay1 = Layout(Slicing(1, 1, (3, 6, 12, 24)), 0, 0, "frame", "none")
    plan1, send1 = nominal_plan(lay1, 3, 20)
    assert stream_schedule(plan1, send1, lay1, 20, 0).latency == 1


def test_the_codec_reports_the_schedule_latency(clips):
    cod = make_codec("soundspring:layers=6,slices=1,pack=frame,fec=next")
    assert cod.latency_frames == 9
    s = cod.encode(clips[0])
    assert s.meta["own_clock_latency_ms"] == pytest.approx(180.0)
    assert s.meta["latency_ms"] == pytest.approx(120.0)
    assert cod.packet_duration_s == pytest.approx(0.060)  # one packet per block of 3 frames
    s0 = make_codec("soundspring:layers=6,lookahead=0").encode(clips[0]).meta
    assert s0["latency_ms"] == s0["own_clock_latency_ms"] == pytest.approx(80.0)


def _frame_samples(cod, t: int) -> slice:
    hop = cod.frame_samples
    return slice(t * hop, (t + 1) * hop)


@pytest.mark.parametrize("spec,concealments", [
    ("soundspring:layers=6,slices=1,pack=frame,fec=next", ("mlm", "mlm-all", "zero-token")),
    ("soundspring:layers=12,slices=1,pack=frame,fec=none", ("mlm", "mlm-soft")),
    ("soundspring:layers=12,pack=slice,fec=same", ("mlm-all",)),
])
def test_nothing_sent_after_a_frames_deadline_changes_its_output(clips, spec, concealments):
    cod = make_codec(spec)
    sa, sb = cod.encode(clips[0]), cod.encode(clips[1])
    assert len(sa.packets) == len(sb.packets)
    fd = sa.frame_duration_s
    send = np.rint(np.array([p.send_time_s for p in sa.packets]) / fd).astype(int)
    lat = cod.latency_frames
    rng = np.random.default_rng(7)
    lost = rng.random(len(sa.packets)) < 0.25
    rec = Reception.from_lost(lost)
    base = cod.decode_many(sa, rec, list(concealments))
    nf = cod.n_frames(clips[0].num_samples)
    checked = 0
    for t in (4, 11, 17, 25, 40, 52, 70, 90):
        if t >= nf - 1:
            continue
        late = send > t + lat
        if not late.any():
            continue
        swapped = dataclasses.replace(sa, packets=tuple(
            pb if lt else pa for pa, pb, lt in zip(sa.packets, sb.packets, late)))
        dropped = Reception.from_lost(lost | late)
        for other, r in ((swapped, rec), (sa, dropped)):
            got = cod.decode_many(other, r, list(concealments))
            for name, g, b in zip(concealments, got, base):
                sl = _frame_samples(cod, t)
                assert np.array_equal(g.audio[sl], b.audio[sl]), (
                    f"{spec} / {name}: frame {t}'s output changed when packets sent after frame {t + lat} did")
        checked += 1
    assert checked >= 4
    # and the test can fail: within the latency a change does show (the block's own packets)
    t = 25
    own = (send > t) & (send <= t + lat) & ~lost
    swapped = dataclasses.replace(sa, packets=tuple(
        pb if o else pa for pa, pb, o in zip(sa.packets, sb.packets, own)))
    g = cod.decode(swapped, rec, concealments[0])
    assert not np.array_equal(g.audio[_frame_samples(cod, t)], base[0].audio[_frame_samples(cod, t)])
