"""Codec backends: lossless round trips against the libraries' own decoders,
measured bitrates, concealment, corrupt payloads and bad configurations."""

import ctypes

import numpy as np
import pytest

from lossbench.audio import from_int16, to_int16
from lossbench.codecs import CODECS, make_codec
from lossbench.codecs.amrwb import _libs
from lossbench.codecs.opus import _Decoder, libopus, packet_has_lbrr
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus
from lossbench.errors import AudioError, ConfigError, UnknownNameError
from lossbench.netsim import Bernoulli


@pytest.fixture(scope="module")
def clip() -> Clip:
    return default_corpus()[0].load(16000)


def lost_mask(n, p, seed=0):
    return Bernoulli(p).sample(n, np.random.default_rng(seed)).lost


def test_registry_and_unknown_codec():
    assert {"opus", "amrwb", "pcm"} <= set(CODECS.names())
    with pytest.raises(UnknownNameError, match="unknown codec 'mp3'; valid names: "):
        make_codec("mp3:bitrate=1")
    with pytest.raises(ConfigError, match="unknown parameter 'bitrat'"):
        make_codec("opus:bitrat=16000")


@pytest.mark.parametrize("spec", ["pcm", "pcm:sample_rate_hz=8000,frame_ms=10"])
def test_pcm_round_trip_is_16_bit_quantisation(spec):
    cod = make_codec(spec)
    rng = np.random.default_rng(0)
    c = Clip("x", (rng.random(cod.sample_rate_hz) - 0.5).astype(np.float32), cod.sample_rate_hz)
    out = cod.decode(cod.encode(c)).audio
    assert np.array_equal(out, from_int16(to_int16(c.samples)))


@pytest.mark.parametrize("spec", ["opus:bitrate=9000", "opus:bitrate=24000,fec=1", "opus:kbps=32,frame_ms=10,vbr=false",
                                  "opus:bitrate=16000,frame_ms=60,application=audio", "opus:bitrate=64000,sample_rate_hz=48000"])
def test_opus_lossless_equals_libopus_decoder(spec, clip):
    cod = make_codec(spec)
    if cod.sample_rate_hz != 16000:
        from lossbench.audio import resample

        clip = Clip(clip.id, resample(clip.samples, 16000, cod.sample_rate_hz), cod.sample_rate_hz)
    s = cod.encode(clip)
    out = cod.decode(s, None, "opus-plc").audio
    dec = _Decoder(cod.lib, cod.sample_rate_hz)
    ref = np.concatenate([dec.decode(p.payload, 5760) for p in s.packets]).astype(np.float32) / 32768.0
    d = cod.delay_samples
    assert np.array_equal(out, np.clip(ref[d : d + clip.num_samples], -1, 1))
    assert s.num_samples == clip.num_samples and out.shape == (clip.num_samples,)


def test_opus_bitrate_is_measured_from_payloads(clip):
    s = make_codec("opus:bitrate=16000,vbr=false").encode(clip)
    assert s.payload_kbps == pytest.approx(16.0, rel=0.06)
    assert s.header_kbps == pytest.approx(40 * 8 * 50 / 1000, rel=0.02)
    assert s.bitrate_kbps == pytest.approx(s.payload_kbps + s.header_kbps)


@pytest.mark.parametrize("lib", ["build", "system"])
def test_lbrr_flag_matches_what_the_decoder_does(clip, lib):
    """Where packet_has_lbrr says yes, FEC decoding differs from PLC; where no, it is PLC."""
    s = make_codec(f"opus:bitrate=24000,fec=1,loss_perc=10,lib={lib}").encode(clip)
    pk = [p.payload for p in s.packets]
    checked = {True: 0, False: 0}
    for i in range(20, 80):
        a, b = _Decoder(libopus(lib), 16000), _Decoder(libopus(lib), 16000)
        for j in range(i - 5, i - 1):
            a.decode(pk[j], 320)
            b.decode(pk[j], 320)
        fec = a.decode(pk[i], 320, fec=True)
        plc = b.decode(None, 320)
        has = packet_has_lbrr(pk[i])
        assert has == (not np.array_equal(fec, plc)), i
        checked[has] += 1
    assert checked[True] > 10
    low = make_codec(f"opus:bitrate=9000,fec=1,loss_perc=10,lib={lib}").encode(clip)
    assert low.meta["lbrr_present"] is False and s.meta["lbrr_present"] is True


