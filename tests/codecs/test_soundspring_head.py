"""The MLM's concealment head (shipped weights): it loads for the shipped MLM only, predicts lost coarse
tokens better than repeating the previous frame on real speech, and ``mlm-head`` uses it while ``mlm`` keeps
the paper's rule (the MLM's own argmax); the old name ``mlm-argmax`` is refused with the new one."""

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.codecs.soundspring.coarse_head import DELTA, periods_of
from lossbench.codecs.soundspring.predictors import measure
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus


@pytest.fixture(scope="module")
def codec():
    return make_codec("soundspring:layers=6,slices=1,pack=frame,fec=none")


@pytest.fixture(scope="module")
def speech():
    c = default_corpus()
    return [c[i].load(16000).samples[: 6 * 16000] for i in (1, 5, 9)]


def test_the_head_belongs_to_the_shipped_mlm(codec):
    assert codec._head is not None
    other = make_codec("soundspring:layers=6,mlm_weights=lossbench/codecs/soundspring/weights/mlm_large.safetensors,"
                       "backbone=waveform")
    assert other._head is None  # the waveform backbone has no pitch tokens, and this is not its MLM anyway


def test_head_predictions_beat_the_previous_frame_copy(codec, speech):
    r = measure(codec, speech, 0.15, (0, 1))
    assert r["mlm-head"]["frames"] > 100
    assert r["mlm-head"]["latent_error"] < r["copy"]["latent_error"]
    assert r["mlm-head"]["pitch_error"] < r["copy"]["pitch_error"]
    # the MLM's own argmax (the paper's rule) is the weaker predictor the head replaces
    assert r["mlm"]["latent_error"] > r["mlm-head"]["latent_error"]


def test_predicted_tokens_are_valid_pitch_and_codewords(codec, speech):
    h = codec._head
    toks = codec.tokens(codec.padded_input(Clip("a", speech[0], 16000)))
    vis = toks[:20, :3].copy()
    vis[17:19] = -1
    out, vec = h.predict(vis, np.array([17, 18]), toks[[16, 16], :3], np.array([1, 2]))
    assert out.shape == (2, 3) and vec.shape == (2, 64)
    assert (out[:, :2] < 896).all() and (out[:, :2] >= 0).all()  # 224 periods x 4 correlation levels
    assert (np.abs(periods_of(out[:, :2]) - periods_of(toks[16, 1])) <= DELTA).all()
    assert (out[:, 2] >= 0).all() and (out[:, 2] < 1024).all()


def test_mlm_head_and_mlm_differ_only_where_coarse_tokens_were_lost(codec, speech):
    s = codec.encode(Clip("a", speech[1], 16000))
    lost = np.zeros(len(s.packets), bool)
    lost[[4, 9, 10, 20]] = True
    a, b, z = codec.decode_many(s, Reception.from_lost(lost), ["mlm-head", "mlm", "zero-token"])
    assert not np.array_equal(a.audio, b.audio)
    clean = codec.decode_many(s, None, ["mlm-head", "mlm"])
    assert np.array_equal(clean[0].audio, clean[1].audio)


def test_the_old_name_is_refused_with_the_new_one(codec):
    from lossbench.errors import ConfigError

    with pytest.raises(ConfigError, match="'mlm-argmax' was renamed; use mlm \\(the paper's rule"):
        codec.check_concealment("mlm-argmax")
    assert {"mlm", "mlm-head", "zero-token"} <= set(codec.native_concealments)
