"""The simpy path: timelines recorded as (event, seq, time) and asserted whole."""

import numpy as np
import pytest

from lossbench.core import EncodedStream, LossTrace, Packet
from lossbench.errors import ConfigError
from lossbench.netsim.spec import parse_jitter
from lossbench.netsim import (
    AdaptivePlayout,
    Bernoulli,
    BottleneckConfig,
    Channel,
    FixedPlayout,
    Jitter,
    Link,
    OnOffTraffic,
    PoissonTraffic,
    Schedule,
    TraceReplay,
)


def rounded(log):
    return [(e, i, round(t, 9)) for e, i, t in log]


def test_plain_delay_timeline(rng):
    ch = Channel((Link(delay_s=0.010),))
    log = []
    rec = ch.transmit_times(np.array([0.0, 0.02, 0.04]), [100, 100, 100], rng, log=log)
    assert rounded(log) == [
        ("send", 0, 0.0), ("arrive", 0, 0.01),
        ("send", 1, 0.02), ("arrive", 1, 0.03),
        ("send", 2, 0.04), ("arrive", 2, 0.05),
    ]
    assert rec.arrived.all() and np.allclose(rec.arrival_time_s, [0.01, 0.03, 0.05])
    assert np.isinf(rec.playout_deadline_s).all()


def test_trace_loss_on_second_link_timeline(rng):
    lossy = TraceReplay(LossTrace([0, 1, 0]))
    ch = Channel((Link(delay_s=0.005), Link(loss=lossy, delay_s=0.010)))
    log = []
    rec = ch.transmit_times(np.array([0.0, 0.02, 0.04]), [100] * 3, rng, log=log)
    # the second link sees the packets 5 ms after sending; slot of packet 1 is lost
    assert rounded(log) == [
        ("send", 0, 0.0), ("arrive", 0, 0.015),
        ("send", 1, 0.02), ("drop-link1", 1, 0.025),
        ("send", 2, 0.04), ("arrive", 2, 0.055),
    ]
    assert rec.arrived.tolist() == [True, False, True]
    assert rec.meta["drop_reason"].tolist() == [0, 1, 0] and rec.meta["drop_link"].tolist() == [-1, 1, -1]


def test_bottleneck_queue_drop_tail_timeline(rng):
    # 8 kbit/s: a 100-byte packet takes 0.1 s; the queue holds 2 packets
    ch = Channel((Link(bottleneck=BottleneckConfig(8000, queue_packets=2)),))
    log = []
    rec = ch.transmit_times(np.array([0.0, 0.0, 0.0, 0.25]), [100] * 4, rng, log=log)
    assert rounded(log) == [
        ("send", 0, 0.0), ("send", 1, 0.0), ("send", 2, 0.0), ("drop-queue0", 2, 0.0),
        ("arrive", 0, 0.1), ("arrive", 1, 0.2), ("send", 3, 0.25), ("arrive", 3, 0.35),
    ]
    assert rec.meta["queue_drops"] == 1
    assert np.allclose(rec.meta["queue_delay_s"], [0.1, 0.2, 0.0, 0.1])


def test_fixed_playout_marks_late_packets(rng):
    # 80 kbit/s: 100 B -> 10 ms, 1000 B -> 100 ms of serialisation
    ch = Channel((Link(bottleneck=BottleneckConfig(80_000, queue_packets=10)),), playout=FixedPlayout(0.03))
    rec = ch.transmit_times(np.array([0.0, 0.02, 0.04]), [100, 1000, 100], rng)
    assert np.allclose(rec.arrival_time_s, [0.01, 0.12, 0.13])
    assert np.allclose(rec.playout_deadline_s, [0.04, 0.06, 0.08])  # first arrival + 30 ms + send offset
    assert rec.late.tolist() == [False, True, True]
    assert rec.arrived.all() and rec.effective_loss_rate == pytest.approx(2 / 3)


def test_jitter_reorders_and_receiver_copes(rng):
    n = 2000
    ch = Channel((Link(delay_s=0.03, jitter=Jitter("uniform", 0.06)),))
    send = np.arange(n) * 0.02
    rec = ch.transmit_times(send, np.full(n, 100), rng)
    assert rec.arrived.all()
    d = rec.arrival_time_s - send
    assert d.min() >= 0.03 - 1e-12 and d.max() <= 0.09 + 1e-12
    order = np.argsort(rec.arrival_time_s, kind="stable")
    assert (np.diff(order) < 0).sum() > 100  # packets do overtake each other


