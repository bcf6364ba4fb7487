"""Quality metrics of decoded audio against the reference.

Every metric function takes ``(estimate, reference, sample_rate_hz)`` in that
order, float arrays in [-1, 1] of equal length, and returns a dict of named
values (DNSMOS gives four). :func:`compute_metrics` runs a list of metrics
and never raises for a bad clip: a metric that cannot be computed (silence,
too short, a library error, a crash of PESQ's C code) gives NaN and a reason
in ``<name>_error``.

Heavy dependencies are imported when a metric first runs. PESQ runs in a
helper process so that a crash of its C code cannot kill the caller, and long
inputs are scored in chunks of at most 60 s (P.862 reference code has crashed
on ~150 s wideband inputs).
"""

from __future__ import annotations

import atexit
import math
import os
import pickle
import select
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lossbench.errors import ConfigError, choices

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


# --------------------------------------------------------------------------- signal metrics


def si_snr(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """Scale-invariant SNR in dB (zero-mean signals, optimal scaling of the reference)."""
    est, ref = _check_pair(est, ref)
    est = est - est.mean()
    ref = ref - ref.mean()
    s = np.dot(est, ref) / np.dot(ref, ref) * ref
    e = est - s
    return {"si_snr": float(10 * np.log10(max(np.dot(s, s), 1e-20) / max(np.dot(e, e), 1e-20)))}


def snr(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """Plain SNR in dB: 10 log10(|s|^2 / |s - s_hat|^2), no scaling, no filtering (the waveform's fidelity)."""
    est, ref = _check_pair(est, ref)
    e = ref - est
    return {"snr": float(10 * np.log10(np.dot(ref, ref) / max(np.dot(e, e), 1e-20)))}


SDR_FILTER_TAPS = 512  # BSS Eval v3's distortion filter length (bss_eval_sources' default)


def sdr(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """BSS Eval SDR in dB (Vincent et al. 2006, v3, one source): the estimate is projected on the reference
    filtered by any 512-tap FIR filter; SDR = 10 log10(|projection|^2 / |estimate - projection|^2).

    So a time-invariant filtering of the reference (a gain, a delay under 32 ms, an equaliser) is not a
    distortion, unlike in :func:`snr`. The same numbers as ``mir_eval.separation.bss_eval_sources``
    (tested), by a Toeplitz solve instead of a dense one.
    """
    from scipy.linalg import solve_toeplitz
    from scipy.signal import fftconvolve

    est, ref = _check_pair(est, ref)
    L = SDR_FILTER_TAPS
    n = ref.size
    nfft = 1 << int(math.ceil(math.log2(n + L - 1)))
    R = np.fft.rfft(ref, nfft)
    E = np.fft.rfft(est, nfft)
    ac = np.fft.irfft(R * np.conj(R), nfft)[:L]  # sum_t ref[t] ref[t + k]
    xc = np.fft.irfft(E * np.conj(R), nfft)[:L]  # sum_t ref[t] est[t + k]
    try:
        c = solve_toeplitz(ac, xc)
    except np.linalg.LinAlgError:
        c = np.linalg.lstsq(np.array([[ac[abs(i - j)] for j in range(L)] for i in range(L)]), xc, rcond=None)[0]
    proj = fftconvolve(c, ref)[: n + L - 1]
    e = -proj
    e[:n] += est
    return {"sdr": float(10 * np.log10(max(np.dot(proj, proj), 1e-20) / max(np.dot(e, e), 1e-20)))}


def _stoi(est: np.ndarray, ref: np.ndarray, sr: int, extended: bool) -> float:
    from pystoi import stoi as _s

    est, ref = _check_pair(est, ref)
    if ref.size < int(0.4 * sr):
        raise MetricUnavailable("too short for STOI (needs > 0.4 s)")
    v = float(_s(ref, est, sr, extended=extended))
    if not math.isfinite(v):
        raise MetricUnavailable("STOI undefined (no speech frames above the silence threshold)")
    return v


def stoi(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """Short-time objective intelligibility (pystoi; inputs must be time-aligned)."""
    return {"stoi": _stoi(est, ref, sr, False)}


def estoi(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """Extended STOI."""
    return {"estoi": _stoi(est, ref, sr, True)}


_MEL_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _mfcc(x: np.ndarray, sr: int, n: int) -> np.ndarray:
    """MFCC (n mel bands, n coefficients), frames x n; 25 ms windows, 10 ms hop."""
    from scipy.fft import dct
    from scipy.signal import stft

    n_fft = 1 << int(math.ceil(math.log2(0.025 * sr)))
    hop = int(0.010 * sr)
    _, _, Z = stft(x, fs=sr, window="hann", nperseg=int(0.025 * sr), noverlap=int(0.025 * sr) - hop, nfft=n_fft,
                   boundary=None, padded=False)
    power = np.abs(Z) ** 2
    key = (sr, n_fft, n)
    fb = _MEL_CACHE.get(key)
    if fb is None:
        fb = _MEL_CACHE[key] = _mel_filterbank(sr, n_fft, n)
    mel = np.log(fb @ power + 1e-10)
    return dct(mel, type=2, axis=0, norm="ortho").T


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(0), hz2mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
        fb[i] *= 2.0 / max(hi - lo, 1e-9)  # Slaney-style area normalisation
    return fb


def mfcc_distance(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """SoundSpring's eq. 6: mean over F = 4 mel scales (8, 16, 32, 64 bands and
    coefficients) of the per-frame squared L2 distance of the MFCCs, averaged
    over frames. Lower is better."""
    est, ref = _check_pair(est, ref)
    if ref.size < int(0.05 * sr):
        raise MetricUnavailable("too short for MFCC distance")
    d = []
    for n in (8, 16, 32, 64):
        a, b = _mfcc(ref, sr, n), _mfcc(est, sr, n)
        d.append(float(np.mean(np.sum((a - b) ** 2, axis=1))))
    return {"mfcc_dist": float(np.mean(d))}


# --------------------------------------------------------------------------- PESQ (isolated)


PESQ_CHUNK_S = 60.0


def _pesq_worker(ref: np.ndarray, est: np.ndarray, sr: int, mode: str) -> float:
    from pesq import pesq as _p

    return float(_p(sr, ref, est, mode))


class _Helper:
    """The helper subprocess (see ``lossbench.metrics._isolated``)."""

    proc: subprocess.Popen | None = None

    @classmethod
    def get(cls) -> subprocess.Popen:
        if cls.proc is None or cls.proc.poll() is not None:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            cls.proc = subprocess.Popen([sys.executable, "-m", "lossbench.metrics._isolated"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return cls.proc

    @classmethod
    def stop(cls) -> None:
        p, cls.proc = cls.proc, None
        if p is not None and p.poll() is None:
            try:
                p.stdin.close()
                p.wait(timeout=5)
            except Exception:
                p.kill()


@atexit.register
def shutdown_helper() -> None:
    """Stop the helper process (also called at interpreter exit)."""
    _Helper.stop()


def call_isolated(fn: Callable[..., Any], *args: Any, timeout_s: float = 300.0) -> Any:
    """Run ``fn(*args)`` in the helper process; a crash there becomes MetricUnavailable.

    ``fn`` must be importable by module and name. Exceptions it raises are
    re-raised here.
    """
    p = _Helper.get()
    try:
        pickle.dump((fn.__module__, fn.__name__, args), p.stdin)
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], timeout_s)
        if not ready:
            _Helper.stop()
            raise MetricUnavailable("the metric timed out")
        status, value = pickle.load(p.stdout)
    except (EOFError, BrokenPipeError, pickle.UnpicklingError, OSError):
        _Helper.stop()
        raise MetricUnavailable("the metric's native code crashed on this input") from None
    if status == "err":
        raise value
    return value


def _pesq_call(ref: np.ndarray, est: np.ndarray, sr: int, mode: str) -> float:
    try:
        return call_isolated(_pesq_worker, ref, est, sr, mode)
    except MetricUnavailable:
        raise
    except Exception as exc:  # pesq raises NoUtterancesError, BufferTooShortError, ValueError...
        raise MetricUnavailable(f"PESQ failed: {type(exc).__name__}: {exc}".strip()) from None


def _pesq(est: np.ndarray, ref: np.ndarray, sr: int, mode: str) -> float:
    est, ref = _check_pair(est, ref)
    target = 16000 if mode == "wb" else 8000
    if sr != target:
        est, ref = _resample(est, sr, target), _resample(ref, sr, target)
    if np.sqrt(np.mean(est**2)) < _SILENCE_RMS:
        raise MetricUnavailable("silent estimate")
    if ref.size < int(0.25 * target):
        raise MetricUnavailable("too short for PESQ (needs >= 0.25 s)")
    chunk = int(PESQ_CHUNK_S * target)
    if ref.size <= chunk * 1.5:
        return _pesq_call(ref.astype(np.float32), est.astype(np.float32), target, mode)
    # long input: length-weighted mean over chunks of about 60 s
    bounds = np.linspace(0, ref.size, int(math.ceil(ref.size / chunk)) + 1).astype(int)
    vals, weights = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        try:
            vals.append(_pesq_call(ref[a:b].astype(np.float32), est[a:b].astype(np.float32), target, mode))
            weights.append(b - a)
        except MetricUnavailable:
            continue
    if not vals:
        raise MetricUnavailable("PESQ failed on every chunk")
    return float(np.average(vals, weights=weights))


def pesq_wb(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """PESQ P.862.2 wideband MOS-LQO (input resampled to 16 kHz)."""
    return {"pesq_wb": _pesq(est, ref, sr, "wb")}


def pesq_nb(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """PESQ P.862 narrowband MOS-LQO (input resampled to 8 kHz)."""
    return {"pesq_nb": _pesq(est, ref, sr, "nb")}


# --------------------------------------------------------------------------- learned MOS (speechmos)


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


#: name -> (function, output columns, higher_is_better)
METRICS: dict[str, tuple[MetricFn, tuple[str, ...], bool]] = {
    "pesq_wb": (pesq_wb, ("pesq_wb",), True),
    "pesq_nb": (pesq_nb, ("pesq_nb",), True),
    "stoi": (stoi, ("stoi",), True),
    "estoi": (estoi, ("estoi",), True),
    "si_snr": (si_snr, ("si_snr",), True),
    "sdr": (sdr, ("sdr",), True),
    "snr": (snr, ("snr",), True),
    "mfcc_dist": (mfcc_distance, ("mfcc_dist",), False),
    "plcmos": (plcmos, ("plcmos",), True),
    "dnsmos": (dnsmos, ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"), True),
}

DEFAULT_METRICS = ("pesq_wb", "stoi", "estoi", "si_snr", "sdr", "mfcc_dist", "plcmos", "dnsmos")


def check_metric_names(names: Sequence[str]) -> list[str]:
    out = []
    for n in names:
        if n not in METRICS:
            raise ConfigError(f"unknown metric {n!r}; valid metrics: {choices(METRICS)}")
        out.append(n)
    return out


def metric_columns(names: Sequence[str]) -> list[str]:
    return [c for n in names for c in METRICS[n][1]]


def compute_metrics(
    estimate: np.ndarray, reference: np.ndarray, sample_rate_hz: int, names: Sequence[str] = DEFAULT_METRICS
) -> dict[str, Any]:
    """Run metrics; returns ``{column: value}`` plus ``{name + "_error": reason}`` for failures."""
    out: dict[str, Any] = {}
    for n in check_metric_names(names):
        fn, cols, _ = METRICS[n]
        try:
            out.update(fn(estimate, reference, sample_rate_hz))
        except MetricUnavailable as exc:
            for c in cols:
                out[c] = float("nan")
            out[f"{n}_error"] = str(exc)
        except Exception as exc:  # a library bug must not stop a sweep
            for c in cols:
                out[c] = float("nan")
            out[f"{n}_error"] = f"{type(exc).__name__}: {exc}"
    return out


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
    fn, cols, _ = METRICS[name]
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
