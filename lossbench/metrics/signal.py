"""Signal metrics: SI-SNR, SNR, BSS Eval SDR, STOI / ESTOI and SoundSpring's MFCC distance."""

from __future__ import annotations

import math

import numpy as np

from lossbench.metrics.common import MetricUnavailable, _check_pair


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


def _power(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """(power spectrogram, n_fft) with 25 ms Hann windows, 10 ms hop: what every mel scale of a signal shares."""
    from scipy.signal import stft

    n_fft = 1 << int(math.ceil(math.log2(0.025 * sr)))
    hop = int(0.010 * sr)
    _, _, Z = stft(x, fs=sr, window="hann", nperseg=int(0.025 * sr), noverlap=int(0.025 * sr) - hop, nfft=n_fft,
                   boundary=None, padded=False)
    return np.abs(Z) ** 2, n_fft


def _mfcc(x: np.ndarray, sr: int, n: int, power: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """MFCC (n mel bands, n coefficients), frames x n; 25 ms windows, 10 ms hop (``power``: the signal's
    :func:`_power`, computed once for several scales)."""
    from scipy.fft import dct

    spec, n_fft = power if power is not None else _power(x, sr)
    key = (sr, n_fft, n)
    fb = _MEL_CACHE.get(key)
    if fb is None:
        fb = _MEL_CACHE[key] = _mel_filterbank(sr, n_fft, n)
    mel = np.log(fb @ spec + 1e-10)
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
    pr, pe = _power(ref, sr), _power(est, sr)  # one STFT per signal for the four scales
    for n in (8, 16, 32, 64):
        a, b = _mfcc(ref, sr, n, pr), _mfcc(est, sr, n, pe)
        d.append(float(np.mean(np.sum((a - b) ** 2, axis=1))))
    return {"mfcc_dist": float(np.mean(d))}
