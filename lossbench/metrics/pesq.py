"""PESQ (P.862 / P.862.2) in a helper process, so that a crash of its C code cannot kill the caller.

Long inputs are scored in chunks of at most 60 s (the P.862 reference code has crashed on ~150 s wideband
inputs); the helper runs with one OpenMP thread, like every worker.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from lossbench.metrics.common import _SILENCE_RMS, MetricUnavailable, _check_pair, _resample

PESQ_CHUNK_S = 60.0


def _pesq_worker(ref: np.ndarray, est: np.ndarray, sr: int, mode: str) -> float:
    from pesq import pesq as _p

    return float(_p(sr, ref, est, mode))


class _Helper:
    """One helper subprocess (see ``lossbench.metrics._isolated``): a request pipe and a reply pipe, used by one
    caller at a time (:class:`_HelperPool` hands it out)."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "lossbench.metrics._isolated"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> tuple[str, Any]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # both are pipes (Popen above)
        pickle.dump((fn.__module__, fn.__name__, args), stdin)
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError
        reply: tuple[str, Any] = pickle.load(stdout)
        return reply

    def stop(self) -> None:
        p = self.proc
        if p.poll() is None:
            try:
                if p.stdin is not None:
                    p.stdin.close()
                p.wait(timeout=5)
            except Exception:
                p.kill()


class _HelperPool:
    """Idle helpers, each lent to one caller at a time: threads calling PESQ at once each get a helper of their
    own (started on demand, under the lock), so that no two requests ever share a pipe; at most as many helpers
    run as calls were ever in flight at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Helper] = []
        self._all: list[_Helper] = []

    @contextlib.contextmanager
    def lend(self) -> Iterator[_Helper]:
        with self._lock:
            while self._idle and not self._idle[-1].alive:
                self._all.remove(self._idle.pop())
            if self._idle:
                h = self._idle.pop()
            else:
                h = _Helper()
                self._all.append(h)
        ok = False
        try:
            yield h
            ok = True
        finally:
            with self._lock:
                if ok and h.alive:
                    self._idle.append(h)
                else:  # a crash, a timeout or a broken pipe: the helper's pipes may hold half a message
                    if h in self._all:
                        self._all.remove(h)
                    h.stop()

    def running(self) -> int:
        with self._lock:
            return sum(h.alive for h in self._all)

    def stop(self) -> None:
        with self._lock:
            helpers, self._all, self._idle = self._all, [], []
        for h in helpers:
            h.stop()


_POOL = _HelperPool()


@atexit.register
def shutdown_helper() -> None:
    """Stop the helper processes (also called at interpreter exit)."""
    _POOL.stop()


def call_isolated(fn: Callable[..., Any], *args: Any, timeout_s: float = 300.0) -> Any:
    """Run ``fn(*args)`` in a helper process; a crash there becomes MetricUnavailable.

    ``fn`` must be importable by module and name. Exceptions it raises are
    re-raised here. Safe to call from several threads at once: each call has a helper to itself.
    """
    try:
        with _POOL.lend() as h:
            status, value = h.call(fn, args, timeout_s)
    except TimeoutError:
        raise MetricUnavailable("the metric timed out") from None
    except (EOFError, BrokenPipeError, pickle.UnpicklingError, OSError):
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
