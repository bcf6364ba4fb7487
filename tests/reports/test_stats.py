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
