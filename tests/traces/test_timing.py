"""Traces with timing: the seq,send_s,arrival_s CSV and hand-written pcap captures of RTP, their replay through
a channel, and their statistics (delay percentiles, RFC 3550 jitter)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from lossbench.errors import TraceFormatError
from lossbench.netsim import Channel, Link
from lossbench.traces.formats import detect_format, read_trace, write_trace
from lossbench.traces.timing import TimingTrace, parse_timing_csv, read_pcap, timing_stats


# --------------------------------------------------------------------------- a pcap written by hand


def _udp_frame(payload: bytes, sport=5004, dport=5004) -> bytes:
    """Ethernet II + IPv4 + UDP around ``payload`` (checksums 0: a capture does not check them)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2])) + udp
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip


def _rtp(seq: int, ts: int, ssrc: int, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + b"\xd5" * 160


def _pcap(records: list[tuple[float, bytes]]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # microsecond pcap, Ethernet
    for t, frame in records:
        sec = int(t)
        out += struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(frame), len(frame)) + frame
    return out


SSRC, OTHER = 0x1234ABCD, 0x0BADF00D
N = 60
SEQ0 = 65520  # the sequence numbers wrap at packet 16


def _capture(tmp_path):
    """One 60-packet G.711 stream (20 ms, 160 ticks of an 8 kHz clock per packet) from SEQ0, with packet 10
    lost, packet 20 duplicated, packets 30 and 31 swapped in arrival, delays 40 ms + 0..9 ms; a second, shorter
    stream, an RTCP receiver report and a non-RTP UDP packet mixed in."""
    base_t = 1_700_000_000.0
    delays = 0.040 + 0.001 * (np.arange(N) % 10)
    recs = []
    for k in range(N):
        if k == 10:
            continue
        t = base_t + 0.02 * k + delays[k]
        recs.append((t, _udp_frame(_rtp(SEQ0 + k, 1000 + 160 * k, SSRC))))
        if k == 20:
            recs.append((t + 0.0005, _udp_frame(_rtp(SEQ0 + k, 1000 + 160 * k, SSRC))))
    for k in range(10):
        recs.append((base_t + 0.02 * k + 0.03, _udp_frame(_rtp(k, 160 * k, OTHER, pt=8), 6000, 6000)))
    recs.append((base_t + 0.5, _udp_frame(struct.pack("!BBHI", 0x81, 201, 7, SSRC) + b"\x00" * 24, 5005, 5005)))
    recs.append((base_t + 0.6, _udp_frame(b"\x12\x34" + b"\x00" * 30, 53, 53)))  # DNS-like, not RTP
    recs.sort(key=lambda r: r[0])
    # packets 30 and 31 arrive swapped
    i30 = next(i for i, (_, f) in enumerate(recs) if f[42 + 2: 42 + 4] == struct.pack("!H", (SEQ0 + 30) & 0xFFFF)
               and f[42 + 8: 42 + 12] == struct.pack("!I", SSRC))
    (t30, f30), (t31, f31) = recs[i30], recs[i30 + 1]
    recs[i30], recs[i30 + 1] = (t30, f31), (t31, f30)
    p = tmp_path / "call.pcap"
    p.write_bytes(_pcap(recs))
    return p, delays


def test_a_hand_written_pcap_with_one_rtp_stream_replays_with_its_loss_and_delays(tmp_path):
    p, delays = _capture(tmp_path)
    assert detect_format(p.read_bytes()) == "pcap"
    tt = read_pcap(p)
    assert tt.meta["ssrc"] == f"0x{SSRC:08X}" and tt.meta["clock_rate"] == 8000  # the largest stream, clock inferred
    assert len(tt) == N  # the wrap at 65535 does not break the sequence
    assert tt.lost.tolist() == [k == 10 for k in range(N)]
    assert tt.meta["duplicates"] == 1 and tt.meta["reordered"] == 1 and tt.meta["streams"] == 2
    # delays relative to the fastest packet (a capture cannot know the clock offset); the swap moved 30 and 31
    want = delays.copy()
    want[30], want[31] = delays[31] + 0.02, delays[30] - 0.02
    want -= want[np.arange(N) != 10].min()
    got = tt.delay_s
    ok = ~tt.lost
    assert np.allclose(got[ok], want[ok], atol=2e-6)
    # the trace through read_trace: a loss trace carrying its timing
    tr = read_trace(p)
    assert tr.meta["format"] == "pcap" and tr.loss_rate == pytest.approx(1 / N)
    assert tr.slot_s == pytest.approx(0.02)
    # replayed through a channel: packet i gets the capture's loss and delay, on top of the link's 10 ms
    send = np.arange(N) * 0.02
    rec = Channel((Link(None, 0.010, timing=tr.timing),)).transmit_times(send, np.full(N, 200),
                                                                        np.random.default_rng(0))
    assert rec.arrived.tolist() == (~tt.lost).tolist()
    assert np.allclose((rec.arrival_time_s - send)[ok], 0.010 + want[ok], atol=2e-6)
    # the other stream by option
    other = read_pcap(p, ssrc=OTHER)
    assert len(other) == 10 and not other.lost.any()


def test_a_pcapng_capture_reads_as_the_same_pcap(tmp_path):
    from scapy.utils import PcapNgWriter, PcapReader

    p, _ = _capture(tmp_path)
    ng = tmp_path / "call.pcapng"
    with PcapReader(str(p)) as reader:
        w = PcapNgWriter(str(ng))
        for pkt in reader:
            w.write(pkt)
        w.close()
    assert detect_format(ng.read_bytes()) == "pcap"
    a, b = read_pcap(p), read_pcap(ng)
    assert len(a) == len(b) and np.array_equal(a.lost, b.lost) and b.meta["duplicates"] == 1
    assert np.allclose(a.delay_s, b.delay_s, atol=1e-6, equal_nan=True)


def test_pcap_errors_name_what_is_wrong(tmp_path):
    p, _ = _capture(tmp_path)
    with pytest.raises(TraceFormatError, match=r"no RTP packets with SSRC 0x00000001; the capture has 0x1234ABCD \(60"):
        read_pcap(p, ssrc=1)
    none = tmp_path / "none.pcap"
    none.write_bytes(_pcap([(1.0, _udp_frame(b"\x12\x34" + b"\x00" * 30, 53, 53))]))
    with pytest.raises(TraceFormatError, match=r"no RTP packets in the capture \(1 UDP packets"):
        read_pcap(none)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 7)
    with pytest.raises(TraceFormatError, match="bad.pcap"):
        read_trace(bad)


