"""A sweep on a real ``dask scheduler`` and one ``dask worker --nthreads 2`` (the command-line programs, as a user
starts them) scores every row as local processes do: PESQ-WB, PLCMOS, ViSQOL and DistillMOS on Opus and AMR-WB,
the two threads of the worker interleaving tasks of different clips, codecs and losses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep

pytestmark = pytest.mark.slow

METRICS = ["pesq_wb", "plcmos", "visqol", "distillmos"]
SPEC = {
    "name": "dask-threads",
    "clips": 3,
    "seeds": 2,
    "examples": 0,
    "metrics": METRICS,
    "concealments": ["native"],
    "codec": [{"spec": "opus:bitrate=16000", "concealments": ["opus-plc"]},
              {"spec": "amrwb", "concealments": ["amrwb-bfi"]}],
    "channel": [{"model": "bernoulli", "loss": [0.1, 0.2]}],
}
#: NumPy's SIMD sums depend on where an array starts in memory, and a worker's threads allocate from arenas of
#: their own: a score may move in its last bits (tests/metrics/test_threads.py). Another row's score differs by
#: 0.01 or more here, so a value from another task cannot pass.
REL = 1e-12


def _dask(*args: str, log: Path) -> subprocess.Popen:
    dask = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(dask), *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"})


@pytest.fixture
def scheduler_and_threaded_worker(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--scheduler-file", str(sched_file), "--no-dashboard", "--port", "0",
                   log=tmp_path / "scheduler.log")]
    try:
        for _ in range(600):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        procs.append(_dask("worker", "--scheduler-file", str(sched_file), "--nthreads", "2", "--nworkers", "1",
                           "--no-dashboard", log=tmp_path / "worker.log"))
        import json

        from distributed import Client

        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout=60) as c:
            c.wait_for_workers(1, timeout=120)
            assert [w["nthreads"] for w in c.scheduler_info()["workers"].values()] == [2]
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_two_thread_dask_worker_scores_every_row_as_local_processes(tmp_path, scheduler_and_threaded_worker):
    local = spec_from_dict({**SPEC, "workers": 2})
    dask = spec_from_dict({**SPEC, "scheduler": scheduler_and_threaded_worker})
    a_res = run_sweep(local, tmp_path / "local", progress=False)
    b_res = run_sweep(dask, tmp_path / "dask", progress=False)
    assert a_res.errors == 0 and b_res.errors == 0 and a_res.tasks == b_res.tasks == 24
    a = pd.read_parquet(tmp_path / "local" / "results.parquet").set_index("task").sort_index()
    b = pd.read_parquet(tmp_path / "dask" / "results.parquet").set_index("task").sort_index()
    assert list(a.index) == list(b.index)
    for m in METRICS:
        assert a[m].notna().all() and b[m].notna().all(), m  # NaN on both sides would hide a failure
        assert a[m].nunique() > 12, m  # the rows' scores differ, so a swapped value would show
        np.testing.assert_allclose(b[m].to_numpy(), a[m].to_numpy(), rtol=REL, atol=0, err_msg=m)
    same = ["network_loss", "frames_concealed", "bitrate_kbps"]
    pd.testing.assert_frame_equal(a[same], b[same])
