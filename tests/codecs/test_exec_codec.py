"""``exec:``: a codec binary over ITU-T G.192 (lossbench/codecs/external.py, g192.py).

The peer: Debian's Codec 2 binaries (c2enc, c2dec) behind the G.192 adapter in examples/g192/. Over a lossless
channel the exec codec must give c2dec's samples exactly (lossbench's own codec2 backend, itself equal to c2enc and
c2dec in test_production_codecs.py); over a lossy one the decoder must see the BFI sync word on exactly the frames
that did not arrive, read here by an independent parser (struct, not lossbench's reader)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.codecs.g192 import read_g192, write_g192
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import CodecError, ConfigError
from tests.conftest import need_tools

ADAPTER = Path(__file__).resolve().parents[2] / "examples" / "g192" / "codec2_g192.py"
A = f"{sys.executable} {ADAPTER}"


def _exec(mode="3200", **over):
    p = {"encode": f'"{A} enc {mode} {{in}} {{out}}"', "decode": f'"{A} dec {mode} {{in}} {{out}}"',
         "sample_rate_hz": 8000, "frame_ms": 20, "delay_ms": 17.5} | over
    return make_codec("exec:" + ",".join(f"{k}={v}" for k, v in p.items()))


def _lost(stream, lost):
    n = stream.num_packets
    arrived = np.ones(n, bool)
    arrived[list(lost)] = False
    t = np.where(arrived, 0.0, np.nan)
    return Reception(arrived, t, np.full(n, np.inf))


def _parse(data: bytes) -> list[tuple[int, int]]:
    """(sync, length) of each frame: an independent reading of G.192."""
    out, pos = [], 0
    while pos < len(data):
        sync, n = struct.unpack_from("<2H", data, pos)
        out.append((sync, n))
        pos += 4 + 2 * n
    return out


def test_g192_round_trip_and_malformed_files_name_the_frame():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 2, n).astype(np.uint8) for n in (64, 0, 13)]
    data = write_g192(frames, np.array([True, True, False]))
    assert _parse(data) == [(0x6B21, 64), (0x6B21, 0), (0x6B20, 13)]
    assert struct.unpack_from("<4H", data, 0) == (0x6B21, 64, 0x0081 if frames[0][0] else 0x007F,
                                                   0x0081 if frames[0][1] else 0x007F)
    back = read_g192(data)
    assert [g for g, _ in back] == [True, True, False]
    assert np.array_equal(back[0][1], frames[0]) and back[1][1].size == 0 and not back[2][1].any()
    with pytest.raises(CodecError, match=r"frame 1 \(byte 132\) starts with 0x1234"):
        read_g192(data[:132] + struct.pack("<H", 0x1234) + data[134:])
    with pytest.raises(CodecError, match="frame 2 .* says 13 bits but the file ends after 3"):
        read_g192(data[:-20])
    with pytest.raises(CodecError, match="bit word 0x0100"):
        read_g192(struct.pack("<3H", 0x6B21, 1, 0x0100))


@pytest.mark.needs_tools
def test_exec_over_g192_equals_codec2_and_marks_exactly_the_lost_frames(tmp_path):
    need_tools("c2enc", "c2dec")
    ex, c2 = _exec(), make_codec("codec2:mode=3200")
    clip = default_corpus()[0].load(8000)
    s = ex.encode(clip)
    assert s.num_packets == c2.encode(clip).num_packets and abs(s.payload_kbps - 3.2) < 0.05
    ours = ex.decode(s, None, "exec-bfi").audio
    theirs = c2.decode(c2.encode(clip), None, "zeros").audio
    assert np.array_equal(ours, theirs)  # c2dec's samples, exactly
    # the decoder sees the BFI on exactly the lost frames: keep its input through a shell command
    keep = tmp_path / "seen.g192"
    spy = make_codec("exec:" + ",".join([f'encode="{A} enc 3200 {{in}} {{out}}"',
                                         f'decode="cp {{in}} {keep} && {A} dec 3200 {{in}} {{out}}"',
                                         "sample_rate_hz=8000", "frame_ms=20", "delay_ms=17.5", "shell=1"]))
    lost = [3, 4, 10, s.num_packets - 1]
    res = spy.decode_many(s, _lost(s, lost), ["exec-bfi", "zeros"])
    seen = _parse(keep.read_bytes())
    assert [i for i, (sync, _) in enumerate(seen) if sync == 0x6B20] == lost
    assert all(n == 64 for _, n in seen)
    assert list(np.flatnonzero(res[0].missing)) == lost and res[0].info["g192_frames_bad"] == 4
    F = ex.frame_samples
    d = ex.delay_samples
    # zeros: the lost frames are silent; exec-bfi: the adapter's repetition plays there
    seg = slice(3 * F - d + 10, 5 * F - d - 10)
    assert not res[1].audio[seg].any() and np.abs(res[0].audio[seg]).max() > 0.01


@pytest.mark.needs_tools
def test_failing_hanging_and_malformed_commands_are_errors_that_name_them(tmp_path):
    need_tools("c2enc", "c2dec")
    clip = default_corpus()[0].load(8000)
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nsys.stderr.write('tool: cannot open model file\\n')\nsys.exit(3)\n")
    with pytest.raises(CodecError, match=r"exec encoder: command `.*bad.py .*` exited with status 3; its stderr "
                                         r"ends: tool: cannot open model file"):
        _exec(encode=f'"{sys.executable} {bad} {{in}} {{out}}"').encode(clip)
    with pytest.raises(CodecError, match="ran past its timeout of 0.5 s"):
        _exec(encode="\"sh -c 'sleep 5' {in} {out}\"", timeout_s=0.5).encode(clip)
    with pytest.raises(CodecError, match="could not start"):
        _exec(encode='"no-such-binary-xyz {in} {out}"').encode(clip)
    with pytest.raises(CodecError, match="exited with status 0 but wrote no coded.g192"):
        _exec(encode='"true {in} {out}"').encode(clip)
    junk = tmp_path / "junk.py"
    junk.write_text("import sys\nopen(sys.argv[2], 'wb').write(b'\\x00\\x01\\x02\\x03')\n")
    with pytest.raises(CodecError, match="starts with 0x0100, not a G.192 sync word"):
        _exec(encode=f'"{sys.executable} {junk} {{in}} {{out}}"').encode(clip)
    with pytest.raises(CodecError, match=r"wrote \d+ G.192 frames for \d+ frames of 40 ms"):
        _exec(frame_ms=40).encode(clip)
    s = _exec().encode(clip)
    with pytest.raises(CodecError, match="exec decoder .* wrote a file that is not audio"):
        _exec(decode=f'"{sys.executable} {junk} {{in}} {{out}}"').decode(s, None, "exec-bfi")
    wrong = tmp_path / "wrong.py"  # the right number of samples, at the wrong rate
    wrong.write_text("import sys, wave\nn = open(sys.argv[1], 'rb').read().count(b'\\x21\\x6b')\n"
                     "w = wave.open(sys.argv[2], 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)\n"
                     "w.writeframes(bytes(320 * n)); w.close()\n")
    with pytest.raises(CodecError, match=r"wrote \d+ samples, 1 channel\(s\) at 16000 Hz; expected \d+ samples "
                                         r"\(\d+ frames of 20 ms\), 1 channel at 8000 Hz"):
        _exec(decode=f'"{sys.executable} {wrong} {{in}} {{out}}"').decode(s, None, "exec-bfi")


@pytest.mark.parametrize("spec, message", [
    ('exec:encode="enc {in}",decode="dec {in} {out}"', r"must use \{out\}"),
    ('exec:encode="enc {in} {out} {model}",decode="dec {in} {out}"', r"unknown field \{model\}"),
    ('exec:decode="dec {in} {out}"', "missing parameter 'encode'"),
    ('exec:encode="e {in} {out}",decode="d {in} {out}",frame_ms=0.1,sample_rate_hz=8000', "whole number of samples"),
    ('exec:encode="e {in} {out}",decode="d {in} {out}",timeout_s=0', "timeout_s must lie in"),
    ('exec:decode="d {in} {out}",encode="e {in} {out}', "a quote is not closed"),
])
def test_bad_exec_specs_name_the_value(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_codec(spec)


def test_the_description_builds_the_same_codec():
    c = make_codec('exec:encode="enc -m 3, -q {in} {out}",decode="dec {in} {out}",sample_rate_hz=8000,frame_ms=20')
    assert make_codec(c.describe()).config() == c.config()


@pytest.mark.needs_tools
def test_a_sweep_runs_exec_and_a_failing_decoder_gives_error_rows_not_a_crash(tmp_path):
    import pandas as pd

    from lossbench.benchmarks.spec import spec_from_dict
    from lossbench.benchmarks.sweep import run_sweep

    need_tools("c2enc", "c2dec")
    good = _exec().describe()
    bad = _exec(decode='"sh -c \'echo decoder: bad frame table >&2; exit 5\' {in} {out}"').describe()
    spec = spec_from_dict({"name": "ex", "clips": 2, "metrics": ["si_snr"], "examples": 0,
                           "codec": [{"spec": good, "label": "c2", "concealments": ["exec-bfi", "zeros"]},
                                     {"spec": bad, "label": "broken", "concealments": ["exec-bfi"]}],
                           "channel": [{"model": "bernoulli", "loss": [0.1]}]})
    run_sweep(spec, tmp_path, progress=False)
    df = pd.read_parquet(tmp_path / "results.parquet")
    ok, broken = df[df["system"] == "c2"], df[df["system"] == "broken"]
    assert len(ok) == 4 and (ok["status"] == "ok").all() and (ok["g192_frames_bad"] > 0).all()
    assert abs(ok["payload_kbps"].mean() - 3.2) < 0.05
    assert len(broken) == 2 and (broken["status"] == "error").all()
    assert all("exited with status 5; its stderr ends: decoder: bad frame table" in e for e in broken["error"])
