"""Concealment models a user brings over the Deep PLC Challenge's interface: ``cmd:`` (a command) and ``py:``
(a callable) (lossbench/concealment/external.py).

The peer: spandsp's G.711 Appendix I-style concealer run as a challenge-style script (examples/plc/spandsp_plc.py)
must give, through ``cmd:`` and through ``py:``, exactly what lossbench's g711 codec gives with its native
``g711-plc`` (the same concealer inside the decoder)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import CodecError, ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "plc"
SCRIPT = f"{sys.executable} {EXAMPLES / 'spandsp_plc.py'}"
LOST = [5, 6, 7, 20, 40, 41]


@pytest.fixture(scope="module")
def g711():
    c = make_codec("g711")
    s = c.encode(default_corpus()[0].load(8000))
    arrived = np.ones(s.num_packets, bool)
    arrived[LOST] = False
    rec = Reception(arrived, np.where(arrived, 0.0, np.nan), np.full(s.num_packets, np.inf))
    return c, s, rec


def _script(tmp_path, body: str) -> str:
    p = tmp_path / "model.py"
    p.write_text("import sys, wave\nlossy, mask, out = sys.argv[1:4]\n"
                 "w = wave.open(lossy, 'rb'); rate = w.getframerate(); x = w.readframes(w.getnframes()); w.close()\n"
                 + body)
    return f"{sys.executable} {p}"


def test_cmd_and_py_equal_the_native_concealer_sample_for_sample(g711, monkeypatch):
    c, s, rec = g711
    monkeypatch.syspath_prepend(str(EXAMPLES))
    names = ["g711-plc", f'cmd:run="{SCRIPT} {{lossy}} {{mask}} {{out}}",sample_rate_hz=0',
             "py:fn=spandsp_plc:conceal,sample_rate_hz=0", "zeros"]
    r = c.decode_many(s, rec, names)
    assert np.array_equal(r[0].audio, r[1].audio) and np.array_equal(r[0].audio, r[2].audio)
    F = c.frame_samples
    assert not np.array_equal(r[0].audio, r[3].audio) and np.abs(r[1].audio[5 * F : 8 * F]).max() > 0.01


def test_the_model_sees_zeroed_frames_a_challenge_mask_and_its_own_rate(g711, tmp_path):
    c, s, rec = g711
    seen = tmp_path / "seen"
    run = _script(tmp_path, f"import shutil; shutil.copy(mask, {str(seen)!r} + '.txt'); "
                            f"shutil.copy(lossy, {str(seen)!r} + '.wav')\n"
                            "o = wave.open(out, 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(rate)\n"
                            "o.writeframes(x); o.close()\n")
    c.decode(s, rec, f'cmd:run="{run} {{lossy}} {{mask}} {{out}}"')  # default: the challenge's 16 kHz
    import soundfile as sf

    x, sr = sf.read(str(seen) + ".wav", dtype="int16")
    mask = [int(v) for v in Path(str(seen) + ".txt").read_text().split()]
    assert sr == 16000 and len(mask) == int(np.ceil(x.size / 320))
    assert [i for i, m in enumerate(mask) if m] == LOST
    for i in LOST:
        assert not x[i * 320 : (i + 1) * 320].any()
    assert np.abs(x[10 * 320 : 11 * 320]).max() > 100


@pytest.mark.parametrize("body, message", [
    ("o = wave.open(out, 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(rate)\n"
     "o.writeframes(x[:-200]); o.close()\n", r"wrote \d+ samples, 1 channel\(s\) at 16000 Hz; expected \d+ samples "
                                           r"\(the lossy file's length\), 1 channel at 16000 Hz"),
    ("o = wave.open(out, 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(8000)\n"
     "o.writeframes(x); o.close()\n", r"at 8000 Hz; expected .* at 16000 Hz"),
    ("o = wave.open(out, 'wb'); o.setnchannels(2); o.setsampwidth(2); o.setframerate(rate)\n"
     "o.writeframes(x + x); o.close()\n", r"2 channel\(s\) at 16000 Hz; expected .* 1 channel"),
    ("sys.stderr.write('CUDA out of memory\\n'); sys.exit(2)\n", r"exited with status 2; its stderr ends: CUDA out"),
    ("pass\n", r"exited with status 0 but wrote no concealed.wav"),
])
def test_a_wrong_output_or_a_failing_model_is_an_error_naming_what_was_expected(g711, tmp_path, body, message):
    c, s, rec = g711
    with pytest.raises(CodecError, match=message):
        c.decode(s, rec, f'cmd:run="{_script(tmp_path, body)} {{lossy}} {{mask}} {{out}}"')


def test_py_errors_and_bad_specs_name_the_value(g711, tmp_path, monkeypatch):
    c, s, rec = g711
    (tmp_path / "badplc.py").write_text("def short(x, m, r):\n    return x[:-5]\n"
                                        "def boom(x, m, r):\n    raise RuntimeError('weights not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CodecError, match=r"py \(badplc:short\): the model returned \(\d+,\) samples; expected"):
        c.decode(s, rec, "py:fn=badplc:short")
    with pytest.raises(CodecError, match="py concealment badplc:boom: RuntimeError: weights not found"):
        c.decode(s, rec, "py:fn=badplc:boom")
    for bad, message in (("py:fn=nosuchmodule_xyz:f", "cannot import module 'nosuchmodule_xyz'"),
                         ("py:fn=badplc:nothere", "module 'badplc' has no function 'nothere'"),
                         ('cmd:run="model {lossy} {out}"', r"must use \{mask\}"),
                         ('cmd:run="model {lossy} {mask} {out}",sample_rate_hz=44', "sample_rate_hz must be 0"),
                         ("cmd:foo=1", "unknown parameter 'foo'")):
        with pytest.raises(ConfigError, match=message):
            c.check_concealment(bad)
    with pytest.raises(ConfigError, match="does not support concealment 'nosuch:x=1'"):
        c.check_concealment("nosuch:x=1")


def test_nothing_lost_runs_no_model(g711, tmp_path):
    c, s, _ = g711
    run = _script(tmp_path, "sys.exit(9)\n")  # would fail if it ran
    r = c.decode(s, None, f'cmd:run="{run} {{lossy}} {{mask}} {{out}}"')
    assert np.array_equal(r.audio, c.decode(s, None, "zeros").audio)


def test_a_sweep_runs_cmd_by_its_spec_and_a_failing_model_gives_error_rows(tmp_path):
    import pandas as pd

    from lossbench.benchmarks.spec import spec_from_dict
    from lossbench.benchmarks.sweep import run_sweep

    good = f'cmd:run="{SCRIPT} {{lossy}} {{mask}} {{out}}",sample_rate_hz=0'
    bad = f'cmd:run="{_script(tmp_path, "sys.exit(4)")} {{lossy}} {{mask}} {{out}}"'
    spec = spec_from_dict({"name": "cmd", "clips": 1, "metrics": ["si_snr"], "examples": 0,
                           "codec": [{"spec": "g711", "concealments": ["g711-plc", good, bad]}],
                           "channel": [{"model": "bernoulli", "loss": [0.1]}]})
    run_sweep(spec, tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "results.parquet").set_index("concealment")
    assert df.loc[good, "status"] == "ok" and df.loc[good, "si_snr"] == df.loc["g711-plc", "si_snr"]
    assert df.loc[bad, "status"] == "error" and "exited with status 4" in df.loc[bad, "error"]
