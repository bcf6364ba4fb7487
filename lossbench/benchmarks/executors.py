"""Where jobs run: a local process pool (default) or a Dask cluster.

Both executors take the same job function and yield results as jobs finish,
keeping only a bounded number of jobs in flight, so memory stays flat as a
sweep grows. Workers run single-threaded numeric libraries, one job each.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def init_worker() -> None:
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@contextlib.contextmanager
def _as_a_worker():
    """The block runs as a pool worker would: the single-thread environment (read by onnxruntime sessions made
    inside it) and torch on one intra-op thread, both restored after."""
    from lossbench.codecs.neural.threads import single_thread

    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        with single_thread():
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    init_worker()
    return fn(*args)


class LocalExecutor:
    """A process pool of ``workers`` processes (default: all cores); 1 runs in-process."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[..., Any], arg_list: Iterable[tuple]) -> Iterator[tuple[tuple, Any]]:
        if self.workers == 1:
            # in-process, but set up as the pool workers are: the rows must not depend on the executor
            # (FARGAN's autoregressive synthesis turns the last-bit differences that another intra-op thread
            # count gives into audible ones)
            with _as_a_worker():
                for a in arg_list:
                    yield a, fn(*a)
            return
        ctx = mp.get_context("spawn")
        os.environ.update(SINGLE_THREAD_ENV)  # inherited by the spawned workers
        with cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker) as pool:
            it = iter(arg_list)
            pending: dict[cf.Future, tuple] = {}
            for a in it:
                pending[pool.submit(fn, *a)] = a
                if len(pending) >= 2 * self.workers:
                    break
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    a = pending.pop(f)
                    yield a, f.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending[pool.submit(fn, *nxt)] = nxt


class DaskExecutor:
    """The same jobs on a Dask distributed scheduler at ``address``."""

    def __init__(self, address: str):
        from distributed import Client

        self.address = address
        self.client = Client(address)

    def map_unordered(self, fn: Callable[..., Any], arg_list: Iterable[tuple]) -> Iterator[tuple[tuple, Any]]:
        from distributed import as_completed

        n_workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))
        it = iter(arg_list)
        futures: dict[Any, tuple] = {}
        for a in it:
            futures[self.client.submit(_call, fn, a, pure=False)] = a
            if len(futures) >= 2 * n_workers:
                break
        ac = as_completed(list(futures))
        for f in ac:
            a = futures.pop(f)
            yield a, f.result()
            f.release()
            nxt = next(it, None)
            if nxt is not None:
                nf = self.client.submit(_call, fn, nxt, pure=False)
                futures[nf] = nxt
                ac.add(nf)

    def close(self) -> None:
        self.client.close()
