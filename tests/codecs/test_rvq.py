"""The neural RVQ codec: shipped weights, bit-exact packets, streaming = offline,
determinism, concealment, and resumable deterministic training."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.codecs import make_codec
from lossbench.codecs.neural import load_model
from lossbench.codecs.neural.model import CodecConfig, StreamingCodec
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def clip():
    return Clip("c", default_corpus()[3].load(16000).samples[: 3 * 16000], 16000)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 1023), min_size=1, max_size=24))
def test_pack_unpack_is_lossless(idx):
    data = pack_indices(np.array(idx))
    assert len(data) == -(-len(idx) * 10 // 8)
    assert unpack_indices(data, len(idx)).tolist() == idx


def test_weights_load_with_the_network_off(network_off):
    load_model.cache_clear()

    m = load_model(None, "waveform")
    assert m.cfg.num_quantizers == 24 and m.cfg.codebook_size == 1024 and m.cfg.hop == 320


@pytest.mark.parametrize("layers", [1, 3, 12, 24])
def test_packets_carry_the_indices_bit_exactly(clip, layers):
    cod = make_codec(f"rvq:backbone=waveform,layers={layers}")
    s = cod.encode(clip)
    n = cod.n_frames(clip.num_samples)
    x = cod.padded_input(clip)
    codes = cod.encode_codes(x)
    assert codes.shape == (n, layers) and codes.max() < 1024
    got = np.stack([unpack_indices(p.payload, layers) for p in s.packets])
    assert np.array_equal(got, codes)
    assert s.payload_bytes == n * -(-10 * layers // 8)  # 10 bits per index, padded to a byte per frame
    # decoding all packets equals decoding the codes directly
    y = cod.decode(s).audio
    with torch.no_grad():
        ref = cod.backbone.model.decode_codes(torch.from_numpy(codes.T.copy()).unsqueeze(0))[0, 0].numpy()
    assert np.array_equal(y, np.clip(ref[320 : 320 + clip.num_samples], -1, 1))


def test_rvq_encoding_is_deterministic(clip):
    a = make_codec("rvq:backbone=waveform,layers=12").encode(clip)
    b = make_codec("rvq:backbone=waveform,layers=12").encode(clip)
    assert [p.payload for p in a.packets] == [p.payload for p in b.packets]


def test_streaming_equals_offline_with_shipped_weights(clip):
    m = load_model(None, "waveform")
    x = torch.from_numpy(clip.samples[: 40 * 320].copy()).view(1, 1, -1)
    with torch.no_grad():
        z = m.encoder(x)[0]
        y = m.decoder(z.unsqueeze(0))[0, 0]
    s = StreamingCodec(m)
    es = ds = None
    zs, ys = [], []
    for t in range(40):
        zt, es = s.encode_frame(x[0, 0, t * 320 : (t + 1) * 320], es)
        yt, ds = s.decode_frame(zt, ds)
        zs.append(zt)
        ys.append(yt)
    # equal up to float32 rounding (chunked and whole-signal convolutions sum in different orders)
    scale = float(z.abs().max())
    assert torch.allclose(torch.stack(zs, 1), z, rtol=1e-4, atol=1e-5 * scale)
    assert torch.allclose(torch.cat(ys), y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 10, 40])
def test_chunked_streaming_equals_offline(clip, chunk):
    """The streaming path's convolution kernels (unfolded products or conv1d, by chunk size) = the offline model."""
    m = load_model(None, "waveform")
    x = torch.from_numpy(clip.samples[: 80 * 320].copy()).view(1, 1, -1)
    with torch.no_grad():
        z = m.encoder(x)
        fr = m.decoder.frames(z)
        ec = dc = None
        zs, frs = [], []
        for s in range(0, 80, chunk):
            zt, ec = m.encoder.stream(x[..., s * 320 : (s + chunk) * 320], ec)
            ft, dc = m.decoder.stream_frames(zt, dc)
            zs.append(zt)
            frs.append(ft)
    scale = float(z.abs().max())
    assert torch.allclose(torch.cat(zs, -1), z, rtol=1e-4, atol=1e-5 * scale)
    assert torch.allclose(torch.cat(frs, 1), fr, rtol=1e-4, atol=1e-4 * float(fr.abs().max()))


