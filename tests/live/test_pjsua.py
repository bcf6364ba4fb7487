"""Live runs of the pjsua client (a SIP call between two PJSIP 2.15 user agents: pjmedia's encoder, jitter buffer
and concealment) through the relay on loopback: the received audio aligns, PESQ-WB is within a stated margin of
the twin's at 0 % loss and falls with loss, the same seed drops the same packets in two runs, and failures are
one-line errors that leave no process behind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.errors import ConfigError
from lossbench.live import LiveChannel, LiveError
from lossbench.live.clients.pjsua import PjsuaClient
from lossbench.live.run import live_run
from tests.live.common import client_clip, none_running

pytestmark = pytest.mark.slow

#: live minus twin PESQ-WB at 0 % loss, G.722: measured -0.07 with the twin's pcm_shift=1 (PJSIP's own one-bit PCM
#: shift; without it the twin scores 0.43 higher, 4.507 against 4.073); the margin leaves room for pjmedia's
#: jitter buffer at start-up
MARGIN_0 = 0.2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return client_clip(tmp_path_factory, PjsuaClient())


def _no_peers_left() -> bool:
    return none_running("pj_peer.py")


def test_lossless_call_aligns_and_matches_its_twin(clip, tmp_path):
    df = pd.read_parquet(live_run("pjsua:codec=g722", clip, LiveChannel("none", seed=0), tmp_path,
                                  metrics=["pesq_wb"]))
    live = df[df["live_role"] == "live"].iloc[0]
    twins = df[df["live_role"] == "twin"]
    assert set(twins["twin_playout"]) == {"adaptive:min_delay_s=0.02", "tsm"}
    assert live["client_codec"] == "G722/16000" and live["client_ptime_ms"] == 20
    assert live["live_align_corr"] > 0.9 and live["live_align_residual_ms"] <= 1.0
    assert live["live_dropped"] == 0 and live["client_rx_loss"] == 0 and live["client_jb_lost"] == 0
    assert live["client_rx_pkt"] == live["live_packets"] == live["client_tx_packets"]
    assert live["pesq_wb"] > 3.6 and abs(live["pesq_wb"] - live["twin_pesq_wb"]) < MARGIN_0
    assert _no_peers_left()


def test_loss_repeats_by_seed_and_lowers_the_score(clip, tmp_path):
    ch = LiveChannel("gilbert:loss_rate=0.2,mean_burst=2", seed=3)
    df = pd.read_parquet(live_run("pjsua:codec=g722", clip, ch, tmp_path, metrics=["pesq_wb"], repeats=2))
    live = df[df["live_role"] == "live"]
    a, b = (list(x) for x in live["live_dropped_index"])
    assert a == b and a == np.flatnonzero(ch.fates(0).lost[:len(a) and 300]).tolist()[:len(a)]
    assert 0.1 < live["live_loss"].iloc[0] < 0.35
    # pjmedia's RTCP counts the gaps the relay made (a loss at the very end has no later packet to show it)
    assert (live["live_dropped"] - live["client_rx_loss"]).between(0, 3).all()
    assert (live["pesq_wb"] < 2.5).all() and (live["twin_pesq_wb"] < 2.5).all()
    assert _no_peers_left()


def test_bad_options_are_one_line_errors(clip, tmp_path):
    with pytest.raises(ConfigError, match="unknown codec 'opus'; valid: 'g722', 'gsm', 'pcma', 'pcmu', 'speex'"):
        live_run("pjsua:codec=opus", clip, LiveChannel("none"), tmp_path / "a")
    with pytest.raises(ConfigError, match="speex sends packets of 20, 40, 60 ms; the channel's packet_ms is 30"):
        live_run("pjsua:codec=speex", clip, LiveChannel("none", packet_ms=30), tmp_path / "b")
    with pytest.raises(ConfigError, match="jb_max must be a whole number of ms"):
        live_run("pjsua:jb_max=-1", clip, LiveChannel("none"), tmp_path / "c")
    assert _no_peers_left()


def test_a_port_in_use_fails_the_call_and_quotes_the_receiver(clip, tmp_path, monkeypatch):
    import socket

    import lossbench.live.clients.pjsua as pjsua_client

    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", pjsua_client._free_even_port()))
    try:  # the receiver's RTP port is taken
        monkeypatch.setattr(pjsua_client, "_free_even_port", lambda: busy.getsockname()[1])
        refused = r"pjsua sender: the call ended .*500.* receiver.s last stderr lines: .*Address already in use"
        with pytest.raises(LiveError, match=refused):
            live_run("pjsua:codec=pcmu", clip, LiveChannel("none"), tmp_path)
    finally:
        busy.close()
    assert _no_peers_left()
