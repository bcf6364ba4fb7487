import numpy as np
import pytest

from lossbench.core import Clip, EncodedStream, LossTrace, Packet, PacketKind, Reception
from lossbench.errors import AudioError, ConfigError, UnknownNameError
from lossbench.registry import Registry


def test_clip_validates_and_is_read_only():
    c = Clip("a", np.zeros(160, dtype=np.float64), 16000)
    assert c.samples.dtype == np.float32 and c.duration_s == pytest.approx(0.01)
    with pytest.raises(ValueError):
        c.samples[0] = 1.0
    with pytest.raises(AudioError, match="empty"):
        Clip("b", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="1-D"):
        Clip("c", np.zeros((2, 10)), 16000)
    with pytest.raises(AudioError, match="sample rate"):
        Clip("d", np.zeros(10), 0)


def test_stream_bitrate_counts_payload_and_headers():
    pk = [Packet(i, 0.02 * i, b"x" * 50, range(i, i + 1)) for i in range(50)]
    s = EncodedStream("pcm", {}, 16000, 16000, 0.02, pk)
    assert s.payload_kbps == pytest.approx(50 * 50 * 8 / 1000)
    assert s.header_kbps == pytest.approx(50 * 40 * 8 / 1000)
    assert s.bitrate_kbps == pytest.approx(s.payload_kbps + s.header_kbps)
    assert s.sizes_bytes().tolist() == [90] * 50
    assert s.payload_bytes_of(PacketKind.REDUNDANCY) == 0


def test_stream_rejects_bad_sequence_numbers():
    pk = [Packet(1, 0.0, b"", range(0, 1))]
    with pytest.raises(ConfigError, match="seq"):
        EncodedStream("pcm", {}, 16000, 320, 0.02, pk)


def test_loss_trace_checks_values():
    t = LossTrace([0, 1, 1, 0])
    assert t.lost.dtype == bool and t.loss_rate == 0.5 and len(t) == 4
    with pytest.raises(ConfigError, match="0/1"):
        LossTrace([0, 2])
    with pytest.raises(ConfigError, match="slot_s"):
        LossTrace([0, 1], slot_s=0)


def test_reception_late_and_usable():
    r = Reception(
        arrived=[True, True, False, True],
        arrival_time_s=[0.01, 0.09, np.nan, 0.05],
        playout_deadline_s=[0.05, 0.07, 0.09, 0.11],
    )
    assert r.late.tolist() == [False, True, False, False]
    assert r.usable.tolist() == [True, False, False, True]
    assert r.network_loss_rate == 0.25 and r.late_rate == 0.25 and r.effective_loss_rate == 0.5


def test_registry_aliases_and_errors():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1, "a")
    reg.add("beta", 2)
    assert reg.get("A") == 1 and reg.get("beta") == 2 and "a" in reg and reg.names() == ["alpha", "beta"]
    with pytest.raises(UnknownNameError, match="unknown thing 'gamma'; valid names: 'alpha', 'beta'"):
        reg.get("gamma")
    with pytest.raises(ValueError, match="twice"):
        reg.add("alpha", 3)
