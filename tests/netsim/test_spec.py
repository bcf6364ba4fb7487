"""Loss models by name, spec strings, and pasted netem lines."""

import numpy as np
import pytest

from lossbench.errors import ConfigError, UnknownNameError
from lossbench.netsim import Bernoulli, GilbertElliott, Netem4State, Schedule, ThreeStateMarkov, TraceReplay
from lossbench.netsim.spec import LOSS_MODELS, make_loss_model, parse_netem, split_spec
from lossbench.traces.formats import write_trace
from lossbench.core import LossTrace


def test_registry_lists_every_model():
    assert {"bernoulli", "gilbert", "gilbert-elliott", "markov3", "netem-state", "netem-gemodel", "netem", "trace", "schedule"} <= set(LOSS_MODELS.names())


@pytest.mark.parametrize(
    "spec, cls, stats",
    [
        ("bernoulli:p=0.1", Bernoulli, (0.1, None)),
        ("bernoulli(loss_rate=10%)", Bernoulli, (0.1, None)),
        ("gilbert:loss_rate=0.1,mean_burst=3", GilbertElliott, (0.1, 3.0)),
        ("gilbert:p=0.05,r=0.5", GilbertElliott, (0.05 / 0.55, 2.0)),
        ("ge:loss_rate=0.1,mean_burst=2,loss_good=0.01,loss_bad=0.7", GilbertElliott, (0.1, 2.0)),
        ("markov3", ThreeStateMarkov, (0.1383, 1.687)),
        ("wlan", ThreeStateMarkov, (0.1383, 1.687)),
        ("markov3:loss_rate=0.2,mean_burst=2.5", ThreeStateMarkov, (0.2, 2.5)),
        ("netem-state:p13=1,p31=30,p32=10,p23=40,p14=0.5", Netem4State, None),
    ],
)
def test_specs_build_the_right_model(spec, cls, stats):
    m = make_loss_model(spec)
    assert isinstance(m, cls)
    if stats:
        st = m.stats()
        assert st.loss_rate == pytest.approx(stats[0], abs=1e-3)
        if stats[1] is not None:
            assert st.mean_burst == pytest.approx(stats[1], abs=1e-3)


def test_spec_errors_name_key_and_valid_values():
    with pytest.raises(UnknownNameError, match="unknown loss model 'nope'; valid names: 'bernoulli'"):
        make_loss_model("nope:p=1")
    with pytest.raises(ConfigError, match="unknown parameter 'q'; valid parameters: 'loss_rate', 'p'"):
        make_loss_model("bernoulli:q=0.1")
    with pytest.raises(ConfigError, match="not of the form key=value"):
        make_loss_model("bernoulli:0.1")
    with pytest.raises(ConfigError, match="give exactly one of p or loss_rate"):
        make_loss_model("bernoulli")
    with pytest.raises(ConfigError, match="p must be a number"):
        make_loss_model("bernoulli:p=abc")


def test_netem_state_defaults_follow_iproute2():
    m = parse_netem("loss state 5%")
    assert (m.p13, m.p31, m.p32, m.p23, m.p14) == pytest.approx((0.05, 0.95, 0.0, 1.0, 0.0))
    # p13 alone is Bernoulli(p13)
    st = m.stats()
    assert st.loss_rate == pytest.approx(0.05) and st.p_loss_given_loss == pytest.approx(0.05)


def test_netem_pasted_tc_lines():
    m = parse_netem("tc qdisc add dev eth0 root netem delay 50ms loss state 1% 30% 10% 40% 0.5%")
    assert isinstance(m, Netem4State)
    assert (m.p13, m.p31, m.p32, m.p23, m.p14) == pytest.approx((0.01, 0.3, 0.1, 0.4, 0.005))
    g = parse_netem("loss gemodel 1% 10% 70% 0.1%")
    assert isinstance(g, GilbertElliott)
    assert (g.p, g.r, g.loss_bad, g.loss_good) == pytest.approx((0.01, 0.1, 0.7, 0.001))
    d = parse_netem("loss gemodel 2%")  # netem defaults: r = 1 - p, 1-h = 100 %, 1-k = 0
    assert (d.p, d.r, d.loss_bad, d.loss_good) == pytest.approx((0.02, 0.98, 1.0, 0.0))
    assert parse_netem("loss random 3%").p == pytest.approx(0.03)
    assert parse_netem("netem loss 3%").p == pytest.approx(0.03)
    assert isinstance(make_loss_model("netem:loss gemodel 1% 10%"), GilbertElliott)


def test_netem_gemodel_sample_statistics_match():
    g = parse_netem("loss gemodel 1% 10% 70% 0.1%")
    st = g.stats()
    lost = g.sample(400_000, np.random.default_rng(0)).lost
    assert lost.mean() == pytest.approx(st.loss_rate, abs=0.006)


def test_netem_errors():
    with pytest.raises(ConfigError, match="1 to 5 percentages"):
        parse_netem("loss state 1% 2% 3% 4% 5% 6%")
    with pytest.raises(ConfigError, match="must lie in"):
        parse_netem("loss gemodel 120%")
    with pytest.raises(ConfigError, match="correlation"):
        parse_netem("loss random 5% 25%")
    with pytest.raises(ConfigError, match="unknown loss model 'foo'"):
        parse_netem("loss foo 5%")


def test_trace_and_schedule_specs(tmp_path):
    p = write_trace(LossTrace([0, 1, 0, 0]), tmp_path / "t.txt")
    m = make_loss_model(f"trace:file={p},offset=1")
    assert isinstance(m, TraceReplay) and m.offset == 1
    s = make_loss_model("schedule:0=bernoulli(p=0);5=bernoulli(p=0.3);10s=markov3")
    assert isinstance(s, Schedule) and s.starts_s == (0.0, 5.0, 10.0)
    assert isinstance(s.models[2], ThreeStateMarkov)
    with pytest.raises(ConfigError, match="START_S=MODEL"):
        make_loss_model("schedule:bernoulli(p=0)")


def test_split_spec_forms():
    assert split_spec("gilbert(loss_rate=0.1, mean_burst=3)") == ("gilbert", {"loss_rate": 0.1, "mean_burst": 3})
    assert split_spec("x:a=1,b=true,c=5%") == ("x", {"a": 1, "b": True, "c": 0.05})
