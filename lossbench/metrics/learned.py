"""Learned, non-intrusive MOS estimators from speechmos: PLCMOS v2 and DNSMOS P.835."""

from __future__ import annotations

import numpy as np

from lossbench.metrics.common import MetricUnavailable, _check_single, _resample

def plcmos(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """PLCMOS v2 (speechmos), non-intrusive; NumPy seeded with 23 per call as in
    the reference implementation, so scores repeat."""
    est = _check_single(est)
    if sr != 16000:
        est = _resample(est, sr, 16000)
    if est.size < 16000:
        raise MetricUnavailable("too short for PLCMOS (needs >= 1 s)")
    from speechmos import plcmos as _pl

    state = np.random.get_state()
    np.random.seed(23)
    try:
        out = _pl.run(np.clip(est, -1, 1).astype(np.float32), 16000)
    finally:
        np.random.set_state(state)
    return {"plcmos": float(out["plcmos"])}


def dnsmos(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS P.835 (speechmos): overall, signal, background, and P.808 MOS."""
    est = _check_single(est)
    if sr != 16000:
        est = _resample(est, sr, 16000)
    if est.size < 16000:
        raise MetricUnavailable("too short for DNSMOS (needs >= 1 s)")
    from speechmos import dnsmos as _dn

    out = _dn.run(np.clip(est, -1, 1).astype(np.float32), 16000)
    return {
        "dnsmos_ovrl": float(out["ovrl_mos"]),
        "dnsmos_sig": float(out["sig_mos"]),
        "dnsmos_bak": float(out["bak_mos"]),
        "dnsmos_p808": float(out["p808_mos"]),
    }
