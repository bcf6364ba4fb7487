"""The fargan backbone: round trips, concealments, alignment, bad payloads, wrong weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lossbench.codecs import make_codec
from lossbench.codecs.neural.backbones import FarganFeatureBackbone, WaveformBackbone

DEFAULT_WEIGHTS = WaveformBackbone.shipped_path("codec")
FARGAN_WEIGHTS = FarganFeatureBackbone.shipped_path("codec")
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The shipped fargan weights when present, else a small untrained model with real feature statistics."""
    if FARGAN_WEIGHTS.exists():
        return FARGAN_WEIGHTS
    from tests.conftest import make_tiny_fargan_weights

    return make_tiny_fargan_weights(tmp_path_factory.mktemp("fargan"))


@pytest.fixture(scope="module")
def clip():
    return default_corpus()[1].load(16000)


def _rec(lost: np.ndarray) -> Reception:
    return Reception.from_lost(lost)


def test_round_trip_gives_aligned_audio_of_the_right_length(weights, clip):
    c = make_codec(f"rvq:backbone=fargan,layers=12,weights={weights}")
    st = c.encode(clip)
    assert st.num_packets == c.n_frames(clip.num_samples)
    assert {len(p.payload) for p in st.packets} == {15}  # 12 x 10 bits
    y = c.decode(st).audio
    assert y.shape == clip.samples.shape and np.isfinite(y).all()
    assert c.delay_samples == 244 and c.conceal_offset_samples == 0


def test_decoder_reproduces_the_vocoder_path(weights, clip):
    """Decoding the codes equals voicing the decoded features with FARGAN, shifted by the codec delay."""
    c = make_codec(f"rvq:backbone=fargan,layers=24,weights={weights}")
    st = c.encode(clip)
    y = c.decode(st).audio
    m = c.backbone.model
    x = c.padded_input(clip)
    codes = m.encode(torch.from_numpy(x).view(1, 1, -1), 24)
    with torch.no_grad():
        f = m.net.denormalise(m.net.decode_latent(m.quantizer.decode(codes)))[0].numpy()
    ref = m.synthesize(f)[244 : 244 + clip.num_samples]
    np.testing.assert_allclose(y, np.clip(ref, -1, 1), atol=1e-6)


@pytest.mark.parametrize("conc", ["zero-latent", "repeat-latent", "fargan-plc", "zeros", "waveform-substitution"])
def test_concealments_run_and_only_change_what_was_lost(weights, clip, conc):
    c = make_codec(f"rvq:backbone=fargan,layers=12,weights={weights}")
    st = c.encode(clip)
    lost = np.zeros(st.num_packets, bool)
    lost[100:106] = True
    res = c.decode(st, _rec(lost), conc)
    clean = c.decode(st).audio
    assert res.missing.sum() == 6 and np.isfinite(res.audio).all()
    # far before the gap the output is the lossless one (the vocoder is causal)
    a = 100 * 320 - 244 - 400
    np.testing.assert_allclose(res.audio[:a], clean[:a], atol=1e-6)
    if conc == "zeros":
        assert np.abs(res.audio[100 * 320 - 244 + 10 : 106 * 320 - 244 - 10]).max() == 0.0


def test_fargan_plc_predicts_features_not_silence(weights, clip):
    c = make_codec(f"rvq:backbone=fargan,layers=12,weights={weights}")
    st = c.encode(clip)
    lost = np.zeros(st.num_packets, bool)
    lost[60:64] = True
    y = c.decode(st, _rec(lost), "fargan-plc").audio
    seg = y[60 * 320 - 244 + 50 : 64 * 320 - 244]
    assert np.sqrt(np.mean(seg**2)) > 1e-4


def test_garbage_and_truncated_payloads_count_as_lost(weights, clip):
    c = make_codec(f"rvq:backbone=fargan,layers=12,weights={weights}")
    st = c.encode(clip)
    frames = [p.payload for p in st.packets]
    frames[10] = frames[10][:7]
    frames[11] = b"\x00" * 40
    frames[12] = b""
    for conc in ("zero-latent", "fargan-plc"):
        out, bad, _ = c.decode_frames(frames, conc)
        assert bad[10] and bad[11] and bad[12] and not bad[13]
        assert np.isfinite(out).all()


def test_weights_of_the_other_backbone_are_refused_naming_both(weights):
    with pytest.raises(ConfigError, match="'waveform' backbone.*'fargan' backbone"):
        make_codec(f"rvq:backbone=fargan,weights={DEFAULT_WEIGHTS}")
    with pytest.raises(ConfigError, match="'fargan' backbone.*'waveform' backbone"):
        make_codec(f"rvq:backbone=waveform,weights={weights}")
    with pytest.raises(ConfigError, match="backbone must be one of"):
        make_codec("rvq:backbone=lpcnet")


def test_fargan_plc_needs_the_fargan_backbone():
    with pytest.raises(ConfigError, match="backbone=fargan"):
        make_codec("rvq:backbone=waveform").check_concealment("fargan-plc")
    assert make_codec("rvq").check_concealment("fargan-plc") == "fargan-plc"  # fargan is the default backbone


def test_non_finite_features_are_concealed_not_voiced(weights):
    m = make_codec(f"rvq:backbone=fargan,weights={weights}").backbone.model
    x = default_corpus()[0].load(16000).samples[:32000]
    f = m.features(x)
    f[40:44] = np.nan
    f[50, 3] = np.inf
    y = m.synthesize(f)
    assert np.isfinite(y).all() and y.size == 320 * (f.shape[0] // 2)


def test_pitch_tokens_carry_fargans_period_exactly(weights):
    from lossbench.codecs.neural.fargan import CORR_LEVELS, period_of

    m = make_codec(f"rvq:backbone=fargan,weights={weights}").backbone.model
    x = default_corpus()[2].load(16000).samples
    f = torch.from_numpy(m.features(x[: x.size // 320 * 320]))[None]
    tok = m.net.pitch_tokens(f)
    assert tok.shape == (1, 2, f.shape[1] // 2) and int(tok.max()) < 1024
    pv = m.net.pitch_values(tok)
    pitch = pv[:, [0, 2]].permute(0, 2, 1).reshape(1, -1) * m.net.feat_std[18] + m.net.feat_mean[18]
    assert torch.equal(period_of(pitch), period_of(f[..., 18]))
    corr = pv[:, [1, 3]].permute(0, 2, 1).reshape(1, -1) * m.net.feat_std[19] + m.net.feat_mean[19]
    levels = m.net.corr_levels
    nearest = levels[(f[..., 19:20] - levels).abs().argmin(-1)]
    torch.testing.assert_close(corr, nearest, rtol=0, atol=1e-5)
    assert len(levels) == CORR_LEVELS


@pytest.mark.parametrize("k", [2, 3, 12, 24])
def test_layer_tables_add_up_to_the_decoded_latent(weights, k):
    """SoundSpring builds latents by summing per-layer tables: the sum must equal the quantiser's decode."""
    m = make_codec(f"rvq:backbone=fargan,weights={weights}").backbone.model
    x = default_corpus()[3].load(16000).samples
    codes = m.encode(torch.from_numpy(x[: x.size // 320 * 320].copy()).view(1, 1, -1), k)
    tabs = m.layer_tables()
    summed = sum(tabs[l][codes[0, l]] for l in range(k)).T
    torch.testing.assert_close(summed, m.quantizer.decode(codes)[0], rtol=0, atol=1e-5)
