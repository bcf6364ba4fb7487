"""The numeric settings every scored row runs under: torch and the BLAS/OpenMP pools on one thread.

The neural transceivers entropy-code under PMFs that the sender and the receiver must compute to the same bits,
and a different thread count can change the order of floating-point sums (FARGAN's autoregressive synthesis turns
such last-bit differences into audible ones). So every path that scores a row (the local process pool, the
in-process executor, a Dask worker's threads, ``lossbench rerun``) runs inside :func:`single_thread`.

``torch.set_num_threads`` and the BLAS pools are process-wide: a plain save/set/restore would let one Python
thread restore the old count while another is still coding (two tasks of a Dask worker with two threads).
:func:`single_thread` is therefore counted: the first to enter sets one thread, the last to leave restores what
it found.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_depth = 0
_saved_torch = 1
_blas: Any = None  # threadpoolctl's limiter while the count is above zero


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with torch on one intra-op thread and the BLAS/OpenMP pools that threadpoolctl sees on one
    thread (re-entrant and safe across threads). Without torch (a core install), the BLAS pools alone."""
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]

    global _depth, _saved_torch, _blas
    with _lock:
        if _depth == 0:
            if torch is not None:
                _saved_torch = torch.get_num_threads()
                torch.set_num_threads(1)
            from threadpoolctl import threadpool_limits

            _blas = threadpool_limits(limits=1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if torch is not None:
                    torch.set_num_threads(_saved_torch)
                if _blas is not None:
                    _blas.restore_original_limits()
                    _blas = None


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """A trainer's block with torch on ``n`` intra-op threads (None: as it is), the count restored after."""
    import torch

    if not n:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
