"""Every metric of the metric table, called from 4 threads at once on 4 different clips with every cache cold,
gives each clip the score it gets alone (to 1e-12: see REL; a Dask worker with several threads scores rows this way)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.metrics import METRIC_TABLE, compute_metrics

pytestmark = pytest.mark.slow


def _clips() -> list[tuple[np.ndarray, np.ndarray]]:
    """4 (degraded, reference) pairs of different clips and degradations, 3 s each."""
    out = []
    for i, ref in enumerate(c.load(16000).samples[:48000].astype(np.float64) for c in default_corpus()[:4]):
        rng = np.random.default_rng(i)
        est = ref + (0.02 + 0.08 * i) * rng.standard_normal(ref.size) * np.sqrt(np.mean(ref**2))
        est[8000 * (i + 1) : 8000 * (i + 1) + 1600] = 0.0  # a gap of 100 ms at a different place in each
        out.append((est, ref))
    return out


def _cold() -> None:
    """Every lazily built model, helper process and cache of the metrics back to its state at import."""
    from lossbench.metrics import asr, learned, pesq, visqol

    pesq.shutdown_helper()
    for loader in (learned._fast_plcmos, learned._dnsmos_model, learned._distillmos_model, visqol._api, asr._model):
        loader.cache_clear()
    asr._CACHE.clear()


#: how close a score from a thread must be to the same clip's score alone. Not bit for bit: NumPy's SIMD sums
#: depend on where an array starts in memory (ESTOI of one pair moved by 2e-16 when its input was copied to an
#: address 8 bytes further), and threads allocate from arenas of their own. Another clip's score differs by
#: 0.01-3 here, so a value from another task cannot pass.
REL = 1e-12


def _same(a: dict, b: dict, cols: list[str]) -> list[str]:
    bad = []
    for c in cols:
        x, y = a[c], b[c]
        if isinstance(x, float) and np.isnan(x):
            bad += [] if (isinstance(y, float) and np.isnan(y)) else [c]
        elif isinstance(x, float) and isinstance(y, float):
            bad += [] if abs(x - y) <= REL * max(abs(x), 1.0) else [c]
        elif x != y:
            bad.append(c)
    return bad


def test_four_threads_score_every_metric_as_alone():
    """Under the harness's numeric settings (``single_thread()``: BLAS on one thread, whose sums otherwise depend
    on what else runs), bit for bit."""
    from lossbench.codecs.neural.threads import single_thread

    with single_thread():
        _four_threads()


def _four_threads() -> None:
    names = list(METRIC_TABLE)
    cols = [c for n in names for c in METRIC_TABLE[n].column_names]
    pairs = _clips()
    _cold()
    alone = [compute_metrics(e, r, 16000, names) for e, r in pairs]
    for a in alone:  # the metrics score these clips (a NaN everywhere would pass the comparison below)
        assert not [k for k in a if k.endswith("_error")], a
    assert len({round(a["pesq_wb"], 6) for a in alone}) == 4  # the clips' scores differ: a swap would show
    _cold()
    start = threading.Barrier(4)

    def score(i: int) -> dict:
        start.wait()  # all four begin together, on cold caches
        return compute_metrics(pairs[i][0], pairs[i][1], 16000, names)

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(score, [0, 1, 2, 3, 3, 2, 1, 0]))
    for i, t in zip([0, 1, 2, 3, 3, 2, 1, 0], together):
        assert not [k for k in t if k.endswith("_error")], t
        assert _same(alone[i], t, cols) == [], (i, {c: (alone[i][c], t[c]) for c in _same(alone[i], t, cols)})


def test_pesq_from_threads_uses_a_helper_each_and_no_more():
    from lossbench.metrics import pesq

    pairs = _clips()
    pesq.shutdown_helper()
    alone = [pesq.pesq_wb(e, r, 16000)["pesq_wb"] for e, r in pairs]
    pesq.shutdown_helper()
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: pesq.pesq_wb(p[0], p[1], 16000)["pesq_wb"], pairs * 3))
    assert together == alone * 3
    assert 1 <= pesq._POOL.running() <= 4
