"""What every metric shares: the input checks and the exception that turns into NaN and a reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray, int], dict[str, float]]


class MetricUnavailable(Exception):
    """A metric cannot be computed for this input; the message is the reason."""


_SILENCE_RMS = 1e-5  # about -100 dBFS


def _check_pair(est: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    n = min(est.size, ref.size)
    if n == 0:
        raise MetricUnavailable("empty signal")
    est, ref = est[:n], ref[:n]
    if not np.isfinite(est).all():
        raise MetricUnavailable("estimate holds NaN or inf")
    if np.sqrt(np.mean(ref**2)) < _SILENCE_RMS:
        raise MetricUnavailable("silent reference")
    return est, ref


def _resample(x: np.ndarray, sr: int, to: int) -> np.ndarray:
    from lossbench.audio import resample

    return resample(x.astype(np.float32), sr, to).astype(np.float64)


def _check_single(est: np.ndarray) -> np.ndarray:
    """Checks for a non-intrusive metric: the whole estimate, no reference."""
    est = np.asarray(est, dtype=np.float64)
    if est.size == 0:
        raise MetricUnavailable("empty signal")
    if not np.isfinite(est).all():
        raise MetricUnavailable("estimate holds NaN or inf")
    if np.sqrt(np.mean(est**2)) < _SILENCE_RMS:
        raise MetricUnavailable("silent estimate")
    return est
