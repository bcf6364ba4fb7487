"""PESQ (P.862 / P.862.2) in a helper process, so that a crash of its C code cannot kill the caller.

Long inputs are scored in chunks of at most 60 s (the P.862 reference code has crashed on ~150 s wideband
inputs); the helper runs with one OpenMP thread, like every worker.
"""

from __future__ import annotations

import atexit
import math
import os
import pickle
import select
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from lossbench.metrics.common import _SILENCE_RMS, MetricUnavailable, _check_pair, _resample

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