def test_normal_jitter_never_gives_negative_delay(rng):
    ch = Channel((Link(delay_s=0.0, jitter=Jitter("normal", 0.01)),))
    send = np.arange(500) * 0.02
    rec = ch.transmit_times(send, np.full(500, 100), rng)
    assert (rec.arrival_time_s - send >= 0).all()


def test_adaptive_playout_converges_without_jitter(rng):
    n = 500
    ch = Channel((Link(delay_s=0.05),), playout=AdaptivePlayout(adapt_every_s=1.0, initial_delay_s=0.02))
    log = []
    rec = ch.transmit_times(np.arange(n) * 0.02, np.full(n, 100), rng, log=log)
    pd = rec.meta["playout_delay_s"]
    assert pd[0] == pytest.approx(0.07) and np.allclose(pd[1:], 0.05)
    assert not rec.late.any()
    # one playout-delay decision per 1 s window, the first at the first arrival
    decisions = [(i, round(t, 9)) for e, i, t in log if e == "playout-delay"]
    assert decisions[:3] == [(0, 0.05), (1, 1.07), (2, 2.05)]


def test_adaptive_playout_beats_a_short_fixed_buffer_under_jitter():
    n = 3000
    send = np.arange(n) * 0.02
    link = Link(delay_s=0.04, jitter=Jitter("exponential", 0.01))
    fixed = Channel((link,), playout=FixedPlayout(0.005)).transmit_times(send, np.full(n, 100), np.random.default_rng(1))
    adapt = Channel((link,), playout=AdaptivePlayout()).transmit_times(send, np.full(n, 100), np.random.default_rng(1))
    assert adapt.late_rate < fixed.late_rate / 3


def test_cross_traffic_adds_queueing_delay_and_drops():
    n = 1500
    send = np.arange(n) * 0.02
    bn = dict(rate_bps=500_000, queue_packets=20)
    quiet = Channel((Link(bottleneck=BottleneckConfig(**bn)),)).transmit_times(send, np.full(n, 100), np.random.default_rng(2))
    busy_cfg = BottleneckConfig(**bn, cross_traffic=(PoissonTraffic(40, 1200), OnOffTraffic(0.3, 0.3, 60, 1200)))
    busy = Channel((Link(bottleneck=busy_cfg),)).transmit_times(send, np.full(n, 100), np.random.default_rng(2))
    assert quiet.meta["queue_drops"] == 0 and quiet.meta["queue_delay_s"].max() < 0.002
    assert busy.meta["queue_delay_s"].mean() > 5 * quiet.meta["queue_delay_s"].mean()
    assert busy.meta["cross_sent"] > 1000
    assert busy.meta["queue_drops"] + busy.meta["cross_drops"] > 0


def test_time_varying_loss_through_the_channel(rng):
    sch = Schedule((0.0, 2.0, 4.0), (Bernoulli(0.0), Bernoulli(0.5), Bernoulli(0.0)))
    n = 300
    rec = Channel.from_loss(sch, delay_s=0.02).transmit_times(np.arange(n) * 0.02, np.full(n, 100), rng)
    lost = ~rec.arrived
    assert not lost[:100].any() and not lost[200:].any() and 25 < lost[100:200].sum() < 75


def test_transmit_a_stream(rng):
    pk = [Packet(i, 0.02 * i, b"\x00" * 30, range(i, i + 1)) for i in range(100)]
    s = EncodedStream("pcm", {}, 16000, 32000, 0.02, pk)
    rec = Channel.from_loss(Bernoulli(0.2)).transmit(s, rng)
    assert rec.num_packets == 100 and 5 < (~rec.arrived).sum() < 40


def test_same_seed_same_reception():
    ch = Channel((Link(Bernoulli(0.1), 0.02, Jitter("normal", 0.01)),), playout=AdaptivePlayout())
    send = np.arange(500) * 0.02
    a = ch.transmit_times(send, np.full(500, 100), np.random.default_rng(9))
    b = ch.transmit_times(send, np.full(500, 100), np.random.default_rng(9))
    assert np.array_equal(a.arrived, b.arrived) and np.array_equal(a.late, b.late)
    assert np.allclose(a.arrival_time_s, b.arrival_time_s, equal_nan=True)


