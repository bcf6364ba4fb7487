"""Live runs of the GStreamer client (real opusenc/rtpopuspay sender, real rtpjitterbuffer/opusdec receiver) through
the relay on loopback: the received audio aligns by RTP timestamp, PESQ-WB is within a stated margin of the twin's
at 0 % loss and falls with loss, the same seed drops the same packets in two runs, and failures are one-line errors
that leave no process behind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lossbench.errors import ConfigError
from lossbench.live import LiveChannel, LiveError
from lossbench.live.clients.gstreamer import GStreamerClient
from lossbench.live.run import live_run
from tests.live.common import client_clip, none_running

pytestmark = pytest.mark.slow

#: live minus twin PESQ-WB at 0 % loss, both through Debian's libopus: measured 0.04 (24 kbit/s, 16 kHz speech);
#: the margin leaves room for GStreamer's resampler and timing
MARGIN_0 = 0.2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return client_clip(tmp_path_factory, GStreamerClient())


def _no_peers_left() -> bool:
    return none_running("gst_peer.py")


def test_lossless_run_aligns_and_matches_its_twin(clip, tmp_path):
    df = pd.read_parquet(live_run("gstreamer:bitrate=24000", clip, LiveChannel("none", seed=0), tmp_path,
                                  metrics=["pesq_wb"]))
    live = df[df["live_role"] == "live"].iloc[0]
    twins = df[df["live_role"] == "twin"]
    assert len(twins) == 2 and set(twins["twin_playout"]) == {"fixed:60ms", "tsm"}
    assert live["live_align_by"] == "rtp-timestamp" and live["live_align_residual_ms"] <= 1.0
    assert live["live_align_corr"] > 0.9 and 3.0 < live["live_align_lag_ms"] < 12.0  # Opus's 6.5 ms look-ahead
    assert live["live_dropped"] == 0 and live["client_jb_lost"] == 0 and not live["live_flagged"]
    assert live["pesq_wb"] > 3.8 and abs(live["pesq_wb"] - live["twin_pesq_wb"]) < MARGIN_0
    for f in ("received.wav", "aligned.wav", "timing.csv", "capture.pcapng", "spec.toml"):
        assert (tmp_path / f).stat().st_size > 0
    assert _no_peers_left()


def test_loss_repeats_by_seed_and_lowers_the_score(clip, tmp_path):
    ch = LiveChannel("gilbert:loss_rate=0.2,mean_burst=2", seed=4)
    df = pd.read_parquet(live_run("gstreamer:bitrate=24000", clip, ch, tmp_path, metrics=["pesq_wb"], repeats=2))
    live = df[df["live_role"] == "live"]
    assert len(live) == 2 and (tmp_path / "repeat-1" / "timing.csv").exists()
    a, b = (list(x) for x in live["live_dropped_index"])
    assert a == b and a == np.flatnonzero(ch.fates(0).lost[:len(a) and 260]).tolist()[:len(a)]
    assert 0.1 < live["live_loss"].iloc[0] < 0.35
    # the jitter buffer counts the gaps the relay made (a loss at the very end has no later packet to show it)
    assert (live["live_dropped"] - live["client_jb_lost"]).between(0, 3).all()
    assert (live["pesq_wb"] < 3.0).all() and live["live_spread_pesq_wb"].iloc[0] >= 0
    assert np.isfinite(live["twin_pesq_wb"]).all() and (live["twin_pesq_wb"] < 3.2).all()
    assert _no_peers_left()


def test_failures_are_one_line_errors_and_leave_nothing_running(clip, tmp_path, monkeypatch):
    sf.write(str(tmp_path / "odd.wav"), np.zeros(22050, np.float32), 11025)
    with pytest.raises(ConfigError, match="11025 Hz; live mode takes 8000, 16000"):
        live_run("gstreamer", tmp_path / "odd.wav", LiveChannel("none"), tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown parameter 'bitrat'"):
        live_run("gstreamer:bitrat=1", clip, LiveChannel("none"), tmp_path / "b")
    # the receiver's port is taken: the receiver fails, and the error quotes its stderr
    import socket

    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    monkeypatch.setattr("lossbench.live.clients.gstreamer.free_port", lambda: busy.getsockname()[1])
    try:
        with pytest.raises(LiveError, match=r"gstreamer receiver: did not start .*last stderr lines"):
            live_run("gstreamer", clip, LiveChannel("none"), tmp_path / "c", metrics=["pesq_wb"], twin=False)
    finally:
        busy.close()
    assert _no_peers_left()
