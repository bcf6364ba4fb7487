"""ViSQOL against Google's C++ conformance values (../shared/reference/visqol/, skipped without it), with the
numba path; and the metric's behaviour on corpus speech: identity near the top, loss lowers it, bad input is
a clean MetricUnavailable."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.metrics import compute_metrics
from lossbench.metrics.visqol import numba_accelerated, visqol, visqol_score
from tests.metrics.test_metrics import SHARED_ROOT

REF = SHARED_ROOT / "reference" / "visqol"

# the conformance constants of ViSQOL v3.3.3 (src/include/conformance.h), as ../shared/reference/visqol/README.md lists
CONFORMANCE = [
    ("CA01_01.wav", "transcoded_CA01_01.wav", "speech", 3.3129234313964844, 0.003),
    ("ravel48_stereo.wav", "ravel48_stereo_128kbps_opus.wav", "audio", 4.465141897255348, 1e-6),
]


def _read_or_skip(name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    p = REF / name
    if not p.exists():
        if os.environ.get("CI") and SHARED_ROOT.exists():
            pytest.fail(f"CI: {SHARED_ROOT} exists but {p} is missing")
        pytest.skip(f"{p} not present (set LOSSBENCH_SHARED to the shared data folder)")
    x, sr = sf.read(p, dtype="float64")
    return (x.mean(1) if x.ndim == 2 else x), sr


def test_the_compiled_path_runs():
    assert numba_accelerated()


@pytest.mark.parametrize("ref_name,deg_name,mode,want,tol", CONFORMANCE, ids=lambda v: str(v))
def test_matches_the_cpp_conformance_values(ref_name, deg_name, mode, want, tol):
    ref, sr = _read_or_skip(ref_name)
    deg, sr2 = _read_or_skip(deg_name)
    assert sr == sr2
    assert visqol_score(deg, ref, sr, mode) == pytest.approx(want, abs=tol)


@pytest.fixture(scope="module")
def speech():
    return default_corpus()[3].load(16000).samples.astype(np.float64)


def test_loss_lowers_it_and_it_does_not_floor(speech):
    x = speech
    clean = visqol(x, x, 16000)["visqol"]
    y = x.copy()
    rng = np.random.default_rng(2)
    for i in np.flatnonzero(rng.random(x.size // 320) < 0.3):
        y[i * 320 : (i + 1) * 320] = 0.0
    lossy = visqol(y, x, 16000)["visqol"]
    assert clean > 4.3
    assert 1.5 < lossy < clean - 0.5  # well above the MOS floor where PESQ sits at 30 % loss


def test_bad_input_is_a_clean_error_in_the_harness(speech):
    out = compute_metrics(np.full(8000, np.nan), speech[:8000], 16000, ["visqol"])
    assert np.isnan(out["visqol"]) and "NaN" in out["visqol_error"]
    out = compute_metrics(speech[:4000], speech[:4000], 16000, ["visqol"])
    assert np.isnan(out["visqol"]) and "short" in out["visqol_error"]
