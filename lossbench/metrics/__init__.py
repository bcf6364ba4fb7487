"""Quality metrics of decoded audio against the reference.

Every metric function takes ``(estimate, reference, sample_rate_hz)`` in that
order (the ASR metrics also the clip's facts), float arrays in [-1, 1] of equal
length, and returns a dict of named values (DNSMOS gives four). :func:`compute_metrics` runs a list of metrics
and never raises for a bad clip: a metric that cannot be computed (silence,
too short, a library error, a crash of PESQ's C code) gives NaN and a reason
in ``<name>_error``.

The files, by kind: :mod:`~lossbench.metrics.table` (the one table of names,
columns, directions, ranges, units and rates), :mod:`~lossbench.metrics.signal`
(SI-SNR, SNR, SDR, STOI, ESTOI, MFCC distance), :mod:`~lossbench.metrics.pesq`
(PESQ in an isolated helper process), :mod:`~lossbench.metrics.learned`
(PLCMOS, DNSMOS, DistillMOS), :mod:`~lossbench.metrics.visqol` (ViSQOL speech
and audio), :mod:`~lossbench.metrics.asr` (WER and CER from Whisper tiny.en).
Heavy dependencies are imported when a metric first runs; every metric may be
called from several threads at once (``docs/architecture.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lossbench.errors import ConfigError, choices
from lossbench.metrics.common import MetricFn, MetricUnavailable
from lossbench.metrics.learned import dnsmos, plcmos
from lossbench.metrics.pesq import PESQ_CHUNK_S, call_isolated, pesq_nb, pesq_wb, shutdown_helper
from lossbench.metrics.signal import SDR_FILTER_TAPS, estoi, mfcc_distance, sdr, si_snr, snr, stoi
from lossbench.metrics.table import COLUMNS, METRIC_TABLE, Column, Metric, column_info, column_range

DEFAULT_METRICS = ("pesq_wb", "stoi", "estoi", "si_snr", "sdr", "mfcc_dist", "plcmos", "dnsmos")

__all__ = ["COLUMNS", "Column", "DEFAULT_METRICS", "METRIC_TABLE", "Metric", "MetricFn", "MetricUnavailable",
           "PESQ_CHUNK_S", "SDR_FILTER_TAPS", "call_isolated", "check_metric_names", "check_metric_rates", "column_info",
           "column_range",
           "compute_metrics", "dnsmos", "estimate_delay", "estoi", "metric_columns", "mfcc_distance", "pesq_nb",
           "pesq_wb", "plcmos", "sdr", "shutdown_helper", "si_snr", "snr", "stoi", "windowed"]


def check_metric_names(names: Sequence[str]) -> list[str]:
    out = []
    for n in names:
        if n not in METRIC_TABLE:
            raise ConfigError(f"unknown metric {n!r}; valid metrics: {choices(METRIC_TABLE)}")
        if METRIC_TABLE[n].needs:
            from lossbench.extras import check_modules

            check_modules(METRIC_TABLE[n].needs, f"metric {n!r}")
        out.append(n)
    return out


def check_metric_rates(names: Sequence[str], sample_rate_hz: int) -> None:
    """Raise ConfigError naming each metric that does not score ``sample_rate_hz`` audio as it is."""
    bad = [f"{n} (takes {', '.join(str(r) for r in METRIC_TABLE[n].sample_rates or ())} Hz)"
           for n in check_metric_names(names) if METRIC_TABLE[n].scores_at(sample_rate_hz) != int(sample_rate_hz)]
    if bad:
        raise ConfigError(f"metrics that do not take {int(sample_rate_hz)} Hz audio and would need resampling, which "
                          f"is off (metric_resampling = false): {'; '.join(bad)}")


def metric_columns(names: Sequence[str]) -> list[str]:
    """The output columns of the metrics ``names``, in order."""
    return [c for n in check_metric_names(names) for c in METRIC_TABLE[n].column_names]


def compute_metrics(
    estimate: np.ndarray, reference: np.ndarray, sample_rate_hz: int, names: Sequence[str] = DEFAULT_METRICS,
    times: dict[str, float] | None = None, context: dict[str, Any] | None = None, resample: bool = True,
    heard: np.ndarray | None = None,
) -> dict[str, Any]:
    """Run metrics; returns ``{column: value}`` plus ``{name + "_error": reason}`` for failures.

    With ``times``, each metric's wall time in seconds is stored there under its name. ``context`` holds the
    clip's facts for the metrics that want them (``transcript``, ``language``: the ASR metrics).
    ``metrics_resampled`` names the metrics that scored a resampled copy, as ``name@rate`` (a metric at a
    fixed rate, e.g. PESQ-WB at 16 kHz, given 48 kHz audio). With ``resample=False`` such a metric is an
    error instead (:func:`check_metric_rates`).

    ``heard``: where a playout buffer warped time, the audio as the listener heard it; the non-intrusive
    metrics score it, the intrusive ones ``estimate`` (the same audio aligned to the reference).

    Raises:
        ConfigError: an unknown metric name; with ``resample=False``, a metric that does not take the rate.
    """
    names = check_metric_names(names)
    if not resample:
        check_metric_rates(names, sample_rate_hz)
    # stereo: every metric scores the mean of the channels (ViSQOL would mix a stereo file down itself, as
    # Google's MiscAudio::LoadAsMono does; PESQ, STOI and the learned MOS models take one channel)
    stereo = np.ndim(estimate) == 2 or np.ndim(reference) == 2 or (heard is not None and np.ndim(heard) == 2)
    if stereo:
        estimate, reference = _mean_channels(estimate), _mean_channels(reference)
        heard = None if heard is None else _mean_channels(heard)
    out: dict[str, Any] = {"metrics_downmixed": bool(stereo), "metrics_resampled": " ".join(
        f"{n}@{METRIC_TABLE[n].scores_at(sample_rate_hz)}" for n in names
        if METRIC_TABLE[n].scores_at(sample_rate_hz) != int(sample_rate_hz))}
    for n in names:
        t0 = time.perf_counter()
        m = METRIC_TABLE[n]
        cols = m.column_names
        est = heard if (heard is not None and not m.intrusive) else estimate
        try:
            if m.wants_context:
                out.update(m.load()(est, reference, sample_rate_hz, context or {}))
            else:
                out.update(m.load()(est, reference, sample_rate_hz))
        except MetricUnavailable as exc:
            for c in cols:
                out[c] = float("nan")
            for c in m.extra:
                out[c] = ""
            out[f"{n}_error"] = str(exc)
        except Exception as exc:  # a library bug must not stop a sweep
            for c in cols:
                out[c] = float("nan")
            for c in m.extra:
                out[c] = ""
            out[f"{n}_error"] = f"{type(exc).__name__}: {exc}"
        if times is not None:
            times[n] = time.perf_counter() - t0
    return out


def _mean_channels(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.mean(axis=1) if x.ndim == 2 else x


def windowed(
    name: str,
    estimate: np.ndarray,
    reference: np.ndarray,
    sample_rate_hz: int,
    window_s: float = 3.0,
    step_s: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """A metric over the latest ``window_s`` seconds at each step of ``step_s``.

    Returns:
        (end times in s, values); windows where the metric fails are NaN.
        The first window ends at ``window_s``.
    """
    check_metric_names([name])
    m = METRIC_TABLE[name]
    fn, cols = m.load(), m.column_names
    estimate, reference = _mean_channels(estimate), _mean_channels(reference)
    w = int(window_s * sample_rate_hz)
    s = int(step_s * sample_rate_hz)
    n = min(len(estimate), len(reference))
    if w <= 0 or s <= 0:
        raise ConfigError(f"window_s and step_s must be > 0, got {window_s}, {step_s}")
    ends = np.arange(w, n + 1, s)
    vals = np.full(ends.size, np.nan)
    for i, e in enumerate(ends):
        try:
            vals[i] = fn(estimate[e - w : e], reference[e - w : e], sample_rate_hz)[cols[0]]
        except MetricUnavailable:
            pass
    return ends / sample_rate_hz, vals


def estimate_delay(estimate: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """Lag (samples) that best aligns ``estimate`` to ``reference`` (positive: estimate is late)."""
    from scipy.signal import correlate

    n = min(len(estimate), len(reference))
    c = correlate(np.asarray(estimate[:n], float), np.asarray(reference[:n], float), mode="full", method="fft")
    lags = np.arange(-n + 1, n)
    keep = np.abs(lags) <= max_lag
    return int(lags[keep][np.argmax(c[keep])])
