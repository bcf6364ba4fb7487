"""Live runs of Debian's Chromium (two WebRTC peer connections, headless, in a network namespace of their own whose
only address is in the loopback range) through the relay: the recording aligns by correlation, PESQ-WB is within a
stated margin of the twin's at 0 % loss and falls with loss, the same seed drops the same packets twice, NetEq's
getStats numbers land in the row, and no Chromium is left running."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.live import LiveChannel
from lossbench.live.clients.chromium import ChromiumClient
from lossbench.live.run import live_run
from tests.live.common import client_clip, none_running

pytestmark = pytest.mark.slow

#: live minus twin PESQ-WB at 0 % loss (Chromium's libopus against Opus 1.5.2, both 32 kbit/s): measured +0.03
MARGIN_0 = 0.3


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return client_clip(tmp_path_factory, ChromiumClient())


def _no_chromium_left() -> bool:
    return none_running("lossbench-chromium-")


def test_chromium_lossless_then_lossy_with_repeats(clip, tmp_path):
    df = pd.read_parquet(live_run("chromium:bitrate=32000,fec=1", clip, LiveChannel("none", seed=0),
                                  tmp_path / "clean", metrics=["pesq_wb"]))
    live = df[df["live_role"] == "live"].iloc[0]
    assert live["live_align_by"] == "correlation" and live["live_align_residual_ms"] <= 1.0
    assert live["live_align_corr"] > 0.8 and live["live_dropped"] == 0 and live["client_packets_lost"] == 0
    assert live["pesq_wb"] > 3.8 and abs(live["pesq_wb"] - live["twin_pesq_wb"]) < MARGIN_0
    assert "useinbandfec=1" in live["client_fmtp"] and live["client_jitter_buffer_mean_ms"] > 0
    # the clip's packets start after the lead-in: about 3 s of 20 ms packets, less the time to connect
    assert 50 <= live["live_clip_first_packet"] <= 150

    ch = LiveChannel("gilbert:loss_rate=0.2,mean_burst=2", seed=6)
    df = pd.read_parquet(live_run("chromium:bitrate=32000,fec=1", clip, ch, tmp_path / "lossy", metrics=["pesq_wb"],
                                  repeats=2))
    lv = df[df["live_role"] == "live"]
    a, b = (list(x) for x in lv["live_dropped_index"])
    # the same seed drops the same packets: each run's drops are the channel's for the packets it sent
    lost = np.flatnonzero(ch.fates(0).lost).tolist()
    assert a == lost[:len(a)] and b == lost[:len(b)] and len(a) > 20
    assert (lv["pesq_wb"] < live["pesq_wb"] - 0.8).all()
    assert (lv["client_concealed_samples"] > 0).all() and (lv["client_packets_lost"] > 0).all()
    assert np.isfinite(lv["twin_pesq_wb"]).all() and np.isfinite(lv["live_spread_pesq_wb"]).all()
    assert _no_chromium_left()
