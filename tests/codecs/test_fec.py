"""Packet-level FEC (RFC 2198 redundancy, XOR parity) with any codec."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs import make_codec
from lossbench.codecs.fec import Packetizer, depacketize
from lossbench.core import PacketKind, Reception
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def clip():
    return default_corpus()[1].load(16000)


def test_red_payload_follows_rfc2198():
    pk = Packetizer(red=1)
    frames = [b"AAAA", b"BBBBBB"]
    packets = pk.packetize(frames, 0.02, 320)
    p1 = packets[1].payload
    (h,) = struct.unpack(">I", p1[:4])
    assert h >> 31 == 1 and (h >> 24) & 0x7F == 96 and (h >> 10) & 0x3FFF == 320 and h & 0x3FF == 4
    assert p1[4] == 96 and p1[5:9] == b"AAAA" and p1[9:] == b"BBBBBB"
    assert packets[0].payload == bytes([96]) + b"AAAA"


def test_red_recovers_isolated_losses_exactly(clip):
    cod = make_codec("opus:bitrate=16000,red=1")
    s = cod.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[5::7] = True  # isolated losses: each next packet carries a copy
    r = cod.decode(s, Reception.from_lost(lost), "opus-plc")
    assert not r.missing.any() and r.recovered.sum() == lost.sum()
    assert np.array_equal(r.audio, cod.decode(s, None, "opus-plc").audio)
    plain = make_codec("opus:bitrate=16000").encode(clip)
    assert s.payload_kbps > 1.8 * plain.payload_kbps


def test_xor_recovers_one_loss_per_group(clip):
    cod = make_codec("amrwb:mode=2,xor=4")
    s = cod.encode(clip)
    kinds = [p.kind for p in s.packets]
    assert kinds[:5] == [PacketKind.PRIMARY] * 4 + [PacketKind.REDUNDANCY]
    lost = np.zeros(s.num_packets, bool)
    lost[[1, 6, 12]] = True  # one primary lost in each of three groups
    r = cod.decode(s, Reception.from_lost(lost), "zeros")
    assert not r.missing.any() and r.recovered.sum() == 3
    lost[[2]] = True  # a second loss in the first group cannot be rebuilt
    r = cod.decode(s, Reception.from_lost(lost), "zeros")
    assert r.missing.sum() == 2
    assert s.payload_bytes_of(PacketKind.REDUNDANCY) > 0


def test_fec_overhead_is_in_the_bitrate(clip):
    base = make_codec("amrwb:mode=2").encode(clip)
    xor = make_codec("amrwb:mode=2,xor=4").encode(clip)
    red = make_codec("amrwb:mode=2,red=2,red_offset=2").encode(clip)
    assert xor.bitrate_kbps > base.bitrate_kbps * 1.2
    assert red.payload_kbps > base.payload_kbps * 2.9


def test_corrupt_red_payload_counts_as_lost(clip):
    from lossbench.core import EncodedStream, Packet

    cod = make_codec("pcm:red=1")
    s = cod.encode(clip)
    pk = list(s.packets)
    pk[3] = Packet(3, pk[3].send_time_s, b"\xff\xff", pk[3].frames)
    bad = EncodedStream(s.codec, s.config, s.sample_rate_hz, s.num_samples, s.frame_duration_s, tuple(pk))
    r = cod.decode(bad, None, "zeros")
    assert r.corrupt_packets == 1 and r.recovered[3] and not r.missing.any()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    lens=st.lists(st.integers(1, 80), min_size=1, max_size=40),
    fpp=st.integers(1, 3), red=st.integers(0, 2), off=st.integers(1, 2), xor=st.sampled_from([0, 2, 3, 5]),
    loss_seed=st.integers(0, 1000), p=st.floats(0, 0.6),
)
def test_depacketize_never_invents_frames(lens, fpp, red, off, xor, loss_seed, p):
    rng = np.random.default_rng(loss_seed)
    frames = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in lens]
    pk = Packetizer(fpp, red, off, xor)
    packets = pk.packetize(frames, 0.02, 320)
    assert [q.seq for q in packets] == list(range(len(packets)))
    full = depacketize(pk, tuple(packets), np.ones(len(packets), bool), len(frames), 320)
    assert full.frames == frames and not full.recovered.any()
    usable = rng.random(len(packets)) >= p
    got = depacketize(pk, tuple(packets), usable, len(frames), 320)
    for i, f in enumerate(got.frames):
        assert f is None or f == frames[i]
