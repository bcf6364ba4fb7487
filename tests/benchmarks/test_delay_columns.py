"""Delay in every row (#25 item 3, begun): network and playout delay (mean, p95, max), the codec's algorithmic
delay and the mouth-to-ear delay built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep


def test_rows_carry_network_playout_algorithmic_and_mouth_to_ear_delay(tmp_path):
    s = spec_from_dict({
        "name": "dl", "clips": 1, "metrics": ["si_snr"],
        "codec": [{"spec": "pcm", "concealments": ["zeros"]}, {"spec": "amrwb", "concealments": ["amrwb-bfi"]},
                  {"spec": "opus:bitrate=16000,frames_per_packet=2", "concealments": ["opus-plc"]}],
        "channel": [{"model": "bernoulli", "loss": [0.0]},
                    {"model": "bernoulli", "loss": [0.0], "label": "delayed", "delay": "40ms",
                     "jitter": "uniform:20ms", "playout": "fixed:60ms"}]})
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert (df["status"] == "ok").all()
    plain = df[df["channel"] != "delayed"].set_index("codec")
    late = df[df["channel"] == "delayed"].set_index("codec")
    # no network settings: no network delay, the default fixed buffer (60 ms), recorded in the row;
    # mouth-to-ear = the codec's own delay + its packetisation + the buffer
    assert (plain["network_delay_max_ms"] == 0).all() and (plain["playout"] == "fixed:60ms").all()
    assert np.allclose(plain["playout_delay_mean_ms"], 60.0) and np.allclose(plain["playout_delay_max_ms"], 60.0)
    assert plain.loc["pcm", "algorithmic_delay_ms"] == pytest.approx(20.0)  # one frame
    assert plain.loc["amrwb", "algorithmic_delay_ms"] == pytest.approx(20 + 1000 * 94 / 16000)  # + look-ahead
    assert plain.loc["opus", "mouth_to_ear_ms"] == pytest.approx(plain.loc["opus", "algorithmic_delay_ms"] + 20 + 60)
    assert np.allclose(plain.loc[["pcm", "amrwb"], "mouth_to_ear_ms"], plain.loc[["pcm", "amrwb"], "algorithmic_delay_ms"] + 60)
    # 40 ms + uniform [0, 20] ms, and a fixed 60 ms buffer after the first arrival
    for c in ("pcm", "amrwb", "opus"):
        r = late.loc[c]
        assert 40 <= r["network_delay_mean_ms"] <= 60 and r["network_delay_max_ms"] <= 60 + 1e-9
        assert r["network_delay_p95_ms"] <= r["network_delay_max_ms"]
        assert 100 <= r["playout_delay_mean_ms"] <= 120 and r["playout_delay_max_ms"] >= r["playout_delay_mean_ms"]
        fpp_extra = 20.0 if c == "opus" else 0.0
        assert r["mouth_to_ear_ms"] == pytest.approx(r["algorithmic_delay_ms"] + fpp_extra + r["playout_delay_mean_ms"])
    assert np.isfinite(df["mouth_to_ear_ms"]).all()