CSV = """seq,send_s,arrival_s
0,0.000,0.050
1,0.020,0.075
2,0.040,
3,0.060,0.090
3,0.060,0.091
5,0.100,0.150
4,0.080,0.160
"""


def test_the_timing_csv_reads_loss_delay_duplicates_and_gaps(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    assert detect_format(p.read_bytes()) == "timing"
    tr = read_trace(p)
    tt = tr.timing
    assert tt.lost.tolist() == [False, False, True, False, False, False]
    assert np.allclose(tt.delay_s[~tt.lost] * 1e3, [50, 55, 30, 80, 50])
    assert tt.meta["duplicates"] == 1 and tt.meta["reordered"] == 1
    # written back and read again: the same trace
    q = write_trace(tr, tmp_path / "u.csv", fmt="timing")
    tt2 = read_trace(q).timing
    assert np.allclose(tt2.send_s, tt.send_s) and np.array_equal(np.isnan(tt2.arrival_s), np.isnan(tt.arrival_s))
    # a gap in the numbers is a lost packet, sent on the line between its neighbours
    g = parse_timing_csv(b"seq,send_s,arrival_s\n0,0.0,0.01\n3,0.06,0.07\n", "g.csv")
    assert g.lost.tolist() == [False, True, True, False] and np.allclose(g.send_s, [0, 0.02, 0.04, 0.06])
    # RTP numbers that wrap
    w = parse_timing_csv(b"seq,send_s,arrival_s\n65534,0.0,0.01\n65535,0.02,0.03\n0,0.04,0.05\n1,0.06,0.07\n", "w")
    assert len(w) == 4 and not w.lost.any()


@pytest.mark.parametrize("body,match", [
    ("seq,send_s,arrival_s\n0,0.0,0.01\n1,0.02,0.01\n", r"line 3: arrival_s 0.01 is before send_s 0.02"),
    ("seq,send_s,arrival_s\n0,0.0,0.01\n1,abc,0.03\n", r"line 3: send_s must be a number, got 'abc'"),
    ("seq,send_s,arrival_s\n0,0.0,soon\n", r"line 2: arrival_s must be a number, got 'soon'"),
    ("seq,send_s,arrival_s\n0.5,0.0,0.1\n", r"line 2: seq must be an integer"),
    ("seq,send_s,arrival_s\n", r"header but no rows"),
    ("seq,send_s,arrival_s\n0,0.0\n", r"line 2: expected 3 fields"),
])
def test_bad_timing_csvs_are_errors_naming_the_line(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(TraceFormatError, match=match):
        read_trace(p)


def test_rfc3550_jitter_and_delay_percentiles():
    n = 400
    send = np.arange(n) * 0.02
    flat = TimingTrace(send, send + 0.05)
    st = timing_stats(flat)
    assert st["jitter_rfc3550_ms"] == pytest.approx(0.0, abs=1e-9) and st["delay_p95_ms"] == pytest.approx(50)
    # delays alternating 40 / 50 ms: every |D| is 10 ms, so J -> 10 ms as 1 - (15/16)^k
    alt = TimingTrace(send, send + np.where(np.arange(n) % 2, 0.05, 0.04))
    st = timing_stats(alt)
    assert st["jitter_rfc3550_ms"] == pytest.approx(10 * (1 - (15 / 16) ** (n - 1)), rel=1e-9)
    assert st["delay_p50_ms"] == pytest.approx(45) and st["delay_max_ms"] == pytest.approx(50)


def test_traces_stats_prints_delay_percentiles_and_jitter(tmp_path):
    from lossbench.cli import app

    p, _ = _capture(tmp_path)
    c = tmp_path / "t.csv"
    c.write_text(CSV)
    r = CliRunner().invoke(app, ["traces", "stats", str(p), str(c), "--json"])
    assert r.exit_code == 0, r.output
    import json

    rows = json.loads(r.output)
    assert rows[0]["format"] == "pcap" and rows[0]["ssrc"] == "0x1234ABCD" and rows[0]["duplicates"] == 1
    assert rows[0]["delay_p50_ms"] >= 0 and rows[0]["jitter_rfc3550_ms"] > 0
    assert rows[1]["format"] == "timing" and rows[1]["delay_max_ms"] == pytest.approx(80)
    r = CliRunner().invoke(app, ["traces", "stats", str(p), "--ssrc", "0x0BADF00D", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["ssrc"] == "0x0BADF00D"
    r = CliRunner().invoke(app, ["traces", "stats", str(c)])
    assert r.exit_code == 0 and "loss traces" in r.output
    r = CliRunner().invoke(app, ["traces", "stats", str(p), "--ssrc", "zz"])
    assert r.exit_code != 0 and "--ssrc must be a number" in r.output
