"""Codec-agnostic concealment of missing frames in decoded audio.

Every strategy maps ``(audio, missing, frame_samples, sample_rate_hz)`` to a
new array of the same length, where ``missing[i]`` marks samples
``[i * frame_samples, (i + 1) * frame_samples)`` as lost (zeros on input).

- ``zeros``: leave the gap silent (the no-concealment baseline).
- ``repeat``: repeat the last good frame, attenuating each repetition, with
  short cross-fades at both edges.
- ``waveform-substitution``: pitch-synchronous repetition in the spirit of
  ITU-T G.711 Appendix I: the pitch period is found by normalised
  autocorrelation on the history; the last period is repeated with a 1/4
  period overlap-add; after 10 ms more periods of history are cycled; the
  signal is attenuated linearly by 20 % per 10 ms after the first 10 ms and
  is silent after 60 ms; the first good samples after the gap are merged by
  overlap-add.
- ``noise-fill``: noise shaped by the LPC envelope of the last good audio,
  at its energy, fading by 3 dB per frame.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from lossbench.registry import Registry


class Concealment(abc.ABC):
    """A waveform-domain concealment strategy."""

    name: ClassVar[str]

    def conceal(self, audio: np.ndarray, missing: np.ndarray, frame_samples: int, sample_rate_hz: int) -> np.ndarray:
        """Fill the missing frames of ``audio`` (float32[n]); returns a new array."""
        out = np.array(audio, dtype=np.float32)
        missing = np.asarray(missing, dtype=bool)
        if not missing.any():
            return out
        for start, length in _bursts(missing):
            a = start * frame_samples
            b = min((start + length) * frame_samples, out.size)
            if a >= out.size:
                break
            self._fill(out, a, b, frame_samples, sample_rate_hz)
        return out

    @abc.abstractmethod
    def _fill(self, out: np.ndarray, a: int, b: int, frame_samples: int, sr: int) -> None:
        """Fill ``out[a:b]`` in place (history is ``out[:a]``, already concealed)."""


def _bursts(missing: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], missing, [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


CONCEALMENTS: Registry[Concealment] = Registry("concealment", "lossbench.concealments")


def _register(cls: type[Concealment]) -> type[Concealment]:
    CONCEALMENTS.add(cls.name, cls())
    return cls


def _fade_in_tail(out: np.ndarray, b: int, n: int, filler: np.ndarray) -> None:
    """Overlap-add ``filler`` (the concealment continued past the gap) into out[b:b+n]."""
    n = min(n, out.size - b, filler.size)
    if n <= 0:
        return
    w = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
    out[b : b + n] = w * out[b : b + n] + (1 - w) * filler[:n]


@_register
class Zeros(Concealment):
    name = "zeros"

    def _fill(self, out, a, b, frame_samples, sr):
        out[a:b] = 0.0


@_register
class Repeat(Concealment):
    """Repeat the last good frame, -6 dB per repetition, 2.5 ms cross-fades."""

    name = "repeat"
    gain_per_frame = 0.5

    def _fill(self, out, a, b, frame_samples, sr):
        if a == 0:
            out[a:b] = 0.0
            return
        F = frame_samples
        src = out[max(0, a - F) : a].copy()
        if src.size < F:
            src = np.pad(src, (F - src.size, 0))
        n_rep = -(-(b - a + F) // F)
        gains = self.gain_per_frame ** np.arange(1, n_rep + 1)
        fill = (np.tile(src, n_rep) * np.repeat(gains, F)).astype(np.float32)
        xf = min(int(0.0025 * sr), F // 2)
        if xf and a >= F + xf:
            # the repetition restarts at out[a - F]; blend the history's end into
            # what precedes that point, so the junction at ``a`` is continuous
            w = np.linspace(0, 1, xf + 2, dtype=np.float32)[1:-1]
            out[a - xf : a] = (1 - w) * out[a - xf : a] + w * out[a - F - xf : a - F] * self.gain_per_frame
        out[a:b] = fill[: b - a]
        _fade_in_tail(out, b, xf, fill[b - a :])


def _pitch_period(hist: np.ndarray, sr: int) -> int:
    """Pitch period (samples) by normalised autocorrelation over 2.5–15 ms lags."""
    lo, hi = int(0.0025 * sr), int(0.015 * sr)
    win = int(0.02 * sr)
    if hist.size < hi + win:
        return max(lo, min(hi, hist.size // 2)) if hist.size > 2 * lo else lo
    x = hist[-win:].astype(np.float64)
    best, best_lag = -np.inf, lo
    ex = np.dot(x, x) + 1e-12
    for lag in range(lo, hi + 1):
        y = hist[-win - lag : -lag].astype(np.float64)
        c = np.dot(x, y) / np.sqrt(ex * (np.dot(y, y) + 1e-12))
        if c > best:
            best, best_lag = c, lag
    return best_lag


@_register
class WaveformSubstitution(Concealment):
    """Pitch-synchronous waveform substitution after ITU-T G.711 Appendix I."""

    name = "waveform-substitution"

    def _fill(self, out, a, b, frame_samples, sr):
        if a == 0:
            out[a:b] = 0.0
            return
        hist = out[max(0, a - int(0.05 * sr)) : a].astype(np.float32)
        P = _pitch_period(hist, sr)
        if hist.size < 3 * P:
            hist = np.pad(hist, (3 * P - hist.size, 0))
        ola = max(1, P // 4)
        ms10 = int(0.010 * sr)
        total = b - a + ola  # generate past the gap for the merge at the end
        buf = np.empty(total, dtype=np.float32)
        # periods of history used: 1 for the first 10 ms, then 2, then 3
        pos, phase = 0, 0
        while pos < total:
            n_per = 1 if pos < ms10 else (2 if pos < 2 * ms10 else 3)
            cyc = hist[-n_per * P :]
            k = min(total - pos, cyc.size - (phase % cyc.size))
            start = phase % cyc.size
            buf[pos : pos + k] = cyc[start : start + k]
            pos += k
            phase += k
        # attenuation: none for 10 ms, then -20 % per 10 ms, silent after 60 ms
        t = np.arange(total)
        g = np.clip(1.0 - 0.2 * np.maximum(0, t - ms10) / ms10, 0.0, 1.0).astype(np.float32)
        buf *= g
        # start: overlap-add the last 1/4 period of history with the substitution
        n0 = min(ola, a)
        w = np.linspace(0, 1, n0 + 2, dtype=np.float32)[1:-1]
        tail_cont = hist[-P - n0 : -P] if P + n0 <= hist.size else buf[:n0]
        out[a - n0 : a] = (1 - w) * out[a - n0 : a] + w * tail_cont
        out[a:b] = buf[: b - a]
        _fade_in_tail(out, b, ola, buf[b - a :])


def _lpc(x: np.ndarray, order: int) -> np.ndarray:
    """LPC coefficients a (a[0] = 1) by Levinson–Durbin on the autocorrelation."""
    x = x.astype(np.float64) * np.hanning(x.size)
    r = np.correlate(x, x, mode="full")[x.size - 1 : x.size + order]
    r[0] *= 1.0001  # white-noise correction
    a = np.zeros(order + 1)
    a[0] = 1.0
    e = r[0] + 1e-12
    for i in range(1, order + 1):
        k = -(r[i] + np.dot(a[1:i], r[i - 1 : 0 : -1])) / e
        a[1:i] = a[1:i] + k * a[i - 1 : 0 : -1]
        a[i] = k
        e *= 1 - k * k
        if e <= 0:
            break
    return a


@_register
class NoiseFill(Concealment):
    """LPC-shaped noise at the energy of the last good frame, fading 3 dB per frame."""

    name = "noise-fill"
    order = 16
    db_per_frame = 3.0

    def _fill(self, out, a, b, frame_samples, sr):
        from scipy.signal import lfilter

        hist = out[max(0, a - 2 * frame_samples) : a]
        n = b - a
        xf = min(int(0.0025 * sr), frame_samples // 2)
        if hist.size < self.order * 2 or not np.any(hist):
            out[a:b] = 0.0
            return
        lpc = _lpc(hist, self.order)
        # a fixed per-burst seed keeps decoding deterministic
        rng = np.random.default_rng(a)
        noise = rng.standard_normal(n + xf)
        shaped = lfilter([1.0], lpc, noise)
        last = hist[-frame_samples:]
        target = np.sqrt(np.mean(last.astype(np.float64) ** 2))
        shaped *= target / (np.sqrt(np.mean(shaped[:frame_samples] ** 2)) + 1e-12)
        t = np.arange(n + xf) / frame_samples
        shaped *= 10 ** (-self.db_per_frame * t / 20)
        shaped = shaped.astype(np.float32)
        out[a:b] = shaped[:n]
        if xf and a >= xf:
            w = np.linspace(0, 1, xf, dtype=np.float32)
            out[a : a + xf] = (1 - w) * hist[-1] * np.linspace(1, 0, xf) + w * out[a : a + xf]
        _fade_in_tail(out, b, xf, shaped[n:])


#: waveform concealments built from a spec, ``NAME:k=v,...`` (``cmd:run="..."``, ``py:fn=...``): name -> factory;
#: a plug-in adds one through the ``lossbench.concealment_models`` entry-point group
CONCEALMENT_MODELS: Registry[Callable[..., Concealment]] = Registry("concealment model",
                                                                      "lossbench.concealment_models")


def _is_spec(name: str) -> bool:
    return ":" in name or "(" in name


@functools.lru_cache(maxsize=64)
def _built(spec: str) -> Concealment:
    from lossbench.specs import build

    return build(CONCEALMENT_MODELS, spec, "model")


def is_waveform(name: str) -> bool:
    """Whether ``name`` is a waveform concealment: a registered name, or a spec of a concealment model (checked
    by building it: a bad spec raises its ConfigError here)."""
    if _is_spec(name):
        from lossbench.specs import split_spec

        if split_spec(name)[0] not in CONCEALMENT_MODELS:
            return False
        _built(name.strip())
        return True
    return name in CONCEALMENTS


def canonical_waveform(name: str) -> str:
    """The name a waveform concealment is recorded under (a spec as written, stripped)."""
    return name.strip() if _is_spec(name) else CONCEALMENTS.canonical(name)


def get_waveform(name: str) -> Concealment:
    """The waveform concealment ``name`` names (a spec is built once per process)."""
    return _built(name.strip()) if _is_spec(name) else CONCEALMENTS.get(name)
