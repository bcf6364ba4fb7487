"""SoundSpring's slice coding: bit-exact round trips over random configurations, and R/L/I labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs.soundspring.coding import Slicing, decode_gos, encode_gos, slice_keys
from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig

CFG = MLMConfig(num_quantizers=12, vocab=64, n_coarse=3, dim=32, depth=1, heads=2, ff=64, max_frames=64)


@pytest.fixture(scope="module")
def model():
    import torch

    torch.manual_seed(0)
    return MaskedTokenLM(CFG).eval()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(T=st.integers(1, 30), S=st.integers(1, 6), K=st.integers(1, 12), key=st.integers(0, 5), seed=st.integers(0, 999),
       bounds=st.sampled_from([(3, 6, 12), (3, 12), (3, 4, 8, 12)]))
def test_full_reception_is_bit_exact(model, T, S, K, key, seed, bounds):
    S = min(S, T)
    sl = Slicing(frames=T, slices=S, bounds=bounds, key=min(key, S - 1))
    toks = np.random.default_rng(seed).integers(0, CFG.vocab, (T, K))
    pay = encode_gos(model, toks, sl)
    assert set(pay) == set(slice_keys(sl, K, T))
    got, state = decode_gos(model, pay, sl, T, K)
    assert np.array_equal(got, toks) and (state == "R").all()


def test_losses_are_labelled(model):
    sl = Slicing(frames=12, slices=3, bounds=(3, 6, 12), key=0)
    toks = np.random.default_rng(1).integers(0, CFG.vocab, (12, 12))
    pay = encode_gos(model, toks, sl)
    # a non-key fine slice lost: its tokens L, the layers above them I, the rest exact
    lost = dict(pay)
    lost[(1, 1)] = None
    got, state = decode_gos(model, lost, sl, 12, 12)
    f1 = sl.frames_of(1)
    assert (state[np.ix_(f1, [3, 4, 5])] == "L").all() and (state[np.ix_(f1, range(6, 12))] == "I").all()
    ok = state == "R"
    assert np.array_equal(got[ok], toks[ok]) and ok.sum() == 12 * 12 - f1.size * 9
    # a key slice lost: the non-key slices of that group and above are invalid
    lost = dict(pay)
    lost[(0, 1)] = None
    _, state = decode_gos(model, lost, sl, 12, 12)
    assert (state[np.ix_(sl.frames_of(2), range(3, 12))] == "I").all()
    # a coarse slice lost: all fine tokens of the GoS are invalid
    lost = dict(pay)
    lost[(2, 0)] = None
    _, state = decode_gos(model, lost, sl, 12, 12)
    assert (state[:, 3:] == "I").all() and (state[np.ix_(sl.frames_of(2), range(3))] == "L").all()
    # garbage in a slice is caught (CRC) and counted as lost
    bad = dict(pay)
    bad[(1, 2)] = b"\x00" * len(pay[(1, 2)])
    _, state = decode_gos(model, bad, sl, 12, 12)
    assert (state[np.ix_(sl.frames_of(1), range(6, 12))] == "L").all()
