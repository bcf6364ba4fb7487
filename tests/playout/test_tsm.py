"""The time-scaling buffer (playout=tsm) and speexdsp's (playout=speex): plans, rendering, alignment, peers."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.errors import ConfigError
from lossbench.netsim import Channel, Link
from lossbench.netsim.network import FixedPlayout, Jitter
from lossbench.netsim.spec import parse_playout
from lossbench.playout.plan import (ACCELERATE, ACTIONS, DROP, EXPAND, HOLD, MERGE, NORMAL, PREEMPTIVE, align,
                                    check_plan, render)
from lossbench.playout.speex import SpeexPlayout, plan_speex
from lossbench.playout.tsm import TsmPlayout, plan_tsm, quiet_frames

F = 0.02


def _one_per_packet(n):
    return np.stack([np.arange(n), np.arange(n) + 1], axis=1), np.ones(n, bool)


def _arrivals(n, kind="pareto", scale=0.02, loss=0.0, seed=0, base=0.03):
    rng = np.random.default_rng(seed)
    send = np.arange(n) * F
    arr = send + base + Jitter(kind, scale, Jitter.SHAPES.get(kind, (2.5,))[0]).draw(n, rng, send)
    arr = np.maximum(arr, send)
    arr[rng.random(n) < loss] = np.nan
    return send, arr


def _out_frames(plan):
    return plan.out_s / plan.frame_s


@pytest.mark.parametrize("planner,pl", [(plan_tsm, TsmPlayout()), (plan_speex, SpeexPlayout())])
def test_the_action_log_accounts_for_every_output_frame_and_every_media_frame(planner, pl):
    n = 600
    send, arr = _arrivals(n, "pareto", 0.03, loss=0.05)
    spans, prim = _one_per_packet(n)
    plan, deadline = planner(pl, send, arr, spans, prim, n, F)
    check_plan(plan, n)  # every frame consumed once, in order
    log = plan.log()
    assert len(log) == plan.num_chunks
    out = _out_frames(plan)
    media = plan.media1 - plan.media0
    a = plan.action
    # each action's output and media are what the table in lossbench.playout.plan says
    assert np.allclose(out[a == NORMAL], media[a == NORMAL]) and np.allclose(out[a == MERGE], 1.0)
    assert np.allclose(out[a == ACCELERATE], 1.5) and np.allclose(media[a == ACCELERATE], 2.0)
    assert np.allclose(out[a == PREEMPTIVE], 1.5) and np.allclose(media[a == PREEMPTIVE], 1.0)
    assert np.allclose(media[a == HOLD], 0.0) and np.allclose(out[a == DROP], 0.0)
    assert np.allclose(out[a == EXPAND], media[a == EXPAND])
    # the log's output times are contiguous: the rendering is as long as the log says
    t = np.array([r["t_s"] for r in log])
    assert np.allclose(np.diff(t), plan.out_s[:-1], atol=1e-5)
    assert render(np.zeros(int(n * F * 16000), np.float32), plan, 16000).size == round(plan.output_s * 16000)
    # the rates are fractions of the output time, from the same log
    r = plan.rates()
    assert 0 <= r["hold_rate"] <= r["expand_rate"] <= 1
    assert r["expand_rate"] == pytest.approx(out[(a == EXPAND) | (a == HOLD)].sum() / out.sum())
    # a packet played was there when its frame was due; a packet given up was not
    got = ~np.isnan(arr)
    played = np.zeros(n, bool)
    for c in np.flatnonzero(np.isin(a, (NORMAL, MERGE, ACCELERATE, PREEMPTIVE))):
        played[int(plan.media0[c]): int(plan.media1[c])] = True
    assert np.all(arr[played] <= deadline[played] + 1e-12)
    assert not np.any(arr[got & ~played] <= deadline[got & ~played])


def test_without_jitter_or_loss_tsm_plays_every_frame_normally_at_the_network_delay():
    n = 300
    send = np.arange(n) * F
    arr = send + 0.05
    spans, prim = _one_per_packet(n)
    plan, deadline = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
    assert set(plan.action.tolist()) <= {NORMAL, PREEMPTIVE}
    assert np.all(arr <= deadline)
    # the target is one frame: a buffer of a single packet is at it, so it stops stretching soon
    assert (plan.action == PREEMPTIVE).sum() <= 3
    assert np.median(deadline - send) < 0.05 + 2 * F


def test_a_delay_spike_is_waited_out_and_the_delay_then_won_back_by_acceleration():
    n = 500  # 10 s; every packet sent in [4.0, 4.3) s is held until 4.3 s
    send = np.arange(n) * F
    arr = send + 0.03
    spike = (send >= 4.0) & (send < 4.3)
    arr[spike] = 4.3 + 0.03
    spans, prim = _one_per_packet(n)
    plan, deadline = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
    check_plan(plan, n)
    a = plan.action
    assert (a == HOLD).sum() >= 5  # the receiver waited rather than dropping the held packets
    assert (a == ACCELERATE).sum() >= 5  # and then played the backlog faster
    delay = deadline - send
    assert delay[(send > 4.3) & (send < 5.0)].max() > 0.2
    assert np.median(delay[send > 8.0]) < 0.12  # the backlog is gone (the histogram now remembers the spike)
    # nothing is late: every packet was played
    assert np.all(arr <= deadline)


def test_quiet_frames_gates_time_scaling():
    n = 400
    send, arr = _arrivals(n, "spikes", 0.15, seed=3)
    spans, prim = _one_per_packet(n)
    loud = np.zeros(n, bool)
    plan, _ = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F, quiet=loud)
    ok = plan.action[np.isin(plan.action, (ACCELERATE, PREEMPTIVE))]
    # with no quiet frame, only a buffer 4 x above its high limit accelerates, and nothing expands pre-emptively
    assert not np.any(ok == PREEMPTIVE)
    sr = 16000
    x = np.zeros(n * 320)
    x[: 100 * 320] = np.sin(np.arange(100 * 320) * 0.1)
    q = quiet_frames(x, 320, n, 30.0)
    assert not q[:100].any() and q[100:].all()
    with pytest.raises(ConfigError, match="activity flags"):
        plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F, quiet=np.ones(3, bool))
    assert sr


def test_rendering_a_tone_through_a_tsm_plan_keeps_its_pitch_and_alignment_restores_the_time_axis():
    n = 400
    send, arr = _arrivals(n, "spikes", 0.12, seed=5)
    spans, prim = _one_per_packet(n)
    plan, _ = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
    a = plan.action
    assert (a == ACCELERATE).any() and (a == PREEMPTIVE).any() and (a == HOLD).any()
    sr = 16000
    f0 = 220.0
    x = (0.5 * np.sin(2 * np.pi * f0 * np.arange(n * 320) / sr)).astype(np.float32)
    y = render(x, plan, sr)
    assert y.size == round(plan.output_s * sr)
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)]
    assert abs(f - f0) / f0 < 0.01
    # alignment: a tone gated on and off every 100 ms, played through the plan and aligned back, has its gates
    # where the reference has them (a waveform comparison would not do: a time-scaled tone keeps its period, so
    # its phase after a cut of one period is not the reference's)
    gate = (np.arange(x.size) // (sr // 10)) % 2 == 0
    xg = x * gate
    z = align(render(xg, plan, sr), plan, sr, x.size)
    assert z.size == x.size
    k = np.ones(sr // 200) / (sr // 200)
    env_z, env_x = np.convolve(np.abs(z), k, "same"), np.convolve(np.abs(xg), k, "same")
    lags = range(-160, 161, 16)  # +-10 ms
    best = max(lags, key=lambda L: np.dot(np.roll(env_z, L), env_x))
    assert abs(best) <= 48  # within 3 ms
    assert np.corrcoef(env_z, env_x)[0, 1] > 0.85


def test_a_plan_of_normal_frames_renders_and_aligns_sample_for_sample():
    n = 100
    send = np.arange(n) * F
    spans, prim = _one_per_packet(n)
    plan, _ = plan_tsm(TsmPlayout(min_delay_s=0.0), send, send + 0.001, spans, prim, n, F,
                       quiet=np.zeros(n, bool))
    assert set(plan.action.tolist()) == {NORMAL}
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n * 320).astype(np.float32)
    y = render(x, plan, 16000)
    win = 320
    assert np.allclose(y[win:-win], x[win:-win], atol=1e-5)
    assert np.allclose(align(y, plan, 16000, x.size)[win:-win], x[win:-win], atol=1e-5)


def _fixed_late(send, arr, mean_delay):
    """The late rate of a fixed buffer whose mean playout delay is ``mean_delay``."""
    deadline = send + mean_delay
    got = ~np.isnan(arr)
    return float(np.mean(got & (arr > deadline)))


@pytest.mark.parametrize("kind,scale", [("spikes", 0.2), ("ar1", 0.03), ("pareto", 0.03)])
def test_at_equal_mean_delay_tsm_loses_fewer_packets_to_lateness_than_a_fixed_buffer(kind, scale):
    n = 1500  # 30 s
    late_t, late_f = [], []
    for seed in range(3):
        send, arr = _arrivals(n, kind, scale, seed=seed)
        spans, prim = _one_per_packet(n)
        plan, deadline = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
        got = ~np.isnan(arr)
        late_t.append(float(np.mean(got & (arr > deadline))))
        late_f.append(_fixed_late(send, arr, float(np.mean(deadline - send))))
    assert np.mean(late_t) < np.mean(late_f)


def test_speexdsp_runs_on_a_jittered_trace_and_is_a_peer_of_tsm():
    n = 1500
    send, arr = _arrivals(n, "pareto", 0.03, loss=0.02, seed=7)
    spans, prim = _one_per_packet(n)
    ps, ds = plan_speex(SpeexPlayout(), send, arr, spans, prim, n, F)
    pt, dt = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
    check_plan(ps, n)
    got = ~np.isnan(arr)
    late_s, late_t = np.mean(got & (arr > ds)), np.mean(got & (arr > dt))
    d_s, d_t = np.mean((ds - send)[got]), np.mean((dt - send)[got])
    # two adaptive buffers aiming at a high quantile of the same delays: few late packets, delays of one order
    assert late_s < 0.06 and late_t < 0.06
    assert 0.5 < d_s / d_t < 2.0
    assert ps.facts["max_late_rate"] == 4  # speexdsp's own default, read back from the library
    # speexdsp's settings reach it: a larger margin buys a longer delay
    pm, dm = plan_speex(SpeexPlayout(margin_ms=60), send, arr, spans, prim, n, F)
    assert pm.facts["margin_ms"] == pytest.approx(60)
    assert np.mean((dm - send)[got]) > d_s


def test_a_missing_speexdsp_is_an_error_naming_the_package_and_make_setup(monkeypatch):
    import ctypes

    from lossbench.errors import CodecError
    from lossbench.playout import speex

    speex._lib.cache_clear()

    def no_lib(*a, **k):
        raise OSError("cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_lib)
    try:
        with pytest.raises(CodecError, match=r"apt-get install libspeexdsp1.*make setup"):
            plan_speex(SpeexPlayout(), np.zeros(1), np.zeros(1), *_one_per_packet(1), 1, F)
    finally:
        speex._lib.cache_clear()


def test_the_channel_runs_tsm_and_speex_and_puts_the_plan_in_the_reception():
    n = 250
    send = np.arange(n) * F
    for spec, policy in (("tsm", "tsm"), ("speex:max_late_rate=10", "speex")):
        ch = Channel((Link(None, 0.03, Jitter("exponential", 0.02)),), playout=parse_playout(spec))
        rec = ch.transmit_times(send, np.full(n, 100), np.random.default_rng(0))
        plan = rec.playout_plan
        assert plan.policy == policy
        check_plan(plan, n)
        assert np.all(np.isfinite(rec.playout_deadline_s))
        assert 0 <= rec.late_rate < 0.1
    # a fixed buffer has no plan
    rec = Channel((Link(),), playout=FixedPlayout(0.04)).transmit_times(send, np.full(n, 100),
                                                                       np.random.default_rng(0))
    assert rec.playout_plan is None


@pytest.mark.parametrize("spec,match", [
    ("tsm:quantile=1.5", "quantile must lie in"), ("tsm:bogus=1", "unknown parameter 'bogus'"),
    ("tsm:timescale_gap=0", "timescale_gap"), ("tsm:min_delay_s=0.5,max_delay_s=0.1", "min_delay_s <= max_delay_s"),
    ("speex:max_late_rate=150", "max_late_rate"), ("speex:margin_ms=-5", "margin_ms"),
    ("neteq", "valid: 'none'.*'tsm"),
])
def test_bad_playout_specs_are_clear_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_playout(spec)


def test_action_names_are_the_documented_ones():
    assert ACTIONS == ("normal", "accelerate", "preemptive", "expand", "hold", "merge", "drop")


def test_alignment_with_the_realised_map_gives_back_what_was_heard_as_a_plain_copy():
    """WSOLA may run a few ms off the plan's nominal map after a stretch; align() with render's realised map
    copies every stretch heard at rate 1 back sample for sample, so sample-level metrics stay meaningful."""
    n = 400
    send, arr = _arrivals(n, "spikes", 0.12, seed=5)
    spans, prim = _one_per_packet(n)
    plan, _ = plan_tsm(TsmPlayout(), send, arr, spans, prim, n, F)
    a = plan.action
    assert (a == HOLD).any() and (a == ACCELERATE).any()
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(n * 320)).astype(np.float32)
    y, rmap = render(x, plan, 16000, return_map=True)
    z = align(y, plan, 16000, x.size, rmap)
    exact = np.isclose(z, x, atol=1e-5)
    assert exact.mean() > 0.7  # all but what was compressed away, waited over or cross-faded (noise: WSOLA jumps often)
    nominal = align(y, plan, 16000, x.size)  # the nominal map: WSOLA everywhere, off by its drift
    assert np.isclose(nominal, x, atol=1e-5).mean() < exact.mean()
