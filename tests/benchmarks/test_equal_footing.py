"""Comparisons on equal footing (#34): every row keeps to a receiver clock (a default fixed buffer where a sweep names
none), the buffer settings of one network meet the same losses, a repair from a later packet pays only when the
buffer leaves time for it, sweeps can require one packet duration, and the report compares at equal delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.benchmarks.plan import DEFAULT_PLAYOUT, plan_sweep
from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.errors import ConfigError


def _spec(**kw):
    d = {"name": "ef", "clips": 1, "metrics": ["si_snr"], "examples": 0,
         "codec": [{"spec": "pcm", "concealments": ["zeros"]}], "channel": [{"model": "bernoulli", "loss": [0.1]}]}
    return spec_from_dict(d | kw)


def test_a_channel_naming_no_buffer_gets_the_default_and_none_is_refused(tmp_path):
    p = plan_sweep(_spec(), tmp_path / "a")
    assert [c.playout for c in p.channels] == [DEFAULT_PLAYOUT] and DEFAULT_PLAYOUT == "fixed:60ms"
    with pytest.raises(ConfigError, match="playout 'none': every sweep row keeps to a receiver clock"):
        plan_sweep(_spec(channel=[{"model": "bernoulli", "loss": [0.1], "playout": "none"}]), tmp_path / "b")
    for bad, why in (("fixed:-5ms", "must be"), ("fixed:abc", "abc"), ("fixed:30s", "as long as clip")):
        with pytest.raises(ConfigError, match=why):
            plan_sweep(_spec(channel=[{"model": "bernoulli", "loss": [0.1], "playout": bad}]), tmp_path / "c")


def test_packet_ms_requires_one_packet_duration(tmp_path):
    two = [{"spec": "pcm", "concealments": ["zeros"]}, {"spec": "pcm:frames_per_packet=3", "concealments": ["zeros"]}]
    with pytest.raises(ConfigError, match=r"'pcm:frames_per_packet=3' sends packets of 60 ms, but the sweep compares "
                                          r"at packet_ms = 20"):
        plan_sweep(_spec(codec=two, packet_ms=20), tmp_path / "a")
    assert plan_sweep(_spec(codec=two[1:], packet_ms=60), tmp_path / "b").num_tasks == 1
    for bad in (0, -20, "20ms", True):
        with pytest.raises(ConfigError, match="packet_ms must be a number of milliseconds > 0"):
            _spec(packet_ms=bad)


@pytest.mark.slow
def test_repairs_from_a_later_packet_pay_only_when_the_buffer_waits_for_them(tmp_path):
    """Through the harness: at a 0 ms buffer (no network delay) a RED copy or Opus LBRR, one packet later, comes
    too late, so ``pcm:red=1`` decodes exactly as ``pcm`` and ``opus-fec`` exactly as ``opus-plc``; at 40 ms both
    repair. Both buffers meet the same losses. The report compares at equal delay."""
    s = _spec(metrics=["si_snr", "pesq_wb"],
              codec=[{"spec": "pcm", "label": "PCM", "concealments": ["zeros"]},
                     {"spec": "pcm:red=1", "label": "PCM RED", "concealments": ["zeros"]},
                     {"spec": "opus:bitrate=24000,fec=1,loss_perc=20", "label": "Opus LBRR",
                      "concealments": ["opus-fec", "opus-plc"]}],
              channel=[{"model": "bernoulli", "loss": [0.0, 0.2], "playout": ["fixed:0ms", "fixed:40ms"]}])
    res = run_sweep(s, tmp_path / "r", progress=False)
    assert res.errors == 0
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    lossy = df[df["loss_param"] == 0.2]
    # one network, two buffers: the same packets lost
    assert lossy.groupby(["system", "concealment"])["network_loss"].nunique().eq(1).all()
    assert lossy["network_loss"].gt(0).all()
    v = lossy.set_index(["system", "concealment", "playout"])["si_snr"]
    opus = "Opus LBRR"
    assert v[("PCM RED", "zeros", "fixed:0ms")] == v[("PCM", "zeros", "fixed:0ms")]
    assert v[(opus, "opus-fec", "fixed:0ms")] == v[(opus, "opus-plc", "fixed:0ms")]
    assert v[("PCM RED", "zeros", "fixed:40ms")] > v[("PCM", "zeros", "fixed:40ms")] + 3.0
    assert v[(opus, "opus-fec", "fixed:40ms")] > v[(opus, "opus-plc", "fixed:40ms")]
    # what waiting costs: the 40 ms buffer is in the mouth-to-ear delay of every row
    m2e = df.set_index(["system", "concealment", "loss_param", "playout"])["mouth_to_ear_ms"]
    assert m2e[("PCM", "zeros", 0.2, "fixed:40ms")] == pytest.approx(m2e[("PCM", "zeros", 0.2, "fixed:0ms")] + 40)
    assert np.isfinite(df["mouth_to_ear_ms"]).all() and (df["playout"] != "none").all()

    from lossbench.reports import write_report
    from lossbench.reports.compare import compare_rows

    html = write_report(tmp_path / "r").read_text()
    names = {p.name for p in (tmp_path / "r" / "plots").glob("*.png")}
    # quality against delay per loss level, and the loss curves drawn per buffer, never pooled
    assert {"delay_bernoulli_si_snr.png", "loss_bernoulli_fixed_0ms_si_snr.png",
            "loss_bernoulli_fixed_40ms_si_snr.png"} <= names
    assert "loss_bernoulli_si_snr.png" not in names
    assert "PCM RED · 20 ms packets" in html
    tables = (tmp_path / "r" / "tables.md").read_text()
    head = next(line for line in tables.splitlines() if "bernoulli" in line)
    cols = [c.strip() for c in head.split("|") if "bernoulli" in c]
    assert cols == ["fixed:0ms · bernoulli 0%", "fixed:0ms · bernoulli 20%", "fixed:40ms · bernoulli 0%",
                    "fixed:40ms · bernoulli 20%"]
    t, _, base = compare_rows(df, opus, "si_snr", "opus-plc")
    fec = t[(t["concealment"] == "opus-fec") & (t["level"] == 0.2)].set_index("playout")
    assert fec.loc["fixed:0ms", "diff"] == 0 and fec.loc["fixed:40ms", "diff"] > 0


def test_a_packet_due_exactly_at_the_playout_time_is_in_time():
    """Send times and deadlines are float sums: the next 20 ms packet under a 20 ms buffer lands a rounding error
    past the frame's deadline on some frames. It counts as in time (core.CLOCK_TOLERANCE_S): Opus LBRR decodes the
    same under 20 ms as under 60 ms, and lossless SoundSpring-S under 60 ms as with no clock at all."""
    from lossbench.benchmarks.plan import channel_rng, expand_channels
    from lossbench.codecs import make_codec
    from lossbench.corpus import default_corpus

    clip = default_corpus()[0].load(16000)
    chs = {c.playout: c for c in expand_channels(
        _spec(channel=[{"model": "bernoulli", "loss": [0.2], "playout": ["fixed:20ms", "fixed:60ms"]}]).channels)}
    opus = make_codec("opus:bitrate=24000,fec=1,loss_perc=20")
    s = opus.encode(clip)
    out = {p: opus.decode(s, c.build().transmit(s, channel_rng(0, c.rng_key, clip.id, 0)), "opus-fec") for p, c in chs.items()}
    assert out["fixed:20ms"].info["lbrr_recovered_frames"] == out["fixed:60ms"].info["lbrr_recovered_frames"] > 0
    assert np.array_equal(out["fixed:20ms"].audio, out["fixed:60ms"].audio)
    ss = make_codec("soundspring:layers=6,slices=1,pack=frame,fec=next")
    short = type(clip)(clip.id, clip.samples[: 3 * 16000], 16000)
    s = ss.encode(short)
    lossless = expand_channels(_spec(channel=[{"model": "bernoulli", "loss": [0.0]}]).channels)[0]
    rec = lossless.build().transmit(s, channel_rng(0, lossless.rng_key, clip.id, 0))
    assert np.isfinite(rec.playout_deadline_s).all()
    assert np.array_equal(ss.decode(s, rec, "mlm").audio, ss.decode(s, None, "mlm").audio)


def test_buffers_are_shown_in_a_readers_order():
    from lossbench.reports.data import playout_order

    got = playout_order(["fixed:60ms", "tsm", "fixed:100ms", "fixed:0ms", "fixed:60ms", "adaptive", "fixed:20ms"])
    assert got == ["fixed:0ms", "fixed:20ms", "fixed:60ms", "fixed:100ms", "tsm", "adaptive"]
