"""LossGen (Opus 1.5's learned loss model) through the C shim: seeded, bursty, everywhere a model goes."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from lossbench.errors import ConfigError
from lossbench.native import NativeBuildMissing, opus_demo_path
from lossbench.netsim import LossGen, make_loss_model
from lossbench.traces.stats import trace_stats


def test_same_seed_same_sequence_other_seed_other_sequence():
    m = make_loss_model("lossgen:loss_rate=0.1")
    a = m.sample(20_000, np.random.default_rng(5)).lost
    b = m.sample(20_000, np.random.default_rng(5)).lost
    c = m.sample(20_000, np.random.default_rng(6)).lost
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_per_packet_process_gives_the_vectorised_sequence():
    m = LossGen(0.2)
    ref = m.sample(3000, np.random.default_rng(11)).lost
    proc = m.process(np.random.default_rng(11))
    steps = np.array([proc.step(i * 0.02) for i in range(3000)])
    # the process draws in blocks of 256 after its 100 warm-up steps; the stream of draws is the same
    assert np.array_equal(steps[:3000], ref)


@pytest.mark.parametrize("asked", [0.05, 0.1, 0.2])
def test_delivered_rate_follows_the_asked_one_and_losses_come_in_bursts(asked):
    s = trace_stats(LossGen(asked).sample(200_000, np.random.default_rng(0)))
    assert abs(s.loss_rate - asked) < 0.25 * asked
    # real VoIP loss is bursty: a loss makes the next one far likelier than the mean rate
    assert s.p_loss_given_loss > 2 * s.loss_rate
    assert s.mean_burst > 1.3


def test_rate_is_monotone_in_the_asked_rate():
    rates = [LossGen(p).sample(100_000, np.random.default_rng(1)).lost.mean() for p in (0.01, 0.05, 0.1, 0.2, 0.4)]
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_bad_rate_names_the_value():
    with pytest.raises(ConfigError, match="loss_rate must lie in"):
        make_loss_model("lossgen:loss_rate=1.5")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_loss_model("lossgen:p=0.1")


def test_missing_build_names_make_setup(monkeypatch, tmp_path):
    monkeypatch.setenv("LOSSBENCH_OPUS_DIR", str(tmp_path / "nothing"))
    with pytest.raises(NativeBuildMissing, match="make setup"):
        opus_demo_path()


def test_cli_generate_stats_and_simulate(tmp_path):
    from lossbench.cli import app
    from lossbench.traces.formats import read_trace

    r = CliRunner()
    out = tmp_path / "lg.txt"
    res = r.invoke(app, ["traces", "generate", "lossgen:loss_rate=0.1", "--packets", "5000", "--seed", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    tr = read_trace(out)
    expect = LossGen(0.1).sample(5000, np.random.default_rng(3)).lost
    assert np.array_equal(tr.lost, expect)
    res = r.invoke(app, ["netsim", "stats", "lossgen:loss_rate=0.2", "--packets", "100000"])
    assert res.exit_code == 0 and "no closed form" in res.output and "burst length" in res.output
    res = r.invoke(app, ["netsim", "simulate", "--loss", "lossgen:loss_rate=0.1", "--packets", "2000", "-o",
                         str(tmp_path / "eff.txt")])
    assert res.exit_code == 0, res.output
    assert 0.03 < read_trace(tmp_path / "eff.txt").lost.mean() < 0.2


def test_sweep_takes_lossgen_with_loss_values(tmp_path):
    import pandas as pd

    from lossbench.cli import app

    res = CliRunner().invoke(app, ["sweep", "--codec", "pcm", "--concealment", "zeros", "--channel", "lossgen",
                                   "--loss", "0.05,0.2", "--clips", "1", "--metrics", "si_snr", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(df["loss_param"]) == [0.05, 0.2] and (df["status"] == "ok").all()
    assert set(df["channel_key"]) == {"lossgen:loss_rate=0.05|playout=fixed:60ms", "lossgen:loss_rate=0.2|playout=fixed:60ms"}
    # one 6.8 s clip is 340 packets: LossGen's long loss-free stretches make that short draw vary a lot
    assert df["network_loss"].between(0, 1).all()
