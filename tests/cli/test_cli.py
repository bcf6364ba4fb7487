"""The CLI as a user drives it (CliRunner), end to end on real files."""

import json
import re

import pytest
from typer.testing import CliRunner

from lossbench import __version__
from lossbench.cli import app
from lossbench.traces.formats import read_trace

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_help_and_version():
    r = run("--help")
    assert r.exit_code == 0 and "traces" in r.output and "netsim" in r.output
    r = run("version")
    assert r.exit_code == 0 and __version__ in r.output


def test_wlan_trace_generate_stats_plot_convert(tmp_path):
    txt = tmp_path / "wlan.txt"
    r = run("traces", "generate", "markov3", "--packets", "5000", "--seed", "4", "-o", str(txt))
    assert r.exit_code == 0, r.output
    from lossbench.netsim import make_loss_model

    model_pct = float(re.search(r"model ([0-9.]+) %", r.output).group(1))
    assert model_pct == pytest.approx(100 * make_loss_model("markov3").stats().loss_rate, abs=0.006)
    r = run("traces", "stats", str(txt))
    assert r.exit_code == 0
    r = run("traces", "stats", "--json", str(txt))
    st = json.loads(r.output)[0]
    t = read_trace(txt)
    assert st["packets"] == 5000 == len(t) and st["loss_rate"] == pytest.approx(t.loss_rate)
    png = tmp_path / "wlan.png"
    r = run("traces", "plot", str(txt), "-o", str(png))
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    g192 = tmp_path / "wlan.g192"
    back = tmp_path / "back.txt"
    assert run("traces", "convert", str(txt), str(g192)).exit_code == 0
    assert run("traces", "convert", str(g192), str(back)).exit_code == 0
    assert back.read_bytes() == txt.read_bytes()
    assert read_trace(g192).equals(read_trace(txt))


def test_generate_with_params(tmp_path):
    out = tmp_path / "g.npy"
    r = run("traces", "generate", "gilbert", "-p", "loss_rate=0.2", "-p", "mean_burst=4", "--packets", "20000", "-o", str(out))
    assert r.exit_code == 0, r.output
    t = read_trace(out)
    assert abs(t.loss_rate - 0.2) < 0.03


def test_netem_paste(tmp_path):
    r = run("netsim", "netem", "tc qdisc add dev eth0 root netem loss gemodel 1% 10% 70% 0.1%", "--packets", "200000")
    assert r.exit_code == 0, r.output
    assert "gilbert-elliott(p=0.01, r=0.1, loss_good=0.001, loss_bad=0.7)" in r.output
    # the closed-form loss rate, by hand: pi_bad = p / (p + r); loss = (1 - pi_bad) 0.001 + pi_bad 0.7
    pi_bad = 0.01 / 0.11
    want = 100 * ((1 - pi_bad) * 0.001 + pi_bad * 0.7)
    closed = float(re.search(r"loss rate %\W+([0-9.]+)", r.output).group(1))
    assert closed == pytest.approx(want, abs=5e-5)


def test_replay_trace_through_jittery_path(tmp_path):
    txt = tmp_path / "wlan.txt"
    run("traces", "generate", "wlan", "--packets", "1500", "-o", str(txt))
    eff = tmp_path / "eff.txt"
    r = run("netsim", "simulate", "--trace", str(txt), "--delay", "40ms", "--jitter", "normal:15ms",
            "--playout", "fixed:30ms", "--packets", "1500", "-o", str(eff))
    assert r.exit_code == 0, r.output
    assert "late (after playout deadline)" in r.output
    src, got = read_trace(txt), read_trace(eff)
    assert got.lost[src.lost].all()  # every network loss is in the effective pattern
    assert got.lost.sum() > src.lost.sum()  # and some late packets on top


def test_simulate_bottleneck_and_cross_traffic():
    r = run("netsim", "simulate", "--loss", "bernoulli:p=0.01", "--bottleneck", "300kbit", "--queue", "10",
            "--cross", "poisson:rate=20,size=1200", "--packets", "1000")
    assert r.exit_code == 0, r.output
    assert "cross packets sent / dropped" in r.output


def test_errors_are_one_clear_line(tmp_path):
    r = run("netsim", "stats", "bogus")
    assert r.exit_code == 2 and "unknown loss model 'bogus'; valid names:" in r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("0\n1\nz\n")
    r = run("traces", "stats", str(bad))
    assert r.exit_code == 2 and "line 3: expected 0 or 1, got 'z'" in r.output
    r = run("netsim", "simulate", "--playout", "magic")
    assert r.exit_code == 2 and "unknown playout buffer 'magic'" in r.output
    r = run("traces", "stats", str(tmp_path))  # a directory holding only bad.txt
    assert r.exit_code == 2
