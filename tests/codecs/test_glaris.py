"""The Glaris-style transceiver: shipped weights, bit-exact lossless decoding, side information
recovered from copies, receiver PMFs equal to the sender's under loss, corrupt payloads, training."""

import json
from dataclasses import replace

import numpy as np
import pytest
import safetensors.torch  # noqa: F401  (imported before the network is switched off)
import torch

from lossbench.codecs import make_codec
from lossbench.codecs.glaris.codec import gaussian_pmfs
from lossbench.codecs.glaris.weights import load_glaris
from lossbench.codecs.glaris.model import Glaris, GlarisConfig, glaris_losses, random_masks
from lossbench.codecs.glaris.train import GlarisTrainConfig, train_glaris
from lossbench.codecs.neural.tokens import codec_sha
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError


@pytest.fixture(scope="module")
def clip():
    return Clip("c", default_corpus()[7].load(16000).samples[: int(2.5 * 16000)], 16000)


def test_weights_load_with_the_network_off(network_off):
    load_glaris.cache_clear()

    m = load_glaris(None, "waveform")
    assert m.cfg.codebook_size == 1024 and m.cfg.q_num == 64
    assert m.codec_sha == codec_sha(backbone="waveform"), "the shipped Glaris modules were trained on another codec's latents"


def _symbols(cod, y_hat):
    """y^ (T, y_dim) -> the integer symbols y^Q = g_q y^ it was dequantised from."""
    g = cod.glaris.gain(torch.tensor([cod.q]))[0, :, 0].numpy()
    return np.round(y_hat * g).astype(np.int64)


def _decoded_y(cod, s, usable):
    """The receiver's y^Q (integer symbols) and which frames it entropy-decoded, by re-running its decode."""
    frames = cod.receive(s, Reception.from_lost(~usable) if usable is not None else None).frames
    captured = {}
    orig = cod.glaris.synthesis

    def spy(y_hat, q):
        captured["y"] = y_hat[0].T.numpy().copy()
        return orig(y_hat, q)

    cod.glaris.synthesis = spy
    try:
        _, lost, _ = cod.decode_frames(frames, "zero-y")
    finally:
        cod.glaris.synthesis = orig
    return _symbols(cod, captured["y"]), lost


@pytest.mark.parametrize("spec", ["glaris:backbone=waveform", "glaris:backbone=waveform,q=0,side=1,offsets=none", "glaris:backbone=waveform,q=63,side=3,offsets=1/2/7"])
def test_lossless_round_trip_is_bit_exact(clip, spec):
    cod = make_codec(spec)
    s = cod.encode(clip)
    n = cod.n_frames(clip.num_samples)
    x = cod.padded_input(clip)
    yq, codes, _ = cod.analyse(x)
    y, lost = _decoded_y(cod, s, None)
    assert not lost.any() and np.array_equal(y, yq)
    # copies: the theoretical redundant bitrate 0.5 Q |K| kbit/s (less at the start, before the offsets exist)
    theory = 0.5 * cod.side * len(cod.offsets) * n * 0.02 / (clip.num_samples / 16000)
    assert s.meta["fec_kbps"] <= theory + 1e-9 and s.meta["fec_kbps"] >= theory * (1 - max(cod.offsets, default=0) / n) - 1e-9
    a = cod.decode(s, None, "side-info-plc").audio
    b = cod.decode(s, None, "zeros").audio
    assert np.array_equal(a, b)  # nothing to conceal: every concealment decodes the same


def test_received_frames_decode_exactly_under_loss_and_copies_restore_z(clip):
    cod = make_codec("glaris:backbone=waveform,side=2,offsets=1/13")
    s = cod.encode(clip)
    n = s.num_packets
    x = cod.padded_input(clip)
    yq, _, _ = cod.analyse(x)
    usable = np.random.default_rng(4).random(n) >= 0.3
    y, lost = _decoded_y(cod, s, usable)
    # a frame is entropy-decoded when its packet arrived and z_{t-1} is known (own packet's copy k=1)
    assert np.array_equal(lost, ~usable)
    assert np.array_equal(y[usable], yq[usable])
    info = cod.decode(s, Reception.from_lost(~usable), "side-info-plc").info
    assert info["z_from_copies"] > 0 and info["z_missing_frames"] < (~usable).sum()
    outs = {c: cod.decode(s, Reception.from_lost(~usable), c).audio for c in ("side-info-plc", "prior-mean", "zero-y", "repeat")}
    assert all(np.isfinite(o).all() and o.shape == (clip.num_samples,) for o in outs.values())
    assert not np.allclose(outs["side-info-plc"], outs["zero-y"])


