"""Fuzzing the production codecs' decoder wrappers: any payload bytes (empty, truncated, random, a valid frame
with flipped bits) in any position decode without a crash, an out-of-bounds read (the wrappers check sizes and
headers before a library sees the bytes; ASan would be the stronger check, not available here) or a value
outside [-1, 1], and what a wrapper refuses is counted missing and concealed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs import make_codec
from lossbench.corpus import default_corpus

SPECS = {
    "lc3:bitrate=32000": "lc3-plc", "amrnb:kbps=12.2": "amrnb-bfi", "amrnb:kbps=4.75,dtx=1": "amrnb-bfi",
    "speex:mode=wb": "speex-plc", "speex:mode=nb,vbr=1": "speex-plc", "g711": "g711-plc", "g722": "g722-plc",
    "gsm": "gsm-plc", "codec2:mode=3200": "codec2-repeat", "codec2:mode=700C": "codec2-repeat",
}
_FRAMES: dict[str, list] = {}


def _frames(spec: str) -> list[bytes]:
    if spec not in _FRAMES:
        c = make_codec(spec)
        x = c.padded_input(default_corpus()[0].load(c.sample_rate_hz))[: 20 * c.frame_samples]
        _FRAMES[spec] = c.encode_frames(x)[0]
    return _FRAMES[spec]


damage = st.one_of(
    st.just(("missing", b"")), st.just(("empty", b"")),
    st.tuples(st.just("random"), st.binary(min_size=1, max_size=80)),
    st.tuples(st.just("truncate"), st.integers(0, 40).map(lambda n: bytes([n]))),
    st.tuples(st.just("flip"), st.binary(min_size=2, max_size=2)),
)


@pytest.mark.parametrize("spec", list(SPECS))
@settings(max_examples=40, deadline=None, derandomize=True)
@given(edits=st.dictionaries(st.integers(0, 19), damage, max_size=8))
def test_any_payload_decodes_safely(spec, edits):
    c = make_codec(spec)
    frames: list = list(_frames(spec))
    for i, (kind, arg) in edits.items():
        fr = frames[i] or b"\x00"
        if kind == "missing":
            frames[i] = None
        elif kind == "empty":
            frames[i] = b""
        elif kind == "random":
            frames[i] = arg
        elif kind == "truncate":
            frames[i] = fr[: arg[0] % max(1, len(fr))]
        else:  # flip one bit
            pos = (arg[0] * 256 + arg[1]) % (8 * len(fr))
            b = bytearray(fr)
            b[pos // 8] ^= 1 << (pos % 8)
            frames[i] = bytes(b)
    for conc in (SPECS[spec], None):
        raw, bad, _ = c.decode_frames(frames, conc)
        assert raw.shape == (len(frames) * c.frame_samples,) and bad.shape == (len(frames),)
        assert np.isfinite(raw).all() and np.abs(raw).max() <= 1.0
        assert all(bad[i] for i, f in enumerate(frames) if f is None)
