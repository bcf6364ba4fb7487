"""The report's statistics against scipy on known data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lossbench.reports.data import mean_ci


def test_mean_ci_is_scipys_t_interval():
    x = np.array([2.1, 2.5, 1.9, 2.8, 2.2, 2.4, 3.0, 1.7])
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    m, h, n = mean_ci(pd.Series(x))
    assert n == 8 and m == pytest.approx(x.mean())
    assert m - h == pytest.approx(lo) and m + h == pytest.approx(hi)
    # by hand: t_{0.975, 7} = 2.3646, sd 0.4377 -> half-width 0.3659
    assert h == pytest.approx(2.364624 * x.std(ddof=1) / math.sqrt(8), rel=1e-5)


def test_mean_ci_drops_nan_and_handles_tiny_samples():
    m, h, n = mean_ci(pd.Series([1.0, np.nan, 3.0]))
    assert (m, n) == (2.0, 2) and h == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    assert mean_ci(pd.Series([4.0])) == (4.0, 0.0, 1)
    m, h, n = mean_ci(pd.Series([np.nan]))
    assert n == 0 and math.isnan(m) and math.isnan(h)


def _exact_signed_rank_p(diff: np.ndarray) -> float:
    """Two-sided exact Wilcoxon signed-rank p-value by enumerating all 2^n sign patterns (no ties, no zeros)."""
    import itertools

    ranks = stats.rankdata(np.abs(diff))
    w = ranks[diff > 0].sum()
    total = ranks.sum()
    dist = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(diff))])
    lo = min(w, total - w)
    return min(1.0, 2 * np.mean(dist <= lo))


def test_compare_p_values_are_the_exact_wilcoxon_test(tmp_path):
    from lossbench.reports.compare import compare_concealments

    base = np.array([2.0, 2.2, 1.8, 2.5, 2.1, 1.9, 2.3, 2.4])
    plus = base + np.array([0.31, 0.12, -0.05, 0.44, 0.27, 0.08, -0.16, 0.22])  # distinct |differences|
    rows = []
    for i in range(8):
        for conc, v in (("zeros", base[i]), ("repeat", plus[i])):
            rows.append({"status": "ok", "codec": "rvq", "codec_config": "rvq:layers=12", "system": "rvq",
                         "concealment": conc, "channel": "bernoulli", "loss_param": 0.1, "clip": f"c{i}",
                         "channel_key": "k", "seed": 0, "pesq_wb": v})
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    table = compare_concealments(tmp_path, "rvq", "pesq_wb", baseline="zeros")
    line = next(x for x in table.splitlines() if x.split()[2:3] == ["repeat"])
    mean, diff, p, n = line.split()[3:]
    want = _exact_signed_rank_p(plus - base)
    assert float(p) == pytest.approx(want, rel=0.01)  # printed to 2 significant digits
    assert float(p) == pytest.approx(stats.wilcoxon(plus, base).pvalue, rel=0.01)
    assert float(diff) == pytest.approx((plus - base).mean(), abs=5e-4) and int(n) == 8
    assert float(mean) == pytest.approx(plus.mean(), abs=5e-4)


def test_every_heading_says_the_better_direction_once():
    """Table headings and axis labels name the metric and its better direction once each (the MFCC distance's
    label used to carry the direction already, and its heading said it twice)."""
    from lossbench.metrics import METRIC_TABLE
    from lossbench.metrics.table import column_info
    from lossbench.reports.plots import axis_label

    for m in METRIC_TABLE.values():
        for c in m.column_names:
            name, _ = column_info(c)
            assert "is better" not in name, name
            assert axis_label(c).count("is better") == 1, axis_label(c)
