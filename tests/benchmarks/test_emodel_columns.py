"""Rows carry the E-model's R and MOS (G.107, G.113 Appendix I values) where G.113 tabulates the codec, and NaN
with the reason where it does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.playout.emodel import EModelParams, r_factor


def test_rows_carry_emodel_r_and_mos(tmp_path):
    s = spec_from_dict({
        "name": "em", "clips": 1, "metrics": ["si_snr"],
        "codec": [{"spec": "g711", "concealments": ["g711-plc", "zeros", "repeat"]},
                  {"spec": "amrnb:mode=7", "concealments": ["amrnb-bfi"]},
                  {"spec": "amrnb:mode=4", "concealments": ["amrnb-bfi"]},
                  {"spec": "pcm", "concealments": ["zeros"]}],
        "channel": [{"model": "bernoulli", "loss": [0.0, 0.1], "delay": "80ms", "playout": "fixed:40ms"}]})
    run_sweep(s, tmp_path / "r", progress=False)
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert (df["status"] == "ok").all()
    g = df[df["codec"] == "g711"].set_index(["concealment", "loss_param"])
    plc, zeros = g.loc[("g711-plc", 0.1)], g.loc[("zeros", 0.1)]
    assert np.isfinite(plc["emodel_r"]) and plc["emodel_r"] > zeros["emodel_r"]  # Bpl 25.1 against 4.3
    d = plc["mouth_to_ear_ms"]
    assert d > 120
    # the row's value is G.107 with the row's delay and loss
    lost = plc["effective_loss"] * 100
    random_r = r_factor(EModelParams(T=d, Ta=d, Tr=2 * d)) - 95 * lost / (lost + 25.1)  # BurstR = 1
    assert random_r - 3 <= plc["emodel_r"] <= random_r + 1e-9  # Bernoulli loss: BurstR close to 1
    assert 1.0 <= plc["emodel_mos"] <= 4.5
    clean = g.loc[("repeat", 0.0)]  # no loss: Ie alone, any concealment
    assert clean["emodel_r"] == pytest.approx(r_factor(EModelParams(T=clean["mouth_to_ear_ms"],
                                                                    Ta=clean["mouth_to_ear_ms"],
                                                                    Tr=2 * clean["mouth_to_ear_ms"])))
    assert np.isnan(g.loc[("repeat", 0.1), "emodel_r"]) and "no Bpl" in g.loc[("repeat", 0.1), "emodel_note"]
    efr = df[df["system"] == "amrnb:mode=7"]  # AMR-NB 12.2 = GSM-EFR: Ie 5, Bpl 10
    assert len(efr) == 2 and np.isfinite(efr["emodel_r"]).all() and efr["emodel_note"].str.contains("Ie=5").all()
    for rows in (df[df["system"] == "amrnb:mode=4"], df[df["codec"] == "pcm"]):
        # AMR-NB 7.4 and 16-bit PCM are not in G.113 Appendix I
        assert len(rows) == 2
        assert rows["emodel_r"].isna().all() and rows["emodel_note"].str.contains("does not tabulate").all()
