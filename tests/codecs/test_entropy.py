"""The range-coding layer: bit-exact round trips and corrupt payloads that are caught."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs.entropy import decode_categorical, decode_gaussian, encode_categorical, encode_gaussian
from lossbench.codecs.fec import PayloadError
from lossbench.errors import ConfigError


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(0, 60), v=st.sampled_from([2, 3, 17, 1024]), seed=st.integers(0, 10_000), peaky=st.booleans())
def test_categorical_round_trip(n, v, seed, peaky):
    rng = np.random.default_rng(seed)
    p = rng.random((n, v)) ** (8 if peaky else 1)
    p[:, 0] = 0.0  # a symbol the model calls impossible must still be codable
    p /= np.maximum(p.sum(1, keepdims=True), 1e-12)
    sym = rng.integers(0, v, n)
    data = encode_categorical(sym, p)
    assert decode_categorical(data, p).tolist() == sym.tolist()


def test_good_models_give_short_payloads():
    rng = np.random.default_rng(0)
    sym = rng.integers(0, 1024, 200)
    sharp = np.full((200, 1024), 1e-6)
    sharp[np.arange(200), sym] = 1.0
    flat = np.full((200, 1024), 1 / 1024)
    assert len(encode_categorical(sym, sharp)) < 0.05 * len(encode_categorical(sym, flat))
    assert len(encode_categorical(sym, flat)) == pytest.approx(200 * 10 / 8, rel=0.05)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n=st.integers(0, 80), seed=st.integers(0, 10_000))
def test_gaussian_round_trip(n, seed):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 5, n)
    sd = rng.uniform(0.01, 10, n)
    sym = np.clip(np.round(rng.normal(mu, sd)), -64, 64).astype(int)
    assert decode_gaussian(encode_gaussian(sym, mu, sd, -64, 64), mu, sd, -64, 64).tolist() == sym.tolist()


def test_corruption_is_detected_not_decoded():
    rng = np.random.default_rng(1)
    p = rng.random((50, 1024))
    p /= p.sum(1, keepdims=True)
    data = encode_categorical(rng.integers(0, 1024, 50), p)
    for i in range(len(data)):  # every single-byte change is caught by the CRC
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(PayloadError):
            decode_categorical(bytes(bad), p)
    with pytest.raises(PayloadError, match="not 4k \\+ 2"):
        decode_categorical(data[:-1], p)
    caught = 0
    for k in range(300):  # garbage of any length: caught, never a hang or a crash
        junk = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        try:
            decode_categorical(junk, p)
        except PayloadError:
            caught += 1
    assert caught >= 298


def test_symbols_out_of_range_are_config_errors():
    with pytest.raises(ConfigError, match="symbols must lie in"):
        encode_categorical(np.array([5]), np.full((1, 4), 0.25))
    with pytest.raises(ConfigError, match="one PMF row per symbol"):
        encode_categorical(np.array([1, 2]), np.full((1, 4), 0.25))
    with pytest.raises(ConfigError, match="symbols must lie in"):
        encode_gaussian(np.array([100]), np.zeros(1), np.ones(1), -10, 10)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=4), v=st.sampled_from([2, 5, 64, 1024]),
       seed=st.integers(0, 10_000), sharp=st.floats(0.0, 12.0))
def test_byte_range_coder_round_trips_runs(sizes, v, seed, sharp):
    from lossbench.codecs.entropy import CategoricalStream

    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        logits = rng.normal(size=(n, v)) * sharp
        p = np.exp(logits - logits.max(1, keepdims=True)) if n else np.zeros((0, v))
        p /= np.maximum(p.sum(1, keepdims=True), 1e-300)
        sym = np.array([rng.choice(v, p=q) for q in p], dtype=np.int64) if n else np.zeros(0, np.int64)
        if n:
            sym[0] = int(np.argmin(p[0]))  # the least likely symbol must still be codable
        runs.append((sym, p))
    data = CategoricalStream.encode(runs)
    dec = CategoricalStream(data)
    for sym, p in runs:
        assert dec.decode(p).tolist() == sym.tolist()


def test_byte_range_coder_is_close_to_the_ideal_length_and_survives_garbage():
    from lossbench.codecs.entropy import CategoricalStream

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(500, 1024)) * 3
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    sym = np.array([rng.choice(1024, p=q) for q in p])
    ideal = -np.log2(p[np.arange(500), sym]).sum()
    data = CategoricalStream.encode([(sym, p)])
    assert ideal <= 8 * len(data) <= ideal + 16 + 0.01 * ideal  # ~2 bytes of termination, 16-bit tables
    assert CategoricalStream.encode([(sym[:0], p[:0])]) == b""
    for junk in (b"", b"\xff" * 7, bytes(rng.integers(0, 256, 40, dtype=np.uint8))):
        out = CategoricalStream(junk).decode(p[:50])  # some symbols, in bounded time, never a crash
        assert out.shape == (50,) and out.min() >= 0 and out.max() < 1024