def test_bad_configs_are_clear():
    with pytest.raises(ConfigError, match="unknown jitter kind 'gauss'"):
        Jitter("gauss", 0.01)
    with pytest.raises(ConfigError, match="bottleneck rate must be > 0"):
        BottleneckConfig(0)
    with pytest.raises(ConfigError, match="link delay"):
        Link(delay_s=-1)
    with pytest.raises(ConfigError, match="non-decreasing"):
        Channel().transmit_times(np.array([0.1, 0.0]), [1, 1], np.random.default_rng(0))
    assert parse_jitter("pareto:8ms:2.2") == Jitter("pareto", 0.008, 2.2)


def test_pareto_jitter_has_the_mean_it_is_given(rng):
    d = Jitter("pareto", 0.008, 2.2).draw(200_000, rng)
    assert d.min() >= 0 and d.mean() == pytest.approx(0.008, rel=0.05)  # was 0.0037 (scale / shape) before


def test_lognormal_jitter_is_heavy_tailed_with_the_median_it_is_given(rng):
    d = parse_jitter("lognormal:10ms:0.8").draw(100_000, rng)
    assert np.median(d) == pytest.approx(0.010, rel=0.03)
    assert np.percentile(d, 99.9) > 10 * np.median(d)  # exp(3.09 * 0.8) = 11.8 x the median
    g = Jitter("normal", float(np.std(d))).draw(100_000, np.random.default_rng(1))
    assert np.percentile(d, 99.9) > 1.5 * np.percentile(g, 99.9)


def test_ar1_jitter_is_correlated_and_reorders_only_where_the_delay_falls_faster_than_the_spacing():
    n = 50_000
    send = np.arange(n) * 0.02
    d = parse_jitter("ar1:10ms:0.9").draw(n, np.random.default_rng(0), send)
    assert np.corrcoef(d[:-1], d[1:])[0, 1] == pytest.approx(0.9, abs=0.01)
    assert np.std(d) == pytest.approx(0.010, rel=0.05)
    for spec, reorders in (("ar1:10ms:0.9", False), ("ar1:40ms:0.3", True)):
        ch = Channel((Link(delay_s=0.1, jitter=parse_jitter(spec)),))
        rec = ch.transmit_times(send[:5000], np.full(5000, 100), np.random.default_rng(2))
        overtaken = (np.diff(rec.arrival_time_s) < 0).mean()
        assert (overtaken > 0.05) if reorders else (overtaken < 0.001), (spec, overtaken)


@pytest.mark.parametrize("spec,rate_hz", [("spikes:300ms:0.2", 0.2), ("periodic:200ms:5s", 0.2)])
def test_delay_spikes_hold_packets_and_release_them_together(spec, rate_hz):
    n = 60_000
    send = np.arange(n) * 0.02
    j = parse_jitter(spec)
    d = j.draw(n, np.random.default_rng(0), send)
    arrive = send + d
    held = d > 0
    assert held.mean() == pytest.approx(rate_hz * j.scale_s, rel=0.15)  # the share of time inside a spike
    assert np.all(np.diff(arrive) >= -1e-12)  # in order, never reordered (overlapping spikes merge)
    # a spike's packets all arrive at its end: runs of held packets share one arrival time
    starts = np.flatnonzero(held & ~np.r_[False, held[:-1]])
    for s0 in starts[:20]:
        e = s0
        while e + 1 < n and held[e + 1]:
            e += 1
        assert np.ptp(arrive[s0 : e + 1]) < 1e-9
    again = j.draw(n, np.random.default_rng(0), send)
    assert np.array_equal(d, again)  # seeded


def test_new_jitter_kinds_parse_and_bad_parameters_name_what_is_allowed():
    assert parse_jitter("ar1:10ms:0.9") == Jitter("ar1", 0.01, 0.9)
    assert parse_jitter("spikes:300ms") == Jitter("spikes", 0.3, 0.2)
    assert parse_jitter("periodic:200ms:5s") == Jitter("periodic", 0.2, 5.0)
    for spec, msg in (("ar1:10ms:1.0", r"lag-one correlation in \[0, 1\)"), ("lognormal:10ms:0", "log-standard"),
                      ("spikes:300ms:-1", "spikes per second > 0"), ("periodic:6s:5s", "would never end"),
                      ("ar1:10ms:0.5:2", "too many ':' fields")):
        with pytest.raises(ConfigError, match=msg):
            parse_jitter(spec)
    with pytest.raises(ConfigError, match="needs the packets' send times"):
        Jitter("spikes", 0.3, 0.2).draw(10, np.random.default_rng(0))
