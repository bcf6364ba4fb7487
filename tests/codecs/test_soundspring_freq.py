"""SoundSpring's context-free entropy model (``entropy=freq``): bit-exact round trips on every packing, fine
tokens that decode without their coarse condition tokens, skewed frequencies that code below 10 bits, and the
shipped table's errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs.soundspring.capture import capture_plan, decode_capture, encode_capture
from lossbench.codecs.soundspring.coding import Layout, SlicePacket, Slicing, decode_tokens, encode_tokens, fine_bits
from lossbench.codecs.soundspring.frequencies import TokenFrequencies, count_tokens
from lossbench.errors import ConfigError

V = 64


def _skewed(n, seed):
    """Tokens (n, 12) drawn from skewed per-layer distributions, and a table counted on other draws of them."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(V, 0.3), 12)
    draw = lambda m: np.stack([rng.choice(V, m, p=p[k]) for k in range(12)], 1)  # noqa: E731
    return draw(n), TokenFrequencies(count_tokens(draw(4000), V))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(N=st.integers(1, 30), B=st.integers(1, 6), S=st.integers(1, 3), pack=st.sampled_from(["slice", "frame",
                                                                                             "capture"]),
       seed=st.integers(0, 999), escape=st.booleans())
def test_full_reception_is_bit_exact(N, B, S, pack, seed, escape):
    S = 1 if pack == "capture" else min(S, B)
    layout = Layout(Slicing(B, S, (3, 6, 12)), 0, 1, pack, "next", escape)
    toks, model = _skewed(N, seed)
    Ks = np.random.default_rng(seed).integers(3, 13, len(layout.blocks(N))).tolist()
    if pack == "capture":
        plan = capture_plan(layout, N)
        packets = encode_capture(model, toks, Ks, layout)
        got = [SlicePacket(p.block, p.column, p.groups, q.payload, p.frames, p.send_frame, fine_of=p.fine_of)
               for p, q in zip(plan, packets)]
        rec = decode_capture(model, got, plan, N, layout, 12)
    else:
        plan = encode_tokens(model, toks, Ks, layout)
        rec = decode_tokens(model, list(plan), plan, N, layout, 12)
    assert rec.Ks == Ks and rec.corrupt == 0
    for (b0, T), K in zip(layout.blocks(N), Ks):
        assert np.array_equal(rec.tokens[b0 : b0 + T, :K], toks[b0 : b0 + T, :K])


def test_fine_tokens_decode_without_their_condition_tokens():
    """A lost look-ahead frame takes the MLM-coded fine tokens of its block with it (their PMFs need its coarse
    tokens); coded under the frequencies they still decode, and equal the sender's."""
    N = 12
    toks, model = _skewed(N, 1)
    layout = Layout(Slicing(3, 1, (3, 6, 12)), 0, 2, "capture", "none", escape=False)
    plan = capture_plan(layout, N)
    packets = encode_capture(model, toks, [12] * 4, layout)
    got = [None if i == 3 else SlicePacket(p.block, p.column, p.groups, q.payload, p.frames, p.send_frame,
                                           fine_of=p.fine_of) for i, (p, q) in enumerate(zip(plan, packets))]
    rec = decode_capture(model, got, plan, N, layout, 12)
    assert (rec.state[3, :3] == "L").all() and (rec.state[0:3, 3:12] == "R").all()
    assert np.array_equal(rec.tokens[0:3, :12], toks[0:3, :12])
    # the slice packings likewise: block 1's window coarse tokens lost, its fine slices still decode
    layout = Layout(Slicing(3, 3, (3, 6, 12)), 0, 0, "slice", "none", escape=False)
    plan = encode_tokens(model, toks, [12] * 4, layout)
    lost = {i for i, p in enumerate(plan) if p.block == 1 and p.groups == (0,) and p.column == 0}
    got = [None if i in lost else p for i, p in enumerate(plan)]
    rec = decode_tokens(model, got, plan, N, layout, 12)
    assert (rec.state[3, :3] == "L").all() and (rec.state[4:6, 3:12] == "R").all()


def test_skewed_frequencies_code_below_raw_and_uniform_ones_do_not():
    toks, model = _skewed(300, 2)
    layout = Layout(Slicing(3, 1, (3, 6, 12)), 0, 0, "capture")
    bits = fine_bits(model, toks, 12, layout)
    entropy = [-(model.pmf[k] * np.log2(model.pmf[k])).sum() for k in range(3, 12)]
    assert (bits < np.log2(V) - 0.5).all()
    assert np.allclose(bits, entropy, atol=0.35)  # close to the table's own entropy (draws, not the table)
    flat = TokenFrequencies(np.full((12, V), 100))
    assert np.allclose(fine_bits(flat, toks, 12, layout), np.log2(V))


def test_bad_tables_and_options_name_the_value():
    with pytest.raises(ConfigError, match="non-negative"):
        TokenFrequencies(np.array([[-1, 2]]))
    from lossbench.codecs import make_codec

    with pytest.raises(ConfigError, match="entropy must be one of mlm, freq; got 'zip'"):
        make_codec("soundspring:entropy=zip")
    with pytest.raises(ConfigError, match="ships no 'token_freq' weights"):
        make_codec("soundspring:entropy=freq,backbone=waveform")


@pytest.mark.slow
def test_the_shipped_table_codes_real_speech_below_the_mlm():
    """On real speech the shipped frequency table codes the fine tokens in fewer bits than the MLM (the card's
    measurement), and the codec round-trips them exactly."""
    from lossbench.codecs import make_codec
    from lossbench.core import Clip
    from lossbench.corpus import default_corpus

    clip = default_corpus()[0].load(16000)
    clip = Clip("c", clip.samples[: 4 * 16000], 16000)
    rates = {}
    for ent in ("mlm", "freq"):
        cod = make_codec(f"soundspring:layers=24,slices=1,pack=capture,fec=none,entropy={ent}")
        s = cod.encode(clip)
        rates[ent] = s.meta["fine_coded_kbps"]
        rec = cod.receive_tokens(s, None)
        assert np.array_equal(rec.tokens[:, :24], cod.tokens(cod.padded_input(clip))[:, :24])
    assert rates["freq"] < rates["mlm"]
    assert cod.config()["entropy"] == "freq" and "token_freq" in cod.model_files()
