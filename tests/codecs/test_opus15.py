"""Opus 1.5.2 (the project's build): the peer test against opus_demo, DRED, OSCE, bad input."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.codecs.opus import packet_dred_bytes
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError
from lossbench.native import opus_demo_path


def _clip() -> Clip:
    c = default_corpus()[0].load(16000)
    # 16-bit values, as opus_demo reads them
    q = np.clip(np.round(c.samples * 32768), -32768, 32767).astype(np.int16)
    return Clip("peer", q.astype(np.float32) / 32768.0, 16000), q


def _loss_pattern(n: int) -> np.ndarray:
    """Single losses, bursts of 2-7 and a long gap, none in the first or last 5 packets."""
    rng = np.random.default_rng(7)
    lost = rng.random(n) < 0.12
    for start, length in ((40, 3), (90, 7), (150, 2), (200, 26)):
        if start + length < n - 5:
            lost[start : start + length] = True
    lost[:5] = lost[-5:] = False
    return lost


def _reception(lost: np.ndarray) -> Reception:
    n = lost.size
    return Reception(arrived=~lost, arrival_time_s=np.zeros(n), playout_deadline_s=np.full(n, np.inf))


PEERS = [
    # concealment, our codec spec, opus_demo options
    ("opus-plc", "opus:bitrate=24000", []),
    ("opus-deep-plc", "opus:bitrate=24000", ["-dec_complexity", "5"]),
    ("opus-fec", "opus:bitrate=24000,fec=1,loss_perc=20", ["-inbandfec", "-loss", "20"]),
    ("opus-dred", "opus:bitrate=24000,dred_ms=200,loss_perc=20", ["-dred", "20", "-loss", "20", "-dec_complexity", "5"]),
    ("opus-dred", "opus:bitrate=32000,fec=1,dred_ms=100,loss_perc=20",
     ["-inbandfec", "-dred", "10", "-loss", "20", "-dec_complexity", "5"]),
    ("opus-deep-plc", "opus:bitrate=24000,osce=nolace", ["-dec_complexity", "7"]),
]


@pytest.mark.parametrize("concealment,spec,demo_opts", PEERS, ids=[f"{c}:{s.split(':')[1]}" for c, s, _ in PEERS])
def test_decoded_output_equals_opus_demo_sample_for_sample(tmp_path, concealment, spec, demo_opts):
    clip, q = _clip()
    codec = make_codec(spec)
    stream = codec.encode(clip)
    lost = _loss_pattern(stream.num_packets)
    (tmp_path / "in.raw").write_bytes(q.tobytes())
    (tmp_path / "loss.txt").write_text("".join(f"{int(x)}\n" for x in lost))
    bitrate = codec.bitrate
    cmd = [str(opus_demo_path()), "voip", "16000", "1", str(bitrate), "-complexity", "10", *demo_opts,
           "-lossfile", str(tmp_path / "loss.txt"), str(tmp_path / "in.raw"), str(tmp_path / "out.raw")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    ref = np.frombuffer((tmp_path / "out.raw").read_bytes(), dtype=np.int16)
    res = codec.decode(stream, _reception(lost), concealment)
    ours = np.clip(np.round(res.audio * 32768), -32768, 32767).astype(np.int16)
    assert ref.size == ours.size == clip.num_samples
    assert res.missing.sum() == lost.sum()
    if concealment == "opus-fec":
        assert stream.meta["lbrr_fraction"] > 0.5 and res.info["lbrr_recovered_frames"] > 0
    if concealment == "opus-dred":
        assert stream.meta["dred_fraction"] > 0.5
        # with LBRR on, the encoder leaves DRED only 15 ms, less than one frame: LBRR does the work
        assert res.info["dred_recovered_frames" if "fec" not in spec else "lbrr_recovered_frames"] > 0
    np.testing.assert_array_equal(ours, ref)


def test_dred_costs_what_its_packets_carry_and_recovers_a_gap():
    clip, _ = _clip()
    plain = make_codec("opus:bitrate=24000,loss_perc=20").encode(clip)
    dred = make_codec("opus:bitrate=24000,dred_ms=500,loss_perc=20").encode(clip)
    assert plain.meta["dred_kbps"] == 0.0 and plain.meta["dred_fraction"] == 0.0
    sizes = [packet_dred_bytes(p.payload) for p in dred.packets]
    assert dred.meta["dred_kbps"] == pytest.approx(8 * sum(sizes) / (dred.num_packets * 0.02) / 1000)
    assert 1.0 < dred.meta["dred_kbps"] < 24.0
    assert all(packet_dred_bytes(p.payload) == 0 for p in plain.packets)


def test_classic_and_deep_plc_differ_and_osce_changes_clean_decoding():
    clip, _ = _clip()
    c = make_codec("opus:bitrate=16000")
    st = c.encode(clip)
    lost = _loss_pattern(st.num_packets)
    a = c.decode(st, _reception(lost), "opus-plc").audio
    b = c.decode(st, _reception(lost), "opus-deep-plc").audio
    assert np.abs(a - b).max() > 1e-3
    clean = c.decode(st, None, "opus-plc").audio
    enhanced = make_codec("opus:bitrate=16000,osce=lace").decode(st, None, "opus-deep-plc").audio
    assert np.abs(clean - enhanced).max() > 1e-3


def test_system_library_stays_selectable_and_lacks_the_neural_tools():
    c = make_codec("opus:bitrate=24000,lib=system")
    assert c.version.startswith("libopus 1.3") or c.version != make_codec("opus").version
    assert "opus-dred" not in c.concealments and "opus-plc" in c.concealments
    with pytest.raises(ConfigError, match="lib=build"):
        c.check_concealment("opus-deep-plc")
    st = c.encode(_clip()[0])
    assert st.meta["libopus"] == c.version


@pytest.mark.parametrize("spec,match", [
    ("opus:dred_ms=15", "dred_ms must be 0"),
    ("opus:dred_ms=2000", "dred_ms must be 0"),
    ("opus:osce=big", "osce must be one of"),
    ("opus:lib=mine", "lib must be one of"),
    ("opus:lib=system,dred_ms=100", "needs the Opus 1.5 build"),
])
def test_bad_options_name_the_value_and_the_allowed_ones(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_codec(spec)


def test_osce_refuses_classic_plc():
    with pytest.raises(ConfigError, match="deep PLC"):
        make_codec("opus:osce=nolace").check_concealment("opus-plc")


@pytest.mark.parametrize("concealment", ["opus-plc", "opus-deep-plc", "opus-fec", "opus-dred"])
def test_garbage_and_truncated_packets_are_counted_and_never_crash(concealment):
    clip, _ = _clip()
    c = make_codec("opus:bitrate=32000,fec=1,dred_ms=300,loss_perc=20")
    st = c.encode(clip)
    rng = np.random.default_rng(3)
    frames: list[bytes | None] = [p.payload for p in st.packets]
    for i in range(10, len(frames), 7):
        f = frames[i]
        kind = i % 3
        frames[i] = f[: len(f) // 3] if kind == 0 else bytes(rng.integers(0, 256, len(f), dtype=np.uint8)) \
            if kind == 1 else None
    frames[30] = b"\xff"  # a lone code-3 TOC byte
    frames[31] = bytes([0x0B, 0xC0, 0xFF, 0xFF])  # code 3 with padding that runs past the end
    out, bad, _ = c.decode_frames(frames, concealment)
    assert np.isfinite(out).all() and out.size == len(frames) * c.frame_samples
    assert bad[30] and bad[31]
    assert packet_dred_bytes(b"\xff") == 0 and packet_dred_bytes(bytes([0x0B, 0xC0, 0xFF, 0xFF])) == 0


def test_lbrr_reader_agrees_with_libopus_on_padded_packets():
    from lossbench.codecs.opus import libopus, packet_has_lbrr

    lib = libopus("build")
    clip, _ = _clip()
    for spec in ("opus:bitrate=32000,fec=1,loss_perc=20", "opus:bitrate=32000,fec=1,dred_ms=100,loss_perc=20"):
        st = make_codec(spec).encode(clip)
        ours = [packet_has_lbrr(p.payload) for p in st.packets]
        ref = [bool(lib.opus_packet_has_lbrr(p.payload, len(p.payload))) for p in st.packets]
        assert ours == ref and sum(ref) > len(ref) // 2


STEREO_PEERS = [
    ("opus-plc", "opus:bitrate=64000,sample_rate_hz=48000,application=audio,channels=2", []),
    ("opus-fec", "opus:bitrate=32000,sample_rate_hz=48000,application=audio,channels=2,fec=1,loss_perc=20",
     ["-inbandfec", "-loss", "20"]),
    ("opus-deep-plc", "opus:bitrate=24000,sample_rate_hz=48000,channels=2", ["-dec_complexity", "5"]),
]


@pytest.mark.parametrize("concealment,spec,demo_opts", STEREO_PEERS, ids=[c for c, _, _ in STEREO_PEERS])
def test_stereo_decoding_equals_opus_demo_sample_for_sample(tmp_path, concealment, spec, demo_opts):
    """Two channels (two different full-band clips, left and right), coded as one stereo stream."""
    refs = default_corpus("fullband")
    left, right = refs[0].load().samples[: 4 * 48000], refs[1].load().samples[: 4 * 48000]
    q = np.clip(np.round(np.stack([left, right], axis=1) * 32768), -32768, 32767).astype(np.int16)
    clip = Clip("stereo-peer", q.astype(np.float32) / 32768.0, 48000)
    assert clip.channels == 2
    codec = make_codec(spec)
    stream = codec.encode(clip)
    lost = _loss_pattern(stream.num_packets)
    (tmp_path / "in.raw").write_bytes(q.tobytes())  # interleaved L R, as opus_demo reads stereo
    (tmp_path / "loss.txt").write_text("".join(f"{int(x)}\n" for x in lost))
    app = "audio" if "application=audio" in spec else "voip"
    cmd = [str(opus_demo_path()), app, "48000", "2", str(codec.bitrate), "-complexity", "10", *demo_opts,
           "-lossfile", str(tmp_path / "loss.txt"), str(tmp_path / "in.raw"), str(tmp_path / "out.raw")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    ref = np.frombuffer((tmp_path / "out.raw").read_bytes(), dtype=np.int16).reshape(-1, 2)
    res = codec.decode(stream, _reception(lost), concealment)
    ours = np.clip(np.round(res.audio * 32768), -32768, 32767).astype(np.int16)
    assert ours.shape == ref.shape == (clip.num_samples, 2)
    if concealment == "opus-fec":
        assert res.info["lbrr_recovered_frames"] > 0
    np.testing.assert_array_equal(ours, ref)


def test_stereo_opus_refuses_waveform_concealments_and_mono_clips():
    c = make_codec("opus:bitrate=64000,sample_rate_hz=48000,channels=2")
    with pytest.raises(ConfigError, match="waveform concealment 'repeat' works on one channel"):
        c.check_concealment("repeat")
    from lossbench.errors import AudioError

    with pytest.raises(AudioError, match="has 1 channel.*codes 2"):
        c.encode(Clip("m", np.zeros(48000, np.float32), 48000))
    with pytest.raises(ConfigError, match="channels must be 1 or 2"):
        make_codec("opus:channels=3")