def test_opus_fec_recovers_what_plc_cannot(clip):
    from lossbench.metrics import compute_metrics

    cod = make_codec("opus:bitrate=24000,fec=1")
    s = cod.encode(clip)
    rec = Reception.from_lost(lost_mask(s.num_packets, 0.2))
    fec = cod.decode(s, rec, "opus-fec")
    plc = cod.decode(s, rec, "opus-plc")
    assert fec.info["lbrr_recovered_frames"] > 20
    p_fec = compute_metrics(fec.audio, clip.samples, 16000, ["pesq_wb"])["pesq_wb"]
    p_plc = compute_metrics(plc.audio, clip.samples, 16000, ["pesq_wb"])["pesq_wb"]
    assert p_fec > p_plc + 0.3
    # where there is no LBRR, opus-fec is exactly PLC
    cod9 = make_codec("opus:bitrate=9000,fec=1")
    s9 = cod9.encode(clip)
    r9 = Reception.from_lost(lost_mask(s9.num_packets, 0.2))
    assert np.array_equal(cod9.decode(s9, r9, "opus-fec").audio, cod9.decode(s9, r9, "opus-plc").audio)


def test_opus_dtx_sends_fewer_packets(clip):
    x = np.concatenate([clip.samples, np.zeros(32000, np.float32)])
    c = Clip("pad", x, 16000)
    s = make_codec("opus:bitrate=16000,dtx=1").encode(c)
    assert s.meta["dtx_frames"] > 50 and s.num_packets < s.meta["frames"]
    out = make_codec("opus:bitrate=16000,dtx=1").decode(s, None, "opus-plc").audio
    assert out.shape == (c.num_samples,) and np.isfinite(out).all()


@pytest.mark.parametrize("mode", range(9))
def test_amrwb_every_mode_lossless_equals_decoder(mode, clip):
    cod = make_codec(f"amrwb:mode={mode}")
    short = Clip("s", clip.samples[:16000], 16000)
    s = cod.encode(short)
    out = cod.decode(s, None, "amrwb-bfi").audio
    _, dec = _libs()
    st = dec.D_IF_init()
    synth = np.zeros(320, np.int16)
    ref = []
    for p in s.packets:
        dec.D_IF_decode(st, p.payload, synth.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), 0)
        ref.append(from_int16(synth))
    dec.D_IF_exit(st)
    ref = np.concatenate(ref)
    assert np.array_equal(out, ref[94 : 94 + 16000])
    assert s.payload_kbps == pytest.approx(cod.kbps + 8 * 50 / 1000 * 1, rel=0.08)  # + the 1-byte header


def test_corrupt_payloads_are_treated_as_lost(clip):
    from lossbench.core import EncodedStream, Packet

    for spec, junk in (("pcm", b"\x00\x01\x02"), ("opus:bitrate=16000", b"\xff"), ("amrwb:mode=2", b"\x14\x00")):
        cod = make_codec(spec)
        s = cod.encode(clip)
        pk = list(s.packets)
        pk[10] = Packet(10, pk[10].send_time_s, junk, pk[10].frames, pk[10].kind)
        bad = EncodedStream(s.codec, s.config, s.sample_rate_hz, s.num_samples, s.frame_duration_s, tuple(pk),
                            s.header_bytes, s.meta)
        for con in cod.concealments:
            r = cod.decode(bad, None, con)
            assert r.missing[10] and r.missing.sum() == 1, (spec, con)
            assert np.isfinite(r.audio).all()


def test_concealment_checks(clip):
    cod = make_codec("amrwb")
    with pytest.raises(ConfigError, match="does not support concealment 'opus-plc'; valid: 'amrwb-bfi'"):
        cod.decode(cod.encode(clip), None, "opus-plc").audio
    assert set(cod.concealments) == {"amrwb-bfi", "zeros", "repeat", "waveform-substitution", "noise-fill"}


def test_wrong_sample_rate_is_an_audio_error():
    with pytest.raises(AudioError, match="is at 48000 Hz but codec 'amrwb' runs at 16000 Hz"):
        make_codec("amrwb").encode(Clip("x", np.zeros(4800), 48000))


@pytest.mark.parametrize("spec, message", [
    ("opus:bitrate=1000", "bitrate must lie in"), ("opus:frame_ms=25", "frame_ms must be one of"),
    ("opus:application=phone", "application must be one of"), ("amrwb:mode=9", "mode must be an integer 0..8"),
    ("amrwb:kbps=13", "kbps must be one of"), ("pcm:sample_rate_hz=11000", "sample_rate_hz must be one of"),
    ("pcm:xor=1", "use xor >= 2"), ("pcm:red=-1", "red must be an integer >= 0"),
])
def test_bad_codec_parameters(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_codec(spec)
