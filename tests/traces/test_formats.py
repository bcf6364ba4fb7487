"""Trace files: round trips, detection by content, and errors that name the position."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.core import LossTrace
from lossbench.errors import ConfigError, TraceFormatError
from lossbench.traces.formats import FORMATS, detect_format, encode_trace, read_trace, write_trace

EXT = {"text": ".txt", "g192": ".g192", "g191": ".g191", "csv": ".csv", "npy": ".npy"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(tmp_path, fmt):
    tr = LossTrace(np.random.default_rng(0).random(777) < 0.2)
    p = write_trace(tr, tmp_path / f"t{EXT[fmt]}")
    back = read_trace(p)
    assert back.meta["format"] == fmt
    assert np.array_equal(back.lost, tr.lost) and back.slot_s == 0.02


@settings(max_examples=40, deadline=None, derandomize=True)
@given(bits=st.lists(st.booleans(), min_size=1, max_size=300), fmt=st.sampled_from(FORMATS))
def test_round_trip_property(tmp_path_factory, bits, fmt):
    d = tmp_path_factory.mktemp("rt")
    tr = LossTrace(np.array(bits))
    back = read_trace(write_trace(tr, d / f"x{EXT[fmt]}"))
    assert back.equals(tr)


def test_detection_ignores_extension(tmp_path):
    tr = LossTrace([0, 1, 1, 0])
    for fmt in FORMATS:
        p = tmp_path / f"{fmt}.dat"
        p.write_bytes(encode_trace(tr, fmt))
        assert detect_format(p.read_bytes()) == fmt
        assert np.array_equal(read_trace(p).lost, tr.lost)


def test_g192_values_and_big_endian(tmp_path):
    tr = LossTrace([0, 1])
    assert encode_trace(tr, "g192") == bytes([0x21, 0x6B, 0x20, 0x6B])
    p = tmp_path / "be.g192"
    p.write_bytes(bytes([0x6B, 0x21, 0x6B, 0x20, 0x6B, 0x20]))
    assert read_trace(p).lost.tolist() == [False, True, True]
    assert encode_trace(tr, "g191") == b"\x21\x20"


def test_csv_time_column_gives_slot(tmp_path):
    tr = LossTrace([0, 1, 0, 1], slot_s=0.04)
    p = write_trace(tr, tmp_path / "t.csv", time_column=True)
    back = read_trace(p)
    assert back.slot_s == pytest.approx(0.04) and back.lost.tolist() == [False, True, False, True]


def test_sidecar_carries_slot_and_model(tmp_path):
    tr = LossTrace([0, 1], slot_s=0.01, meta={"model": "bernoulli", "p": 0.5, "seed": 3})
    p = write_trace(tr, tmp_path / "t.g192", sidecar=True)
    side = json.loads((tmp_path / "t.g192.json").read_text())
    assert side["slot_s"] == 0.01 and side["model"] == "bernoulli" and side["seed"] == 3
    back = read_trace(p)
    assert back.slot_s == 0.01 and back.meta["p"] == 0.5


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"0\n1\n0\nx\n", "line 4: expected 0 or 1, got 'x'"),
        (b"# comment\n0\n\n2\n", "line 4: expected 0 or 1, got '2'"),
        (b"# only a comment\n", "no 0/1 lines found"),
        (b"\x21\x6b\x20\x6b\x21", "byte offset 4: odd file length (5 bytes)"),
        (b"\x21\x6b\x20\x6b\x22\x6b", "byte offset 4: unknown G.192 word 0x6B22"),
        (b"\x21\x20\x21\x30", "byte offset 3: unknown G.191 byte 0x30"),
        (b"a,b\n1,2\n", "line 1: expected a header 'seq,lost' or 'time_s,lost'"),
        (b"seq,lost\n0,0\n1,1\n3,0\n", "line 4: seq 3 does not follow 1"),
        (b"seq,lost\n0,0\n1,7\n", "line 3: 'lost' must be 0 or 1, got '7'"),
        (b"time_s,lost\n0,0\n0.02,1\n0.05,0\n", "line 4: time_s must advance by a constant slot"),
        (b"seq,lost\n", "has a header but no rows"),
    ],
)
def test_malformed_files_name_file_and_position(tmp_path, content, message):
    p = tmp_path / "bad.trace"
    p.write_bytes(content)
    with pytest.raises(TraceFormatError) as e:
        read_trace(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_npy_errors(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros((2, 2)))
    with pytest.raises(TraceFormatError, match="1-D"):
        read_trace(p)
    np.save(p, np.array([0, 1, 3]))
    with pytest.raises(TraceFormatError, match="element 2: expected 0 or 1"):
        read_trace(p)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(TraceFormatError, match="cannot read trace file"):
        read_trace(tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="from its extension '.xyz'"):
        write_trace(LossTrace([0]), tmp_path / "a.xyz")
