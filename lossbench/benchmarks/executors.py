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

#: the environment the local pool's processes are spawned with, so that the BLAS and OpenMP pools that libraries
#: start at import already have one thread (set in the parent only while it spawns them, then restored)
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def scoped_env(values: dict[str, str]) -> Iterator[None]:
    """The block runs with ``values`` in ``os.environ``; what was there before comes back after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: imported once by the fork server, so that each worker forked from it starts with them loaded
PRELOAD = ["numpy", "scipy.signal", "pandas", "torch", "onnxruntime", "lossbench.benchmarks.run", "lossbench.metrics",
           "lossbench.codecs", "lossbench.netsim"]


def _context() -> Any:
    """Workers are forked from a fork server (started once per process, with the single-thread environment, and
    holding only imported modules: no threads, no helper processes, no open models), so a worker starts with
    the heavy imports done instead of importing them again as a spawned one would; where the platform has no
    fork server, spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class LocalExecutor:
    """A process pool of ``workers`` processes (default: all cores); 1 runs in-process."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[..., Any], arg_list: Iterable[tuple]) -> Iterator[tuple[tuple, Any]]:
        if self.workers == 1:
            # in-process: the job function holds the same numeric settings as in a pool worker (run_job runs
            # inside single_thread()), so the rows do not depend on the executor
            for a in arg_list:
                yield a, fn(*a)
            return
        with scoped_env(SINGLE_THREAD_ENV), cf.ProcessPoolExecutor(self.workers, mp_context=_context()) as pool:
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
            futures[self.client.submit(fn, *a, pure=False)] = a
            if len(futures) >= 2 * n_workers:
                break
        ac = as_completed(list(futures))
        for f in ac:
            a = futures.pop(f)
            yield a, f.result()
            f.release()
            nxt = next(it, None)
            if nxt is not None:
                nf = self.client.submit(fn, *nxt, pure=False)
                futures[nf] = nxt
                ac.add(nf)

    def close(self) -> None:
        self.client.close()
