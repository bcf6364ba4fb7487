"""The live relay alone, on loopback: seeded fates that repeat whatever the SSRC or first sequence number, loss and
delay statistics that are the channel's, reordering only where the channel reorders, RTCP/STUN/DTLS unimpaired in
both directions, timing.csv and pcapng that lossbench's own trace readers read back, and clear errors."""

from __future__ import annotations

import math
import socket
import time

import numpy as np
import pytest

from lossbench.errors import ConfigError
from lossbench.live import LiveChannel, LiveError, Relay
from lossbench.live.rtp import DTLS, RTCP, RTP, STUN, SeqUnwrapper, classify, parse_rtp


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"x" * 60) -> bytes:
    return bytes([0x80, 96]) + (seq & 0xFFFF).to_bytes(2, "big") + (ts & 0xFFFFFFFF).to_bytes(4, "big") + \
        ssrc.to_bytes(4, "big") + payload


def run_stream(channel: LiveChannel, n: int, interval_s: float, first_seq: int = 1000, ssrc: int = 0x1234,
               extra: list[bytes] | None = None, drain_s: float = 0.4):
    """Send n RTP packets through a relay every interval_s; return the relay and what arrived (seq, time)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got: list[tuple[bytes, float]] = []

    def drain() -> None:
        while True:
            try:
                got.append((rx.recv(4096), time.monotonic()))
            except BlockingIOError:
                return

    relay = Relay(channel, rx.getsockname()).start()
    try:
        t0 = time.monotonic()
        for k in range(n):
            while time.monotonic() < t0 + k * interval_s:
                drain()
                time.sleep(0.0005)
            tx.sendto(rtp(first_seq + k, round(k * interval_s * 48000), ssrc), relay.listen_addr)
        for pkt in extra or []:
            tx.sendto(pkt, relay.listen_addr)
        end = time.monotonic() + drain_s
        while time.monotonic() < end:
            drain()
            time.sleep(0.002)
    finally:
        relay.stop()
        rx.close()
        tx.close()
    return relay, got


def test_rfc7983_classes_and_rtp_header():
    assert classify(b"\x00\x01" + b"\0" * 18) == STUN
    assert classify(b"\x16\xfe\xfd" + b"\0" * 10) == DTLS
    assert classify(bytes([0x80, 200]) + b"\0" * 26) == RTCP  # sender report
    assert classify(rtp(5, 0, 1)) == RTP
    h = parse_rtp(rtp(65535, 1234, 0xDEADBEEF))
    assert h is not None and (h.seq, h.timestamp, h.ssrc, h.payload_type) == (65535, 1234, 0xDEADBEEF, 96)
    u = SeqUnwrapper()
    assert [u.index(s) for s in (65534, 65535, 0, 1, 65535, 3)] == [0, 1, 2, 3, 1, 5]


def test_fates_are_keyed_by_packet_and_repeat_for_a_seed():
    ch = LiveChannel("gilbert:loss_rate=0.2,mean_burst=3", seed=7, packet_ms=5)
    r1, _ = run_stream(ch, 200, 0.005, first_seq=100, ssrc=1)
    # another run: another SSRC, a first sequence number that wraps, the same channel and seed
    r2, _ = run_stream(LiveChannel("gilbert:loss_rate=0.2,mean_burst=3", seed=7, packet_ms=5), 200, 0.005,
                       first_seq=65500, ssrc=99)
    d1, d2 = r1.summary()["live_dropped_index"], r2.summary()["live_dropped_index"]
    assert d1 == d2 and 15 < len(d1) < 70
    # exactly the simulated channel's losses for packets 0..199
    assert d1 == np.flatnonzero(ch.fates(0).lost[:200]).tolist()
    r3, _ = run_stream(LiveChannel("gilbert:loss_rate=0.2,mean_burst=3", seed=8, packet_ms=5), 200, 0.005)
    assert r3.summary()["live_dropped_index"] != d1


def test_loss_and_delay_statistics_are_the_channels():
    ch = LiveChannel("bernoulli:loss_rate=0.1", delay="40ms", jitter="uniform:20ms", seed=3, packet_ms=5)
    n = 600
    relay, got = run_stream(ch, n, 0.005)
    f = ch.fates(0)
    s = relay.summary()
    assert s["live_packets"] == n and s["live_dropped"] == int(f.lost[:n].sum())
    assert len([p for p, _ in got if classify(p) == RTP]) == n - s["live_dropped"]
    media = relay.media(0)
    measured = np.array([r.released_s - r.recv_s for r in media if not math.isnan(r.released_s)])
    wanted = np.array([f.delay_s[r.index] for r in media if not math.isnan(r.released_s)])
    # each packet's delay is the channel's (release lateness aside: a few ms at most on a loaded machine)
    err = (measured - wanted) * 1e3
    assert np.median(err) < 1.5 and np.percentile(err, 90) < 5.0 and err.min() > -0.5
    # so the delay statistics are the channel's: mean 50 ms, uniform spread 20 ms
    assert abs(measured.mean() - wanted.mean()) < 0.003
    assert abs(measured.std() - wanted.std()) < 0.003 and 0.004 < measured.std() < 0.008
    tt = relay.timing_trace()
    assert len(tt) == n and int(tt.lost.sum()) == s["live_dropped"]


def test_reordering_only_where_the_channel_reorders():
    # no jitter: nothing may overtake, however the relay's loop is scheduled
    relay, got = run_stream(LiveChannel("bernoulli:loss_rate=0.05", delay="10ms", seed=1, packet_ms=5), 300, 0.005)
    seqs = [parse_rtp(p).seq for p, _ in got if classify(p) == RTP]
    assert seqs == sorted(seqs) and len(seqs) > 250
    # a jitter wider than the spacing reorders; every pair the relay swapped, the channel swapped too
    ch = LiveChannel("none", delay="30ms", jitter="normal:10ms", seed=2, packet_ms=5)
    relay, got = run_stream(ch, 300, 0.005)
    f = ch.fates(0)
    idx = [parse_rtp(p).seq - 1000 for p, _ in got if classify(p) == RTP]
    assert f.reorders and len(idx) == 300
    swapped = [(a, b) for i, a in enumerate(idx) for b in idx[i + 1:] if b < a]
    assert swapped, "the channel reorders, the relay should too"
    assert all(f.arrival_s[a] < f.arrival_s[b] for a, b in swapped)  # a, sent later, arrived first there too


def test_rtcp_stun_and_dtls_pass_unimpaired_both_ways():
    ch = LiveChannel("bernoulli:loss_rate=0.9", delay="200ms", seed=0, packet_ms=5)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(1.0)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.settimeout(1.0)
    relay = Relay(ch, rx.getsockname()).start()
    try:
        stun = b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"\0" * 12
        dtls = b"\x16\xfe\xfd" + b"\0" * 20
        sr = bytes([0x80, 200, 0, 6]) + b"\0" * 24
        for p in (stun, dtls, sr):
            t = time.monotonic()
            tx.sendto(p, relay.listen_addr)
            data, src = rx.recvfrom(4096)
            assert data == p and time.monotonic() - t < 0.05 and src == relay.out_addr
        # the receiver's RTCP goes back to the sender, from the listen port
        rr = bytes([0x81, 201, 0, 7]) + b"\0" * 28
        rx.sendto(rr, relay.out_addr)
        data, src = tx.recvfrom(4096)
        assert data == rr and src == relay.listen_addr
    finally:
        relay.stop()
        rx.close()
        tx.close()
    kinds = relay.summary()["live_kinds"]
    assert "stun=1" in kinds and "dtls=1" in kinds and "rtcp=2" in kinds


def test_timing_csv_and_pcapng_read_back(tmp_path):
    ch = LiveChannel("gilbert:loss_rate=0.15,mean_burst=2", delay="20ms", seed=5, packet_ms=5)
    relay, _ = run_stream(ch, 200, 0.005)
    from lossbench.traces.formats import read_trace

    relay.write_timing(tmp_path / "timing.csv")
    tt = read_trace(tmp_path / "timing.csv").timing
    assert tt is not None and len(tt) == 200
    assert np.flatnonzero(tt.lost).tolist() == relay.summary()["live_dropped_index"]
    assert np.nanmedian(tt.delay_s) == pytest.approx(0.020, abs=0.003)
    pytest.importorskip("scapy")
    from lossbench.traces.timing import read_pcap

    relay.write_pcapng(tmp_path / "capture.pcapng")
    cap = read_pcap(tmp_path / "capture.pcapng")
    assert cap.meta["ssrc"] == "0x00001234" and cap.meta["clock_rate"] == 48000
    assert np.array_equal(cap.lost, tt.lost)
    # the capture holds the release times: its arrivals are timing.csv's, up to the capture's clock offset; both keep
    # microseconds (each time rounded by up to 0.5 us), so a difference of two may move by up to 2 us, and floating
    # point adds a little on top
    a, b = cap.arrival_s[~cap.lost], tt.arrival_s[~tt.lost]
    assert np.allclose(np.diff(a), np.diff(b), rtol=0, atol=2.5e-6)


def test_bad_input_is_a_one_line_error():
    with pytest.raises(LiveError, match="cannot run live"):
        LiveChannel("tsm")
    with pytest.raises(ConfigError, match="nosuch"):
        LiveChannel("nosuch:loss_rate=0.1")
    with pytest.raises(ConfigError, match="packet_ms"):
        LiveChannel("none", packet_ms=0)
    with pytest.raises(ConfigError, match="loopback"):
        Relay(LiveChannel("none"), ("127.0.0.1", 9), host="0.0.0.0")
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(LiveError, match=rf"listen port 127.0.0.1:{busy.getsockname()[1]}: in use"):
            Relay(LiveChannel("none"), ("127.0.0.1", 9), listen_port=busy.getsockname()[1])
    finally:
        busy.close()


def test_a_flagged_run_says_why():
    relay, _ = run_stream(LiveChannel("none", seed=0, packet_ms=5, max_seconds=0.2), 60, 0.005)
    s = relay.summary()
    assert s["live_beyond_plan"] == 20 and s["live_flagged"] and "past the channel's 0.2 s draw" in s["live_flag"]


def test_runtime_is_bounded_whatever_the_channel_holds():
    """stop() returns within its drain time plus the loop's wake-up, even with packets held for 30 s, and the thread
    and sockets are gone; a relay that saw nothing stops at once; packets still held are logged as not released."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        idle = Relay(LiveChannel("none", seed=0), rx.getsockname()).start()
        t = time.monotonic()
        idle.stop()
        assert time.monotonic() - t < 0.5
        relay = Relay(LiveChannel("none", delay="30s", seed=0), rx.getsockname()).start()
        for k in range(20):
            tx.sendto(rtp(k, k * 960, 0x99), relay.listen_addr)
        time.sleep(0.1)
        t = time.monotonic()
        relay.stop(drain_s=0.3)
        took = time.monotonic() - t
        assert 0.3 <= took < 1.0, took
        assert relay._thread is not None and not relay._thread.is_alive()
        assert relay._in.fileno() == -1 and relay._out.fileno() == -1
        media = relay.media(0)
        assert len(media) == 20 and all(np.isfinite(r.intended_s) and np.isnan(r.released_s) for r in media)
    finally:
        rx.close()
        tx.close()
