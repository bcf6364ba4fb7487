"""SoundSpring on the fargan backbone's tokens: bit-exact slice coding, concealment, wrong-backbone refusal.

The masked LM here is small and untrained: range coding must be bit-exact under any model, which is what
these tests check; quality is the shipped models' card's business.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lossbench.codecs import make_codec
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from safetensors.torch import save_file

    from lossbench.codecs.soundspring.mlm import MaskedTokenLM, MLMConfig
    from tests.conftest import make_tiny_fargan_weights

    d = tmp_path_factory.mktemp("ssf")
    codec_w = make_tiny_fargan_weights(d)
    torch.manual_seed(0)
    cfg = MLMConfig(dim=32, depth=1, heads=2, ff=64)
    mlm = MaskedTokenLM(cfg)
    meta = {"model_cfg": json.dumps(cfg.to_dict()), "step": "0", "codec_sha": "test", "backbone": "fargan"}
    save_file({k: v.contiguous() for k, v in mlm.state_dict().items()}, str(d / "mlm.safetensors"), metadata=meta)
    meta["backbone"] = "waveform"
    save_file({k: v.contiguous() for k, v in mlm.state_dict().items()}, str(d / "mlm_wave.safetensors"), metadata=meta)
    return codec_w, d / "mlm.safetensors", d / "mlm_wave.safetensors"


@pytest.fixture(scope="module")
def clip():
    return default_corpus()[4].load(16000)


def _spec(models, extra="layers=12"):
    codec_w, mlm_w, _ = models
    return f"soundspring:backbone=fargan,weights={codec_w},mlm_weights={mlm_w},{extra}"


@pytest.mark.parametrize("extra", ["layers=12", "layers=24,pack=slice,fec=same", "mode=gos,gos=40,slices=4,layers=6"])
def test_lossless_reception_reproduces_the_tokens_bit_for_bit(models, clip, extra):
    cod = make_codec(_spec(models, extra))
    s = cod.encode(clip)
    n = cod.n_frames(clip.num_samples)
    x = cod.padded_input(clip)
    toks = cod.tokens(x)
    rec = cod.receive_tokens(s, None)
    K = cod.layers
    assert rec.corrupt == 0 and np.array_equal(rec.tokens[:, :K], toks[:, :K])
    # decoding equals voicing the latent the tokens sum to, with the fargan alignment (no decoder hop)
    ref = cod.decode_latents(cod.latents(toks, np.full(n, K)))[cod.delay_samples : cod.delay_samples + clip.num_samples]
    y = cod.decode(s, None, "mlm").audio
    assert np.allclose(y, np.clip(ref, -1, 1), atol=1e-6)


def test_losses_are_concealed_by_the_mlm_without_crashing(models, clip):
    cod = make_codec(_spec(models))
    s = cod.encode(clip)
    lost = np.zeros(s.num_packets, bool)
    lost[10:14] = True
    clean = cod.decode(s).audio
    out = {}
    for conc in ("mlm", "mlm-soft", "zero-token", "waveform-substitution"):
        r = cod.decode(s, Reception.from_lost(lost), conc)
        assert np.isfinite(r.audio).all() and r.audio.shape == clip.samples.shape
        assert r.missing.sum() > 0  # the lost packets' frames are reported
        out[conc] = r.audio
    # every concealment changes the audio, and no two of them give the same: each ran its own rule
    assert all(not np.array_equal(a, clean) for a in out.values())
    assert len({a.tobytes() for a in out.values()}) == len(out)


def test_an_mlm_of_the_other_backbone_is_refused(models):
    codec_w, _, mlm_wave = models
    with pytest.raises(ConfigError, match="'waveform' backbone's tokens"):
        make_codec(f"soundspring:backbone=fargan,weights={codec_w},mlm_weights={mlm_wave}")


def test_the_shipped_fargan_mlm_loads_offline_and_matches_the_shipped_codec(network_off):
    from lossbench.codecs.neural.tokens import codec_sha
    from lossbench.codecs.soundspring.weights import load_mlm

    load_mlm.cache_clear()

    m = load_mlm(None, "fargan")
    assert m.codec_sha == codec_sha(backbone="fargan"), "the shipped fargan MLM was trained on another codec's tokens"


def test_shipped_models_code_a_clip_bit_exactly(clip):
    """SoundSpring-S on the shipped fargan codec and MLM: lossless reception gives back the tokens exactly."""
    cod = make_codec("soundspring:backbone=fargan,layers=12,fec=next")
    s = cod.encode(clip)
    x = cod.padded_input(clip)
    rec = cod.receive_tokens(s, None)
    assert rec.corrupt == 0 and np.array_equal(rec.tokens[:, :12], cod.tokens(x)[:, :12])
    assert s.meta["fine_coded_kbps"] < s.meta["fine_raw_kbps"]