def test_corrupt_payloads_are_lost_not_crashes(clip):
    cod = make_codec("glaris:backbone=waveform")
    s = cod.encode(clip)
    rng = np.random.default_rng(2)
    bad = []
    for i, p in enumerate(s.packets):
        pay = p.payload
        if i % 4 == 0:
            pay = bytes(rng.integers(0, 256, len(pay), dtype=np.uint8))
        elif i % 4 == 1:
            pay = pay[:-3]
        bad.append(replace(p, payload=pay))
    r = cod.decode(replace(s, packets=tuple(bad)), None, "side-info-plc")
    assert np.isfinite(r.audio).all() and r.info["corrupt_payloads"] >= len(bad) // 2 - 1


def test_gaussian_pmfs_are_normalised_and_centred():
    p = gaussian_pmfs(np.array([0.0, 3.2, -50.0]), np.array([1.0, 0.3, 2.0]), 10)
    assert p.shape == (3, 21) and np.allclose(p.sum(1), 1.0)
    assert p[0].argmax() == 10 and p[1].argmax() == 13 and p[2, 0] > 0.99  # tails fold into the end bins


@pytest.mark.parametrize("spec, match", [("glaris:backbone=waveform,q=64", "q must"), ("glaris:backbone=waveform,side=0", "side"),
                                         ("glaris:backbone=waveform,offsets=0/1", "offsets"), ("glaris:backbone=waveform,offsets=a", "offsets")])
def test_bad_parameters_name_the_value(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_codec(spec)


TINY = GlarisConfig(latent_dim=16, y_dim=8, z_dim=8, hidden=32, z_quantizers=2, codebook_size=32, cp_layers=2)


def test_losses_and_masks():
    gen = torch.Generator().manual_seed(0)
    my, mz = random_masks(64, 50, gen)
    frac = my.float().mean(1)
    assert 0.0 <= float(frac.min()) and float(frac.max()) <= 0.9 and not (mz & ~my).any()
    m = Glaris(TINY)
    l = torch.randn(4, 16, 30)
    codes = torch.randint(0, 32, (4, 24, 30))
    out = glaris_losses(m, l, codes, torch.tensor([0, 10, 40, 63]), torch.tensor([1, 2, 1, 2]), gen)
    assert torch.isfinite(out["loss"]) and out["bits"] > 0
    out["loss"].backward()
    assert m.g_a.inp.weight.grad is not None and m.f_plc.inp.weight.grad is not None


def test_training_is_deterministic_resumes_and_learns(tmp_path, monkeypatch):
    import lossbench.codecs.glaris.train as gt

    cbs = torch.randn(24, 32, 16)
    monkeypatch.setattr(gt, "codebooks", lambda backbone="waveform": cbs)
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 32, (4000, 24))
    toks[:, 1:] = toks[:, :1]  # structure to learn
    kw = dict(batch=8, frames=32, ckpt_every=25, eval_every=1000, lr=3e-3, warmup=5)
    train_glaris(tmp_path, tmp_path / "a", GlarisTrainConfig(steps=60, **kw), TINY, toks, toks, threads=1, progress=False)
    train_glaris(tmp_path, tmp_path / "b", GlarisTrainConfig(steps=50, **kw), TINY, toks, toks, threads=1, progress=False)
    train_glaris(tmp_path, tmp_path / "b", GlarisTrainConfig(steps=60, **kw), TINY, toks, toks, threads=1, progress=False)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["mse_rec"] < 1.0  # relative MSE: below "predict nothing"
    ev = [json.loads(x) for x in (tmp_path / "a" / "eval.jsonl").read_text().splitlines()]
    assert ev[-1]["step"] == 60 and set(ev[-1]) >= {"kbps@0", "mse@63", "mse_loss20@32"}


