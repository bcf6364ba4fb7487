"""``lsd``: log-spectral distance in dB (lower is better), a row of lossbench's metric table."""

from __future__ import annotations

import numpy as np

from lossbench.metrics.table import Column, Metric

#: the function is named as module:function and imported on first use, so reading the table stays cheap
LSD = Metric("lsd", "lossbench_example_plugin.metric:lsd", (Column("lsd", "log-spectral distance (dB)", "dB", 0.0),),
             higher_is_better=False, description="log-spectral distance over 32 ms frames (example plug-in)",
             sample_rates=None)


def lsd(estimate: np.ndarray, reference: np.ndarray, sample_rate_hz: int) -> dict[str, float]:
    n = int(0.032 * sample_rate_hz)
    m = min(estimate.size, reference.size) // n
    if m < 1:
        from lossbench.metrics import MetricUnavailable

        raise MetricUnavailable(f"lsd: needs at least {n} samples")
    def spec(x: np.ndarray) -> np.ndarray:
        frames = x[: m * n].reshape(m, n) * np.hanning(n)
        return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-10)
    d = spec(estimate) - spec(reference)
    return {"lsd": float(np.mean(np.sqrt(np.mean(d**2, axis=1))))}
