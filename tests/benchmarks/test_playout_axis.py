"""Playout buffers as an axis of a sweep: time-warping buffers' rows carry their NetEq-style rates, their audio is
what the listener heard (a different length), and the intrusive metrics score it aligned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.errors import ConfigError


def test_a_list_of_playout_buffers_is_one_more_axis(tmp_path):
    s = spec_from_dict({
        "name": "po", "clips": 1, "metrics": ["pesq_wb", "plcmos"], "examples": 1,
        "codec": [{"spec": "pcm", "concealments": ["zeros"]}],
        "channel": [{"model": "bernoulli", "loss": [0.02], "delay": "30ms", "jitter": ["periodic:150ms", "pareto:20ms"],
                     "playout": ["fixed:40ms", "tsm", "speex"]}]})
    assert len(s.channels) == 6
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert (df["status"] == "ok").all() and len(df) == 6
    assert sorted(df["playout"].unique()) == ["fixed:40ms", "speex", "tsm"]
    assert sorted(df["jitter"].unique()) == ["pareto:20ms", "periodic:150ms"]
    warped = df[df["playout"] != "fixed:40ms"]
    fixed = df[df["playout"] == "fixed:40ms"]
    assert np.isfinite(warped["playout_expand_rate"]).all() and fixed["playout_expand_rate"].isna().all()
    assert (warped[warped["playout"] == "speex"]["playout_accelerate_rate"] == 0).all()
    assert np.isfinite(df["pesq_wb"]).all() and np.isfinite(df["plcmos"]).all()
    # the saved audio of a time-warping buffer is what the listener heard: as long as the plan's output, and its
    # row keeps the action log, whose chunks add up to it
    for _, r in warped.iterrows():
        log = list(r["playout_log"])
        assert sum(c["out_ms"] for c in log) / 1e3 == pytest.approx(r["playout_output_s"], abs=1e-3)
        info = sf.info(tmp_path / "r" / r["audio_file"])
        assert info.duration == pytest.approx(r["playout_output_s"], abs=0.002)
        assert abs(info.duration - r["duration_s"]) > 0.005  # the plan moved time
    # the report draws quality against mouth-to-ear delay and the delay CDF per buffer
    from lossbench.reports.html import write_report

    write_report(tmp_path / "r")
    plots = {f.name for f in (tmp_path / "r" / "plots").iterdir()}
    assert {"delay_pesq_wb.png", "delay_plcmos.png", "delay_cdf.png"} <= plots
    q = [list(v) for v in df["playout_delay_quantiles_ms"]]
    assert all(len(v) == 21 and v == sorted(v) for v in q)
    # a delay spike of 150 ms every 5 s: the fixed 40 ms buffer loses what tsm waits for
    spike = df[df["jitter"] == "periodic:150ms"].set_index("playout")
    assert spike.loc["tsm", "late_rate"] < spike.loc["fixed:40ms", "late_rate"]


def test_a_bad_playout_list_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"channel\[0\]\.playout must be a string or a non-empty list"):
        spec_from_dict({"codec": ["pcm"], "channel": [{"model": "bernoulli", "playout": []}]})
    with pytest.raises(ConfigError, match=r"channel\[0\]\.jitter must be a string or a list"):
        spec_from_dict({"codec": ["pcm"], "channel": [{"model": "bernoulli", "jitter": 5}]})


def test_a_timing_trace_replays_its_delays_in_a_sweep(tmp_path):
    n = 600
    rng = np.random.default_rng(4)
    send = np.arange(n) * 0.02
    arr = send + 0.04 + rng.exponential(0.015, n)
    arr[rng.random(n) < 0.03] = np.nan
    lines = ["seq,send_s,arrival_s"] + [f"{i},{s:.6f},{'' if np.isnan(a) else f'{a:.6f}'}"
                                        for i, (s, a) in enumerate(zip(send, arr))]
    f = tmp_path / "call.csv"
    f.write_text("\n".join(lines) + "\n")
    s = spec_from_dict({"name": "tt", "clips": 1, "metrics": ["si_snr"],
                        "codec": [{"spec": "pcm", "concealments": ["zeros"]}],
                        "channel": [{"trace": str(f), "playout": ["fixed:30ms", "tsm"]}]})
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet").set_index("playout")
    assert (df["status"] == "ok").all()
    k = int(df["packets"].iloc[0])
    got = ~np.isnan(arr[:k])
    want = 1e3 * np.mean((arr[:k] - send[:k])[got])
    for p in ("fixed:30ms", "tsm"):
        assert df.loc[p, "network_delay_mean_ms"] == pytest.approx(want, rel=1e-6)
        assert df.loc[p, "network_loss"] == pytest.approx(1 - got.mean())
    assert df.loc["tsm", "late_rate"] < df.loc["fixed:30ms", "late_rate"]
