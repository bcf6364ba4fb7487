"""Loss models: closed forms, and long samples that match them (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.core import LossTrace
from lossbench.errors import ConfigError
from lossbench.netsim import (
    Bernoulli,
    GilbertElliott,
    Netem4State,
    Schedule,
    ThreeStateMarkov,
    TraceReplay,
)
from lossbench.netsim.markov import _run_maps, sample_states, stationary
from lossbench.traces.stats import trace_stats

N = 400_000
PROP = settings(max_examples=12, deadline=None, derandomize=True)


def mixing_time(model) -> float:
    """Integrated autocorrelation factor from the second eigenvalue of P."""
    P, _ = model.chain()
    ev = np.sort(np.abs(np.linalg.eigvals(P)))[::-1]
    lam = float(ev[1]) if ev.size > 1 else 0.0
    return (1 + lam) / (1 - lam)


def check_sample_matches(model, seed: int, n: int = N) -> None:
    cf = model.stats()
    s = trace_stats(model.sample(n, np.random.default_rng(seed)))
    tau = mixing_time(model)
    L = cf.loss_rate
    se = math.sqrt(max(L * (1 - L), 1e-6) * tau / n)
    assert abs(s.loss_rate - L) < 6 * se + 1e-4, (model, s.loss_rate, L)
    n_bursts = max(n * L / cf.mean_burst, 1.0)
    assert s.mean_burst == pytest.approx(cf.mean_burst, rel=6 * math.sqrt(tau / n_bursts) + 0.01), model
    assert s.p_loss_given_loss == pytest.approx(cf.p_loss_given_loss, abs=6 * math.sqrt(tau / n_bursts) + 0.01)


def test_wlan_setting_matches_paper_numbers():
    m = ThreeStateMarkov()
    st_ = m.stats()
    assert st_.loss_rate == pytest.approx(0.1383, abs=5e-4)
    assert st_.mean_burst == pytest.approx(1.687, abs=1e-3)
    assert m.stationary()[1] == pytest.approx(st_.loss_rate)
    check_sample_matches(m, 0)


def test_gilbert_closed_form():
    g = GilbertElliott.gilbert(0.05, 0.25)
    st_ = g.stats()
    assert st_.loss_rate == pytest.approx(0.05 / 0.30)
    assert st_.mean_burst == pytest.approx(4.0)
    assert st_.mean_gap == pytest.approx(20.0)
    assert st_.p_loss_given_loss == pytest.approx(0.75)


@PROP
@given(p=st.floats(0.0, 0.6), seed=st.integers(0, 2**31))
def test_bernoulli_samples_match(p, seed):
    check_sample_matches(Bernoulli(p), seed) if p > 0 else None
    if 0.0 < p < 1.0:
        # independent closed form: the general Markov-chain statistics of a Gilbert chain whose next
        # state ignores the current one (P(G->B) = p, P(B->G) = 1 - p) describe the same process
        ref = GilbertElliott.gilbert(p, 1.0 - p).stats()
        got = Bernoulli(p).stats()
        assert got.loss_rate == pytest.approx(ref.loss_rate)
        assert got.mean_burst == pytest.approx(ref.mean_burst)
        assert got.mean_gap == pytest.approx(ref.mean_gap)
        assert got.p_loss_given_loss == pytest.approx(ref.p_loss_given_loss)


@PROP
@given(p=st.floats(0.01, 0.5), r=st.floats(0.1, 1.0), eg=st.floats(0, 0.1), eb=st.floats(0.5, 1.0), seed=st.integers(0, 2**31))
def test_gilbert_elliott_samples_match(p, r, eg, eb, seed):
    check_sample_matches(GilbertElliott(p, r, eg, eb), seed)


@PROP
@given(
    p11=st.floats(0.5, 0.99), p21=st.floats(0.05, 0.9), frac=st.floats(0.0, 0.9), p33=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**31),
)
def test_three_state_samples_match(p11, p21, frac, p33, seed):
    p22 = (1 - p21) * frac
    check_sample_matches(ThreeStateMarkov(p11, p21, p22, p33), seed)


@PROP
@given(
    p13=st.floats(0.005, 0.2), p31=st.floats(0.1, 0.9), p32=st.floats(0.0, 0.1), p23=st.floats(0.2, 1.0),
    p14=st.floats(0.0, 0.1), seed=st.integers(0, 2**31),
)
def test_netem_4state_samples_match(p13, p31, p32, p23, p14, seed):
    check_sample_matches(Netem4State(p13, p31, p32, p23, p14), seed)


@PROP
@given(L=st.floats(0.01, 0.4), B=st.floats(1.0, 8.0))
def test_gilbert_from_rate_burst_round_trip(L, B):
    if L / (1 - L) / B > 1:
        with pytest.raises(ConfigError, match="no Gilbert parameters"):
            GilbertElliott.from_rate_burst(L, B)
        return
    st_ = GilbertElliott.from_rate_burst(L, B).stats()
    assert st_.loss_rate == pytest.approx(L) and st_.mean_burst == pytest.approx(B)


@PROP
@given(L=st.floats(0.02, 0.3), B=st.floats(1.2, 6.0))
def test_gilbert_elliott_from_rate_burst_round_trip(L, B):
    try:
        g = GilbertElliott.from_rate_burst(L, B, loss_good=0.01, loss_bad=0.8)
    except ConfigError as exc:
        assert "can only range" in str(exc) or "strictly between" in str(exc)
        return
    st_ = g.stats()
    assert st_.loss_rate == pytest.approx(L, rel=1e-6) and st_.mean_burst == pytest.approx(B, rel=1e-6)


@PROP
@given(L=st.floats(0.01, 0.5), B=st.floats(1.0, 5.0))
def test_three_state_from_rate_burst_round_trip(L, B):
    try:
        m = ThreeStateMarkov.from_rate_burst(L, B)
    except ConfigError as exc:
        assert "reachable loss rates" in str(exc)
        hi = float(str(exc).split("(0, ")[1].split("]")[0])
        assert L > hi * 0.999
        return
    st_ = m.stats()
    assert st_.loss_rate == pytest.approx(L) and st_.mean_burst == pytest.approx(B)


def test_three_state_infeasible_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"markov3: no three-state parameters give loss_rate=0.9"):
        ThreeStateMarkov.from_rate_burst(0.9, 1.5)
    with pytest.raises(ConfigError, match="mean_burst must be >= 1"):
        ThreeStateMarkov.from_rate_burst(0.1, 0.5)


def test_bad_parameters_name_the_value():
    with pytest.raises(ConfigError, match=r"bernoulli: p must lie in \[0, 1\], got 1.5"):
        Bernoulli(1.5)
    with pytest.raises(ConfigError, match="p21 \\+ p22 must be <= 1"):
        ThreeStateMarkov(0.9, 0.7, 0.6, 0.5)
    with pytest.raises(ConfigError, match="p13 \\+ p14"):
        Netem4State(0.7, 0.5, 0.0, 1.0, 0.5)


@pytest.mark.parametrize(
    "model",
    [Bernoulli(0.2), GilbertElliott(0.05, 0.3, 0.01, 0.9), ThreeStateMarkov(), Netem4State(0.02, 0.4, 0.05, 0.5, 0.01)],
    ids=lambda m: m.name,
)
def test_per_packet_process_matches_closed_form(model):
    proc = model.process(np.random.default_rng(7))
    n = 60_000
    lost = np.array([proc.step(0.02 * i) for i in range(n)])
    s = trace_stats(lost)
    cf = model.stats()
    se = math.sqrt(cf.loss_rate * (1 - cf.loss_rate) * mixing_time(model) / n)
    assert abs(s.loss_rate - cf.loss_rate) < 6 * se
    assert s.mean_burst == pytest.approx(cf.mean_burst, rel=0.1)


def test_sampling_is_deterministic_for_a_seed():
    m = ThreeStateMarkov()
    a = m.sample(50_000, np.random.default_rng(3)).lost
    b = m.sample(50_000, np.random.default_rng(3)).lost
    c = m.sample(50_000, np.random.default_rng(4)).lost
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_blocked_scan_equals_sequential_walk(rng):
    K, m = 4, 30_000
    f = rng.integers(0, K, size=(m, K)).astype(np.int8)
    fast = _run_maps(f, 2)
    x, slow = 2, [2]
    for t in range(m):
        x = int(f[t, x])
        slow.append(x)
    assert fast.tolist() == slow


def test_sample_states_small_and_absorbing(rng):
    P = np.array([[0.5, 0.5], [0.0, 1.0]])  # state 1 absorbing
    s = sample_states(P, 1000, rng, x0=0)
    assert s.shape == (1000,) and s[-1] == 1 and (np.diff(s) >= 0).all()
    assert sample_states(P, 0, rng).shape == (0,)
    assert stationary(np.array([[0.9, 0.1], [0.3, 0.7]])) == pytest.approx([0.75, 0.25])


def test_trace_replay_cycles_and_offsets(rng):
    tr = LossTrace([0, 1, 1, 0, 0])
    m = TraceReplay(tr, offset=1)
    assert m.sample(7, rng).lost.astype(int).tolist() == [1, 1, 0, 0, 0, 1, 1]
    proc = m.process(rng)
    assert [proc.step(0.02 * i) for i in range(7)] == [True, True, False, False, False, True, True]
    with pytest.raises(ConfigError, match="only 5 slots"):
        TraceReplay(tr, cycle=False).sample(6, rng)
    assert m.stats().loss_rate == pytest.approx(0.4)


def test_schedule_switches_model_over_time(rng):
    sch = Schedule((0.0, 2.0, 4.0), (Bernoulli(0.0), Bernoulli(1.0), Bernoulli(0.0)))
    lost = sch.sample(300, rng, 0.02).lost
    assert not lost[:100].any() and lost[100:200].all() and not lost[200:].any()
    proc = sch.process(rng)
    got = [proc.step(0.02 * i) for i in range(300)]
    assert got == lost.tolist()
    assert sch.loss_rate_at(3.0) == 1.0
    with pytest.raises(ConfigError, match="start at 0"):
        Schedule((1.0,), (Bernoulli(0.1),))
    with pytest.raises(ConfigError, match="increase strictly"):
        Schedule((0.0, 3.0, 2.0), (Bernoulli(0.1),) * 3)