def test_rate_index_sets_the_quantisation_step():
    """Gain units: q = 0 quantises y finely (more distinct symbols, more bits), q = 63 coarsely; the
    gains are fixed (a buffer saved with the weights), the straight-through quantiser passes gradients to y."""
    cfg = replace(TINY, gain_max=4.0, gain_min=0.25)
    m = Glaris(cfg)
    y = torch.randn(2, cfg.y_dim, 40) * 2
    q0, q63 = torch.tensor([0, 0]), torch.tensor([63, 63])
    assert torch.allclose(m.gain(q0), torch.full((2, cfg.y_dim, 1), 4.0))
    assert torch.allclose(m.gain(q63), torch.full((2, cfg.y_dim, 1), 0.25))
    fine, coarse = m.quantize(y, q0), m.quantize(y, q63)
    assert len(torch.unique(fine)) > 3 * len(torch.unique(coarse))
    err0 = (m.dequantize(fine, q0) - y).abs().max()
    err63 = (m.dequantize(coarse, q63) - y).abs().max()
    assert err0 <= 0.125 + 1e-6 and err63 <= 2.0 + 1e-6 and err63 > 4 * err0
    yv = y.clone().requires_grad_(True)
    out = m.quantize_ste(yv, q63)
    assert torch.allclose(out, m.dequantize(coarse, q63))
    out.sum().backward()
    assert torch.equal(yv.grad, torch.ones_like(y))
    assert "log_gain" in m.state_dict() and not any(p is m.log_gain for p in m.parameters())


def test_side_info_plc_beats_zero_y_on_a_gap_in_a_real_clip():
    """Side-info PLC promises a better guess of a lost frame's latent than y = 0 (the paper's Fig. 5): on a
    real held-in clip of the default corpus, with 6 single losses and a burst of 4, the latent error over the
    lost frames is lower, with z copies (offsets 1/13) carrying the side information of the lost frames."""
    clip = Clip("c", default_corpus()[3].load(16000).samples[: 4 * 16000], 16000)
    cod = make_codec("glaris:backbone=waveform,q=32,side=2,offsets=1/13")
    s = cod.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[[20, 45, 70, 95, 120, 150]] = True
    lost[170:174] = True
    captured = {}
    orig = cod.glaris.synthesis

    def spy(y_hat, q):
        out = orig(y_hat, q)
        captured["l"] = out[0].T.numpy().copy()
        return out

    cod.glaris.synthesis = spy
    try:
        cod.decode(s, None, "zero-y").audio
        clean = captured["l"]
        err = {}
        for c in ("side-info-plc", "zero-y"):
            cod.decode(s, Reception.from_lost(lost), c).audio
            err[c] = float(((captured["l"] - clean)[lost] ** 2).mean())
    finally:
        cod.glaris.synthesis = orig
    assert err["side-info-plc"] < 0.5 * err["zero-y"], err  # 0.10 against 1.24 with the shipped modules


def test_zero_z_is_the_plc_without_the_lost_frames_side_information(clip):
    """Fig. 5d (zero-z): the same PLC as side-info-plc, fed zeros for the side information of the frames that lost
    y. Without loss it is every other concealment; under loss it differs from side-info-plc only at lost frames and
    after them (the PLC's causal context), and the received frames before the first loss are untouched."""
    cod = make_codec("glaris:q=48,side=1,offsets=1")
    s = cod.encode(clip)
    assert np.array_equal(cod.decode(s, None, "zero-z").audio, cod.decode(s, None, "side-info-plc").audio)
    lost = np.zeros(s.num_packets, bool)
    lost[[40, 41, 90]] = True
    rec = Reception.from_lost(lost)
    z, si = cod.decode(s, rec, "zero-z"), cod.decode(s, rec, "side-info-plc")
    assert np.isfinite(z.audio).all() and not np.allclose(z.audio, si.audio)
    first = 40 * cod.frame_samples - cod.delay_samples
    assert np.array_equal(z.audio[:first], si.audio[:first])
    assert z.info["z_missing_frames"] == si.info["z_missing_frames"]
