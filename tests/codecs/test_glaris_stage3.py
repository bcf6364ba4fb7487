"""Glaris stage III (the backbone's feature decoder fine-tuned to Glaris's reconstructions), shipped weights:
the codec uses it by default on fargan, ``decoder=backbone`` keeps the backbone's, it belongs to the shipped
Glaris modules only, and it lowers the feature error it was trained on, on speech it never saw."""

import numpy as np
import pytest

from lossbench.codecs import make_codec
from lossbench.codecs.glaris.weights import load_stage3_decoder
from lossbench.core import Clip, Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError


@pytest.fixture(scope="module")
def clips():
    c = default_corpus()
    return [Clip(f"c{i}", c[i].load(16000).samples[: 5 * 16000], 16000) for i in (0, 5, 9)]


def test_the_stage3_decoder_is_shipped_for_the_shipped_glaris():
    assert load_stage3_decoder() is not None
    assert load_stage3_decoder("lossbench/codecs/glaris/weights/glaris.safetensors") is None  # other modules


def test_bad_decoder_option_names_the_choices():
    with pytest.raises(ConfigError, match="stage3.*backbone"):
        make_codec("glaris:decoder=finetuned")


def test_stage3_is_the_default_and_lowers_the_feature_error(clips):
    fine, plain = make_codec("glaris:q=48,offsets=none"), make_codec("glaris:q=48,offsets=none,decoder=backbone")
    assert fine.codec_params().get("decoder") == "stage3" and "decoder" in fine.model_files()
    assert plain.codec_params()["decoder"] == "backbone" and "decoder" not in plain.model_files()
    bb = fine.backbone.model
    err = {"stage3": 0.0, "backbone": 0.0}
    for clip in clips:
        ref = bb.features(np.pad(clip.samples, (0, (-clip.num_samples) % 320)).astype(np.float32))
        for name, cod in (("stage3", fine), ("backbone", plain)):
            y = cod.decode(cod.encode(clip), None, "side-info-plc").audio
            got = bb.features(np.pad(y, (0, (-len(y)) % 320)).astype(np.float32))
            n = min(len(ref), len(got))
            err[name] += float(((got[:n, :18] - ref[:n, :18]) ** 2).mean())
    assert err["stage3"] < err["backbone"]


def test_stage3_conceals_too(clips):
    cod = make_codec("glaris:q=48,side=2,offsets=1")
    s = cod.encode(clips[1])
    lost = np.zeros(len(s.packets), bool)
    lost[5:9] = True
    r = cod.decode(s, Reception.from_lost(lost), "side-info-plc")
    assert np.isfinite(r.audio).all() and r.missing.sum() >= 4