def test_concealments_and_corrupt_payloads(clip):
    from lossbench.core import EncodedStream, Packet

    cod = make_codec("rvq:backbone=waveform,layers=6")
    s = cod.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[10:14] = True
    rec = Reception.from_lost(lost)
    outs = {}
    for c in cod.concealments:
        r = cod.decode(s, rec, c)
        assert r.missing.sum() == 4 and np.isfinite(r.audio).all() and r.audio.shape == (clip.num_samples,)
        outs[c] = r.audio
    assert not np.array_equal(outs["zero-latent"], outs["repeat-latent"])
    pk = list(s.packets)
    pk[5] = Packet(5, pk[5].send_time_s, pk[5].payload[:-1], pk[5].frames)
    bad = EncodedStream(s.codec, s.config, s.sample_rate_hz, s.num_samples, s.frame_duration_s, tuple(pk))
    r = cod.decode(bad, None, "zero-latent")
    assert r.missing.tolist().count(True) == 1 and r.missing[5]


def _tiny_data(tmp_path):
    from lossbench.audio import save_audio

    refs = default_corpus()
    lines = []
    for i, r in enumerate(refs[:3]):
        split = "valid" if i == 0 else "train"
        f = f"{split}/{r.id}.flac"
        save_audio(tmp_path / f, r.load(16000).samples[:32000], 16000)
        lines.append(json.dumps({"file": f, "split": split, "speaker": r.id, "duration_s": 2.0}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_training_is_deterministic_and_resumable(tmp_path):
    from lossbench.codecs.neural.train import TrainConfig, train_codec

    data = _tiny_data(tmp_path / "data")
    mc = CodecConfig(enc_channels=(4, 8, 8, 8, 16), enc_dilations=(1,), latent_dim=8, num_quantizers=3,
                     codebook_size=8, dec_dim=16, dec_hidden=16, dec_blocks=1)
    kw = dict(batch=2, seconds=0.2, eval_every=10_000, ckpt_every=2, eval_clips=1, adv_start=3)
    train_codec(data, tmp_path / "a", TrainConfig(steps=4, **kw), mc, threads=1, progress=False)
    train_codec(data, tmp_path / "b", TrainConfig(steps=2, **kw), mc, threads=1, progress=False)
    train_codec(data, tmp_path / "b", TrainConfig(steps=4, **kw), mc, threads=1, progress=False)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ev = [json.loads(x) for x in (tmp_path / "a" / "eval.jsonl").read_text().splitlines()]
    assert ev[-1]["step"] == 4 and "pesq_wb@3" in ev[-1]


def test_warm_start_from_exported_weights(tmp_path):
    from lossbench.codecs.neural.train import TrainConfig, export_weights, init_from_weights

    data = _tiny_data(tmp_path / "data")
    mc = CodecConfig(enc_channels=(4, 8, 8, 8, 16), enc_dilations=(1,), latent_dim=8, num_quantizers=3,
                     codebook_size=8, dec_dim=16, dec_hidden=16, dec_blocks=1)
    from lossbench.codecs.neural.train import train_codec

    ck = train_codec(data, tmp_path / "a", TrainConfig(steps=2, batch=2, seconds=0.2, eval_every=100, eval_clips=1),
                     mc, threads=1, progress=False)
    w = export_weights(ck, tmp_path / "w.safetensors")
    from lossbench.codecs.neural.model import NeuralCodec

    m = NeuralCodec(mc)
    init_from_weights(m, w)
    trained = torch.load(ck, weights_only=False)["model"]
    for k, v in m.state_dict().items():
        if k.endswith(("embed_sum", "cluster_size", "initted")):
            continue
        assert torch.allclose(v, trained[k].half().float()), k


def test_repeat_latent_decays_and_zero_latent_zeroes(clip):
    """The promise of each strategy, on the latents the decoder gets: repeat-latent holds the last good
    latent with gain decay^k in the k-th lost frame; zero-latent decodes zeros; received frames are exact."""
    cod = make_codec("rvq:backbone=waveform,layers=6,decay=0.7")
    s = cod.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[10:14] = True
    seen = {}
    orig = cod.decode_latents

    def spy(lat):
        seen["lat"] = lat.copy()
        return orig(lat)

    cod.decode_latents = spy
    lats = {}
    for c in ("repeat-latent", "zero-latent"):
        cod.decode(s, Reception.from_lost(lost), c)
        lats[c] = seen["lat"]
    cod.decode(s, None, "zero-latent")
    full = seen["lat"]
    rep, zero = lats["repeat-latent"], lats["zero-latent"]
    assert np.abs(full[9]).max() > 0
    for k in range(1, 5):
        assert np.allclose(rep[9 + k], full[9] * 0.7**k, rtol=1e-6, atol=1e-7)
    assert (zero[10:14] == 0).all()
    keep = ~lost
    assert np.array_equal(rep[keep], full[keep]) and np.array_equal(zero[keep], full[keep])
