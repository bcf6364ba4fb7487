import numpy as np
import pytest

from lossbench.core import LossTrace
from lossbench.netsim.library import LIBRARY, generate_set
from lossbench.traces.library import library_files, library_sets
from lossbench.traces.formats import read_trace
from lossbench.traces.stats import run_lengths, trace_stats


def test_stats_of_a_known_pattern():
    s = trace_stats(LossTrace([0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1]))
    assert s.packets == 11 and s.lost == 6
    assert s.bursts == {1: 1, 2: 1, 3: 1} and s.longest_burst == 3 and s.mean_burst == pytest.approx(2.0)
    assert s.gaps == {1: 2, 3: 1} and s.mean_gap == pytest.approx(5 / 3)
    # pairs (t-1 lost): 1->1, 1->0, 1->0, 1->1, 1->1 => 3/5
    assert s.p_loss_given_loss == pytest.approx(3 / 5)


def test_cyclic_stats_join_the_wrapped_burst():
    s = trace_stats(np.array([1, 0, 0, 1, 1], dtype=bool), cyclic=True)
    assert s.bursts == {3: 1} and s.gaps == {2: 1}


def test_edge_cases():
    s = trace_stats(np.zeros(10, bool))
    assert s.loss_rate == 0 and s.mean_burst == 0 and np.isnan(s.p_loss_given_loss) and s.longest_burst == 0
    s = trace_stats(np.ones(4, bool))
    assert s.loss_rate == 1 and s.bursts == {4: 1} and s.p_loss_given_loss == 1
    v, n = run_lengths(np.array([3, 3, 1, 1, 1, 2]))
    assert v.tolist() == [3, 1, 2] and n.tolist() == [2, 3, 1]


def test_bundled_library_is_complete_and_reproducible():
    assert set(library_sets()) == {ts.name for ts in LIBRARY}
    for ts in LIBRARY:
        files = library_files(ts.name)
        assert len(files) == ts.count
        first = read_trace(files[0])
        assert first.meta["spec"] == ts.spec and len(first) == ts.packets
        regenerated = generate_set(ts, seed=0)[0]
        assert np.array_equal(first.lost, regenerated.lost), f"{ts.name} differs from its recorded generator"
    wlan = [read_trace(f) for f in library_files("wlan")]
    rate = np.mean([t.loss_rate for t in wlan])
    assert rate == pytest.approx(0.138, abs=0.01)
