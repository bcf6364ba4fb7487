import numpy as np
import pytest

from lossbench.concealment import CONCEALMENTS

F, SR = 320, 16000


def voiced(n=16000, f0=150.0):
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 3 * f0 * t)).astype(np.float32)


@pytest.mark.parametrize("name", CONCEALMENTS.names())
def test_nothing_missing_changes_nothing(name):
    x = voiced()
    assert np.array_equal(CONCEALMENTS.get(name).conceal(x, np.zeros(50, bool), F, SR), x)


@pytest.mark.parametrize("name", CONCEALMENTS.names())
def test_fills_gaps_keeps_length_and_is_deterministic(name):
    x = voiced()
    miss = np.zeros(50, bool)
    miss[[10, 20, 21, 30, 31, 32, 33]] = True
    y = x.copy()
    for i in np.flatnonzero(miss):
        y[i * F : (i + 1) * F] = 0
    s = CONCEALMENTS.get(name)
    a = s.conceal(y, miss, F, SR)
    b = s.conceal(y, miss, F, SR)
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    gap = a[10 * F : 11 * F]
    if name == "zeros":
        assert not gap.any()
    else:
        assert np.sqrt(np.mean(gap**2)) > 0.05
    # the good frames far from gaps are untouched
    assert np.array_equal(a[2 * F : 9 * F], x[2 * F : 9 * F])


def test_waveform_substitution_tracks_a_periodic_signal():
    x = voiced()
    miss = np.zeros(50, bool)
    miss[25] = True
    y = x.copy()
    y[25 * F : 26 * F] = 0
    err = {n: float(np.sum((CONCEALMENTS.get(n).conceal(y, miss, F, SR) - x)[25 * F : 26 * F] ** 2)) for n in CONCEALMENTS.names()}
    assert err["waveform-substitution"] < 0.1 * err["zeros"]
    assert err["waveform-substitution"] < err["repeat"]


def test_long_bursts_fade_out():
    x = voiced()
    miss = np.zeros(50, bool)
    miss[10:20] = True
    y = x.copy()
    y[10 * F : 20 * F] = 0
    for n in ("repeat", "waveform-substitution", "noise-fill"):
        a = CONCEALMENTS.get(n).conceal(y, miss, F, SR)
        assert np.abs(a[17 * F : 20 * F]).max() < 0.5 * np.abs(a[10 * F : 11 * F]).max(), n


def test_missing_first_frame_has_no_history():
    x = voiced()
    miss = np.zeros(50, bool)
    miss[0] = True
    y = x.copy()
    y[:F] = 0
    for n in CONCEALMENTS.names():
        assert not CONCEALMENTS.get(n).conceal(y, miss, F, SR)[: F - 40].any()
