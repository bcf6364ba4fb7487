"""The E-model (ITU-T G.107) and its G.113 Appendix I planning values."""

import math

import numpy as np
import pytest

from lossbench.errors import ConfigError
from lossbench.playout.emodel import EModelParams, burst_ratio, emodel_row, mos_from_r, r_factor
from lossbench.traces.stats import trace_stats


def test_default_parameters_give_the_g107_reference_rating():
    # G.107: with every parameter at its default, R = 93.2 (MOS 4.41)
    assert r_factor() == pytest.approx(93.2, abs=0.05)
    assert mos_from_r(r_factor()) == pytest.approx(4.41, abs=0.01)


def test_mos_mapping_ends_and_monotone():
    assert mos_from_r(-5) == 1.0 and mos_from_r(120) == 4.5
    rs = np.linspace(0, 100, 101)
    m = [mos_from_r(r) for r in rs]
    assert all(b >= a for a, b in zip(m, m[1:]))


def test_delay_and_loss_lower_the_rating():
    r0 = r_factor()
    r_delay = r_factor(EModelParams(T=300, Ta=300, Tr=600))
    r_loss = r_factor(EModelParams(Ppl=2, Bpl=25.1))
    assert r_delay < r0 - 10  # G.114: one-way delay beyond 150 ms costs several R points, 300 ms many
    assert r_factor(EModelParams(T=100, Ta=100, Tr=200)) > r_delay
    # Ie,eff = 95 * 2 / (2 + 25.1) = 7.01 for G.711 with PLC at 2 % random loss
    assert r0 - r_loss == pytest.approx(95 * 2 / (2 + 25.1), abs=1e-9)
    # bursty loss hurts more than random loss at the same rate
    assert r_factor(EModelParams(Ppl=2, Bpl=25.1, BurstR=2)) < r_loss


def test_burst_ratio_of_random_and_bursty_patterns():
    rng = np.random.default_rng(0)
    def ratio(lost):
        st = trace_stats(lost)
        return burst_ratio(st.mean_burst, st.loss_rate)

    assert ratio(rng.random(200_000) < 0.1) == pytest.approx(1.0, abs=0.03)
    bursty = np.repeat(rng.random(20_000) < 0.1, 5)  # bursts of 5
    assert ratio(bursty) > 3
    assert math.isnan(ratio(np.zeros(100, bool)))


def test_rows_use_g113_values_or_say_why_not():
    ok = emodel_row("g711", "g711-plc", 150.0, 0.02)
    assert np.isfinite(ok["emodel_r"]) and "Bpl=25.1" in ok["emodel_note"]
    assert emodel_row("g711", "zeros", 150.0, 0.02)["emodel_r"] < ok["emodel_r"]  # no PLC: Bpl 4.3
    no_codec = emodel_row("opus", "opus-plc", 150.0, 0.02)
    assert math.isnan(no_codec["emodel_r"]) and "does not tabulate 'opus'" in no_codec["emodel_note"]
    no_bpl = emodel_row("gsm", "gsm-plc", 150.0, 0.02)
    assert math.isnan(no_bpl["emodel_r"]) and "no Bpl" in no_bpl["emodel_note"]
    clean_gsm = emodel_row("gsm", "gsm-plc", 50.0, 0.0)  # Ie alone needs no Bpl
    assert clean_gsm["emodel_r"] == pytest.approx(r_factor(EModelParams(T=50, Ta=50, Tr=100, Ie=20)))


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="BurstR"):
        r_factor(EModelParams(BurstR=0.5))
    with pytest.raises(ConfigError, match="delays"):
        r_factor(EModelParams(T=-1))
