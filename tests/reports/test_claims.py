"""Claims decided by written rules: paired tests over (clip, channel instance, seed), verdicts that follow the rule
whatever the numbers (holds, does not hold, undecided), the metric's direction, shares above a threshold, and bad
claims files named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.errors import ConfigError
from lossbench.reports.claims import Claim, decide, load_claims


def _rows(effect: float, noise: float, n_clips: int = 12, metric: str = "pesq_wb", base: float = 2.0,
          levels=(0.1, 0.2), seed: int = 0) -> pd.DataFrame:
    """Two systems on the same clips, channel instances and seeds; A = B + effect + noise."""
    rng = np.random.default_rng(seed)
    out = []
    for lv in levels:
        for c in range(n_clips):
            b = base + rng.normal(0, 0.5)
            a = b + effect + rng.normal(0, noise)
            for sysname, v in (("A", a), ("B", b)):
                out.append({"status": "ok", "clip": f"c{c}", "channel_key": f"bernoulli:loss_rate={lv}", "seed": 0,
                            "loss_param": lv, "channel": "bernoulli", "system": sysname, "concealment": "x",
                            metric: v})
    return pd.DataFrame(out)


def _claim(**kw) -> Claim:
    d = dict(id="C", statement="A beats B", metric="pesq_wb", a={"system": "A"}, b={"system": "B"},
             where={"channel": "bernoulli"}, levels=(0.1, 0.2))
    return Claim(**(d | kw))


def test_verdicts_follow_the_rule():
    clear = decide(_rows(0.3, 0.1), _claim())
    assert clear.verdict == "holds" and (clear.table["verdict"] == "holds").all()
    assert clear.table["n"].tolist() == [12, 12] and (clear.table["lo"] > 0).all() and (clear.table["p"] < 0.05).all()
    worse = decide(_rows(-0.3, 0.1), _claim())
    assert worse.verdict == "does not hold" and (worse.table["hi"] < 0).all()
    tied = decide(_rows(0.0, 0.3, seed=4), _claim())
    assert tied.verdict == "undecided" and (tied.table["lo"] < 0).all() and (tied.table["hi"] > 0).all()
    # a margin: an effect of 0.3 does not clear a claimed 0.5, and its interval lies below it
    assert decide(_rows(0.3, 0.05), _claim(margin=0.5)).verdict == "does not hold"
    # too few pairs decide nothing
    assert decide(_rows(0.3, 0.1, n_clips=4), _claim()).verdict == "undecided"
    # one level against, one for: the claim does not hold
    mixed = pd.concat([_rows(0.3, 0.1, levels=(0.1,)), _rows(-0.3, 0.1, levels=(0.2,))])
    d = decide(mixed, _claim())
    assert d.table["verdict"].tolist() == ["holds", "does not hold"] and d.verdict == "does not hold"
    md = d.markdown()
    assert "rule (written before the run)" in md and "**verdict: does not hold**" in md and "| 0.2 | 12 |" in md


def test_a_metric_where_lower_is_better_turns_the_sign():
    df = _rows(-0.3, 0.1, metric="mfcc_dist", base=5.0)  # A has the lower distance: A is better
    d = decide(df, _claim(metric="mfcc_dist"))
    assert d.verdict == "holds" and (d.table["diff"] > 0).all()
    assert (d.table["a"] < d.table["b"]).all()  # the table shows the metric's own values


def test_share_above_a_threshold_with_mcnemar():
    rng = np.random.default_rng(1)
    out = []
    for c in range(20):
        for sysname, v in (("A", 3.8 if c < 18 else 3.0), ("B", 3.8 if c < 3 else 3.0)):
            out.append({"status": "ok", "clip": f"c{c}", "channel_key": "trace:w", "seed": 0, "loss_param": 0.13,
                        "channel": "wlan", "system": sysname, "concealment": "x", "plcmos": v + rng.normal(0, 0.01)})
    claim = _claim(metric="plcmos", where={"channel": "wlan"}, levels=None, test="share-above", threshold=3.5)
    d = decide(pd.DataFrame(out), claim)
    r = d.table.iloc[0]
    assert (r["a"], r["b"]) == (0.9, 0.15) and r["diff"] == pytest.approx(0.75)
    assert r["p"] == pytest.approx(2 * 0.5**15)  # 15 discordant pairs, all for A
    assert d.verdict == "holds" and "McNemar" in claim.rule()


def test_bad_claims_name_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="test must be one of"):
        _claim(test="t-test")
    with pytest.raises(ConfigError, match="needs a threshold"):
        _claim(test="share-above")
    df = _rows(0.3, 0.1)
    with pytest.raises(ConfigError, match="no scored rows for a"):
        decide(df, _claim(a={"system": "Nope"}))
    with pytest.raises(ConfigError, match="no column 'codec_label'"):
        decide(df, _claim(a={"codec_label": "A"}))
    with pytest.raises(ConfigError, match="more than one row per clip"):
        decide(df, _claim(a={"channel": "bernoulli"}))
    f = tmp_path / "c.toml"
    f.write_text('[[claim]]\nid = "X"\nstatement = "s"\nmetric = "pesq_wb"\na = {system = "A"}\nb = {system = "B"}\n'
                 'bogus = 1\n')
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        load_claims(f)
    f.write_text('[[claim]]\nid = "X"\nstatement = "s"\n')
    with pytest.raises(ConfigError, match="needs metric, a, b"):
        load_claims(f)


def test_the_cli_decides_a_claims_file_on_run_directories(tmp_path):
    from lossbench.cli import app

    run = tmp_path / "run"
    run.mkdir()
    _rows(0.3, 0.1).to_parquet(run / "results.parquet")
    f = tmp_path / "claims.toml"
    f.write_text('[[claim]]\nid = "SS-1"\nstatement = "A beats B at 10 and 20 %"\nmetric = "pesq_wb"\n'
                 'a = {system = "A"}\nb = {system = "B"}\nwhere = {channel = "bernoulli"}\nlevels = [0.1, 0.2]\n')
    r = CliRunner().invoke(app, ["claims", str(f), str(run)])
    assert r.exit_code == 0, r.output
    assert "### SS-1: A beats B at 10 and 20 %" in r.output and "**verdict: holds**" in r.output
    r = CliRunner().invoke(app, ["claims", str(tmp_path / "none.toml"), str(run)])
    assert r.exit_code == 2 and "does not exist" in " ".join(r.output.split())
    # --only: the named claims alone (a claims file whose other claims need other runs); an unknown id is named
    f.write_text(f.read_text() + '\n[[claim]]\nid = "X"\nstatement = "C beats B"\nmetric = "pesq_wb"\n'
                 'a = {system = "C"}\nb = {system = "B"}\n')
    assert CliRunner().invoke(app, ["claims", str(f), str(run)]).exit_code == 2  # no rows for C
    r = CliRunner().invoke(app, ["claims", str(f), str(run), "--only", "SS-1"])
    assert r.exit_code == 0 and "### SS-1" in r.output and "### X" not in r.output
    r = CliRunner().invoke(app, ["claims", str(f), str(run), "--only", "SS-9"])
    assert r.exit_code == 2 and "no claim 'SS-9'" in " ".join(r.output.split())


def test_a_rate_against_a_rate_in_the_same_rows():
    """The compression claim: the coded fine-token rate against the raw one, in the same rows (metric_b), with the
    direction named for a column outside the metric table."""
    df = _rows(0.0, 0.0, levels=(0.0,)).query("system == 'A'").assign(
        fine_coded_kbps=lambda d: 4.0 + 0.01 * np.arange(len(d)), fine_raw_kbps=4.5)
    claim = _claim(metric="fine_coded_kbps", metric_b="fine_raw_kbps", direction="lower", a={"system": "A"},
                   b={"system": "A"}, levels=None)
    d = decide(df, claim)
    assert d.verdict == "holds" and d.table["a"].iloc[0] < d.table["b"].iloc[0] == pytest.approx(4.5)
    assert "b - a" in claim.rule()
    assert decide(df, _claim(metric="fine_coded_kbps", metric_b="fine_raw_kbps", direction="lower", margin=1.0,
                             a={"system": "A"}, b={"system": "A"}, levels=None)).verdict == "does not hold"
    with pytest.raises(ConfigError, match="not in the metric table; say which way"):
        decide(df, _claim(metric="fine_coded_kbps", metric_b="fine_raw_kbps", a={"system": "A"}, b={"system": "A"},
                          levels=None))


def test_a_channel_without_a_loss_parameter_pairs_its_rows():
    """A schedule or trace set has no loss_param (NaN): its rows still pair and are decided over all rows."""
    df = _rows(0.3, 0.1, levels=(0.1,)).assign(loss_param=np.nan, channel="fig11")
    d = decide(df, _claim(where={"channel": "fig11"}, levels=None))
    assert d.verdict == "holds" and d.table["n"].tolist() == [12]
    # an unscored arm still drops its pair
    df.loc[df.index[0], "pesq_wb"] = np.nan
    assert decide(df, _claim(where={"channel": "fig11"}, levels=None)).table["n"].tolist() == [11]
