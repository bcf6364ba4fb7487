"""Glaris on the fargan backbone: lossless y and pitch tokens, pitch travelling with the side information
(and its copies), held over frames whose side information never came, wrong-backbone refusal, garbage.

The Glaris modules here are small and untrained: the entropy coding must be bit-exact under any model,
which is what these tests check; quality is the shipped modules' card's business.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from lossbench.codecs import make_codec
from lossbench.codecs.glaris.codec import hold_missing
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from lossbench.codecs.glaris.model import Glaris, GlarisConfig
    from lossbench.codecs.glaris.train import export_glaris
    from tests.conftest import make_tiny_fargan_weights

    d = tmp_path_factory.mktemp("glf")
    codec_w = make_tiny_fargan_weights(d)
    torch.manual_seed(0)
    cfg = GlarisConfig(latent_dim=16, y_dim=8, z_dim=8, hidden=32, z_quantizers=3, gain_max=4.0, gain_min=0.25,
                       y_range=64)
    m = Glaris(cfg)
    paths = {}
    for bb in ("fargan", "waveform"):
        torch.save({"model": m.state_dict(), "step": 0, "model_cfg": cfg.to_dict(), "codec_sha": "test",
                    "backbone": bb}, d / f"g_{bb}.pt")
        paths[bb] = export_glaris(d / f"g_{bb}.pt", d / f"glaris_{bb}.safetensors")
    return codec_w, paths["fargan"], paths["waveform"]


@pytest.fixture(scope="module")
def clip():
    c = default_corpus()[5].load(16000)
    return replace(c, samples=c.samples[: 3 * 16000])


def _spec(models, extra="q=20,side=2,offsets=1/13"):
    codec_w, gw, _ = models
    return f"glaris:backbone=fargan,weights={codec_w},glaris_weights={gw},{extra}"


def _capture(cod, s, rec):
    """The decoded y^ symbols, y-loss flags and the pitch tokens the receiver voiced with."""
    frames = cod.receive(s, rec).frames
    got = {}
    orig_syn, orig_voice = cod.glaris.synthesis, cod._voice

    def syn(y_hat, q):
        got["y"] = np.round(y_hat[0].T.numpy() * cod.glaris.gain(q)[0, :, 0].numpy()).astype(np.int64)
        return orig_syn(y_hat, q)

    def voice(l_hat, pitch):
        got["pitch"] = pitch.copy()
        return orig_voice(l_hat, pitch)

    cod.glaris.synthesis, cod._voice = syn, voice
    try:
        _, lost, _ = cod.decode_frames(frames, "side-info-plc")
    finally:
        cod.glaris.synthesis, cod._voice = orig_syn, orig_voice
    return got["y"], lost, got["pitch"]


@pytest.mark.parametrize("extra", ["q=20,side=2,offsets=1/13", "q=60,side=1,offsets=none"])
def test_lossless_round_trip_is_bit_exact_with_exact_pitch(models, clip, extra):
    cod = make_codec(_spec(models, extra))
    s = cod.encode(clip)
    n = cod.n_frames(clip.num_samples)
    x = cod.padded_input(clip)
    yq, side, _ = cod.analyse(x)
    assert side.shape == (n, cod.side + 2)
    tokens = cod.backbone.encode(x)
    assert np.array_equal(side[:, cod.side :], tokens[:, :2])  # the pitch tokens are the backbone's own
    y, lost, pitch = _capture(cod, s, None)
    assert not lost.any() and np.array_equal(y, yq) and np.array_equal(pitch, tokens[:, :2])
    # side information: (Q + 2 pitch tokens) x 10 bits per frame, and the same per copy
    dur = clip.num_samples / 16000
    assert s.meta["side_kbps"] == pytest.approx(0.5 * (cod.side + 2) * n * 0.02 / dur)
    copies = sum(1 for t in range(n) for k in cod.offsets if t - k >= 0)
    assert s.meta["fec_kbps"] == pytest.approx(10 * (cod.side + 2) * copies / dur / 1000)
    a = cod.decode(s, None, "side-info-plc").audio
    assert np.isfinite(a).all() and a.shape == clip.samples.shape and np.abs(a).max() > 0.01


def test_pitch_comes_from_copies_and_is_held_where_none_arrived(models, clip):
    cod = make_codec(_spec(models))
    s = cod.encode(clip)
    n = s.num_packets
    x = cod.padded_input(clip)
    _, side, _ = cod.analyse(x)
    truth = side[:, cod.side :]
    lost = np.zeros(n, bool)
    lost[20] = True  # its copy comes in packet 21
    lost[40:44] = True  # 40..42 come from copies in 41..43 only if those arrived: 43 is lost too, its copy in 44
    lost[60:80] = True  # copies at +1 are lost; +13 brings back 60..66 (in 73..79 lost) -> none; 67..79 via 80..92
    y, ylost, pitch = _capture(cod, s, Reception.from_lost(lost))
    assert np.array_equal(ylost, lost)
    assert np.array_equal(pitch[20], truth[20]) and np.array_equal(pitch[40:44], truth[40:44])
    assert np.array_equal(pitch[67:80], truth[67:80])
    # 60..66: no copy survived (offset 1 in a lost packet, offset 13 in 73..79, lost): held from frame 59
    assert (pitch[60:67] == truth[59]).all()


def test_hold_missing():
    v = np.array([[1], [2], [3], [4], [5]])
    assert hold_missing(v, np.array([True, False, False, True, False]))[:, 0].tolist() == [1, 1, 1, 4, 4]
    assert hold_missing(v, np.array([False, False, True, True, True]))[:, 0].tolist() == [3, 3, 3, 4, 5]
    assert hold_missing(v, np.zeros(5, bool))[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_garbage_payloads_are_lost_not_crashes(models, clip):
    cod = make_codec(_spec(models))
    s = cod.encode(clip)
    rng = np.random.default_rng(3)
    bad = [replace(p, payload=bytes(rng.integers(0, 256, len(p.payload), dtype=np.uint8)) if i % 3 == 0
                   else p.payload[:2] if i % 3 == 1 else p.payload) for i, p in enumerate(s.packets)]
    r = cod.decode(replace(s, packets=tuple(bad)), None, "side-info-plc")
    assert np.isfinite(r.audio).all() and r.info["corrupt_payloads"] >= 2 * len(bad) // 3 - 1


def test_modules_of_the_other_backbone_are_refused(models):
    codec_w, _, gwave = models
    with pytest.raises(ConfigError, match="'waveform' backbone's latents"):
        make_codec(f"glaris:backbone=fargan,weights={codec_w},glaris_weights={gwave}")
    with pytest.raises(ConfigError, match="backbone must be one of fargan, waveform, got 'wav'"):
        make_codec(f"glaris:backbone=wav,glaris_weights={gwave}")


def test_training_on_fargan_latents_runs_and_records_the_backbone(models, tmp_path):
    from lossbench.codecs.glaris.model import GlarisConfig
    from lossbench.codecs.glaris.train import GlarisTrainConfig, codebooks, latents_of, train_glaris

    cbs = codebooks("fargan")  # the shipped quantiser's 22 RVQ layers
    assert cbs.shape[0] == 22 and cbs.shape[2] == 64
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 896, (400, 24)).astype(np.int16)
    lat = latents_of(toks[:, 2:], cbs)
    assert lat.shape == (400, 64)
    cfg = GlarisTrainConfig(steps=4, batch=2, frames=24, eval_every=4, ckpt_every=4, backbone="fargan")
    ck = train_glaris(tmp_path, tmp_path / "run", cfg, GlarisConfig(y_dim=8, z_dim=8, hidden=32, z_quantizers=2),
                      tokens=toks, valid=toks[:300], progress=False)
    st = torch.load(ck, map_location="cpu", weights_only=False)
    assert st["backbone"] == "fargan" and st["model_cfg"]["latent_dim"] == 64
    ev = [json.loads(x) for x in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert ev and np.isfinite(ev[-1]["mse@32"])
    with pytest.raises(ConfigError, match="'fargan' backbone's latents"):
        train_glaris(tmp_path, tmp_path / "run", replace(cfg, backbone="waveform"), tokens=toks, valid=toks[:300],
                     progress=False)


def test_the_shipped_fargan_glaris_loads_offline_and_matches_the_shipped_codec(network_off):
    from lossbench.codecs.glaris.weights import load_glaris
    from lossbench.codecs.neural.tokens import codec_sha

    load_glaris.cache_clear()

    m = load_glaris(None, "fargan")
    assert m.cfg.latent_dim == 64
    assert m.codec_sha == codec_sha(backbone="fargan"), "the shipped fargan Glaris was trained on another codec's latents"
