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


@pytest.mark.needs_shared
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


def test_visqol_scores_a_stereo_pair_as_its_mono_downmix(tmp_path):
    """Why lossbench's 48 kHz pipeline is mono (#23): ViSQOL, like Google's C++ (MiscAudio::LoadAsMono), loads a
    stereo file as the mean of its channels, so no metric here scores a stereo image. A stereo pair with very
    different channels scores exactly as the pair of its downmixes."""
    import soundfile as sf
    from visqol import VisqolApi

    sr = 48000
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    right = 0.2 * rng.standard_normal(t.size) * np.exp(-((t % 0.5) * 6))
    ref = np.stack([left, right], axis=1)
    deg = ref + 0.02 * rng.standard_normal(ref.shape)
    deg[:, 1] *= 0.3  # the degraded pair also loses most of its right channel
    for name, x in (("ref2", ref), ("deg2", deg), ("ref1", ref.mean(1)), ("deg1", deg.mean(1))):
        sf.write(tmp_path / f"{name}.wav", x, sr, subtype="FLOAT")
    api = VisqolApi()
    api.create(mode="audio")
    stereo = api.measure(str(tmp_path / "ref2.wav"), str(tmp_path / "deg2.wav")).moslqo
    mono = api.measure(str(tmp_path / "ref1.wav"), str(tmp_path / "deg1.wav")).moslqo
    assert stereo == pytest.approx(mono, abs=1e-5)  # the same score (float32 files: the mean rounds apart)
