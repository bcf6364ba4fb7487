"""The receiver clock (#34, begun): redundancy in a later packet repairs an earlier frame only if that packet
arrived by the frame's playout deadline. Done so far for RED and XOR (any codec) and Opus LBRR and DRED."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.core import Reception
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def clip():
    return default_corpus()[0].load(16000)


def _reception(stream, lost: np.ndarray, buffer_s: float) -> Reception:
    """No network delay: a packet arrives when sent; a fixed buffer of ``buffer_s`` sets every deadline."""
    send = stream.send_times_s()
    return Reception(~lost, np.where(lost, np.nan, send), send + buffer_s)


def _lost(n: int) -> np.ndarray:
    lost = np.zeros(n, bool)
    lost[10:200:7] = True  # single losses: the next packet always arrives
    return lost


@pytest.mark.parametrize("spec, fec, plain", [
    ("opus:bitrate=24000,fec=1,loss_perc=20", "opus-fec", "opus-plc"),
    ("opus:bitrate=24000,dred_ms=200,loss_perc=20", "opus-dred", "opus-deep-plc"),  # the same decoder, less DRED
    ("pcm:red=1", "zeros", None),
])
def test_a_zero_buffer_leaves_no_time_for_a_later_packet(clip, spec, fec, plain):
    """With no network delay and a 0 ms buffer, a frame plays when its own packet arrives: LBRR, DRED or a RED
    copy in the next packet comes too late, so the decode is the plain one; with 40 ms, the repair pays."""
    codec = make_codec(spec)
    s = codec.encode(clip)
    lost = _lost(s.num_packets)
    at0 = codec.decode(s, _reception(s, lost, 0.0), fec)
    at40 = codec.decode(s, _reception(s, lost, 0.040), fec)
    if plain is not None:
        ref = codec.decode(s, _reception(s, lost, 0.0), plain)
    else:  # pcm:red=1 without its copies is pcm
        bare = make_codec("pcm")
        ref = bare.decode(bare.encode(clip), _reception(bare.encode(clip), lost, 0.0), fec)
    assert np.array_equal(at0.audio, ref.audio)
    assert not at0.recovered.any()
    assert not np.array_equal(at40.audio, at0.audio)  # with time to wait, the repair is heard
    repaired = at40.recovered.sum() + at40.info.get("lbrr_recovered_frames", 0) + at40.info.get("dred_recovered_frames", 0)
    assert repaired > 0


def test_xor_parity_waits_for_its_whole_group(clip):
    """XOR over 4 packets rebuilds a lost packet only if the parity packet (sent after the group) and the rest of
    the group arrived by the lost packet's deadline."""
    codec = make_codec("pcm:xor=4")
    s = codec.encode(clip)
    n_primary = sum(p.kind.value == "primary" for p in s.packets)
    lost = np.zeros(s.num_packets, bool)
    primaries = [p.seq for p in s.packets if p.kind.value == "primary"]
    for k in range(0, n_primary - 8, 12):
        lost[primaries[k]] = True  # the first packet of a group: its parity comes 4 packets later
    short, long = (codec.decode(s, _reception(s, lost, b), "zeros") for b in (0.020, 0.100))
    assert short.recovered.sum() == 0 and long.recovered.sum() > 0


def test_without_a_buffer_every_arrived_packet_is_in_time(clip):
    codec = make_codec("opus:bitrate=24000,fec=1,loss_perc=20")
    s = codec.encode(clip)
    lost = _lost(s.num_packets)
    a = codec.decode(s, Reception.from_lost(lost), "opus-fec")
    assert a.info["lbrr_recovered_frames"] > 0


def test_glaris_copies_help_the_next_frame_but_never_the_lost_one(clip):
    """With a 0 ms buffer, the copy of z_u in packet u+1 comes too late for frame u's own concealment (z_u counts
    as missing there) but in time to decode y_{u+1}; without a buffer it also serves frame u."""
    codec = make_codec("glaris:q=32,side=2,offsets=1")
    s = codec.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[[40, 90, 140]] = True  # single losses
    timed = codec.decode(s, _reception(s, lost, 0.0), "side-info-plc")
    free = codec.decode(s, Reception.from_lost(lost), "side-info-plc")
    assert timed.info["y_lost_frames"] == free.info["y_lost_frames"] == 3  # y_{u+1} decodes in both
    assert free.info["z_missing_frames"] == 0 and timed.info["z_missing_frames"] == 3
    assert not np.array_equal(timed.audio, free.audio)
    at40 = codec.decode(s, _reception(s, lost, 0.040), "side-info-plc")
    assert np.array_equal(at40.audio, free.audio)  # with time to wait, the copy serves the lost frame too


def test_soundspring_keeps_to_the_harness_clock_when_a_buffer_is_set(clip):
    """With a playout buffer, SoundSpring-S's coarse FEC (carried by the next block's packet) repairs a block only
    if that packet arrived by the block's playout time: never with 0 ms, and with a buffer longer than a block.
    Without a buffer its own send schedule decides, as before."""
    codec = make_codec("soundspring:layers=6,slices=1,pack=frame,fec=next")
    s = codec.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[[10, 30, 50]] = True
    at0 = codec.decode(s, _reception(s, lost, 0.0), "mlm")
    at200 = codec.decode(s, _reception(s, lost, 0.200), "mlm")
    free = codec.decode(s, Reception.from_lost(lost), "mlm")
    assert at0.info["coarse_fec_frames"] == 0
    assert at200.info["coarse_fec_frames"] > 0 and free.info["coarse_fec_frames"] > 0
    assert not np.array_equal(at0.audio, at200.audio)
