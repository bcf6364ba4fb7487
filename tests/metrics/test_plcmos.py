"""Fast PLCMOS: the audio branch once per clip, the rater head for all 15 embeddings, equal to speechmos."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError
from lossbench.metrics import compute_metrics
from lossbench.metrics.learned import FastPLCMOS, plcmos, plcmos_embeddings, plcmos_speechmos
from tests.metrics.test_metrics import SHARED, _plcmos_reference_or_skip


@pytest.mark.parametrize("ref", default_corpus(), ids=lambda r: r.id)
def test_equals_speechmos_on_every_corpus_clip_clean_and_damaged(ref):
    x = ref.load(16000).samples.astype(np.float32)
    y = x.copy()
    rng = np.random.default_rng(len(ref.id))
    for i in np.flatnonzero(rng.random(x.size // 320) < 0.2):  # 20 % of the 20 ms frames silenced
        y[i * 320 : (i + 1) * 320] = 0.0
    for sig in (x, y):
        assert plcmos(sig, sig, 16000)["plcmos"] == pytest.approx(plcmos_speechmos(sig), abs=1e-5)


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", ["clean.wav", "plc_good.wav", "plc_poor.wav"])
def test_equals_speechmos_on_the_shared_reference_clips(name):
    import soundfile as sf

    _plcmos_reference_or_skip()
    x, sr = sf.read(SHARED / name, dtype="float32")
    assert plcmos(x, x, sr)["plcmos"] == pytest.approx(plcmos_speechmos(x, sr), abs=1e-5)


def test_embeddings_are_speechmos_draws_and_keep_the_callers_random_state():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    e = plcmos_embeddings()
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(23)
    rows = np.concatenate([np.random.normal(size=(1, 64)) for _ in range(15)])
    assert np.array_equal(e, rows)


def test_a_model_with_another_graph_is_refused_naming_the_speechmos_version(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    p = tmp_path / "other.onnx"
    onnx.save(model, p)
    with pytest.raises(ConfigError, match=r"not the plcmos_v2 graph of speechmos 0\.0\.1\.1"):
        FastPLCMOS(str(p))


def test_a_missing_model_file_names_the_speechmos_version(monkeypatch, tmp_path):
    import speechmos

    from lossbench.metrics import learned

    monkeypatch.setattr(speechmos, "__file__", str(tmp_path / "speechmos" / "__init__.py"))
    with pytest.raises(ConfigError, match=r"speechmos==0\.0\.1\.1"):
        learned._speechmos_file("plcmos_models", "plcmos_v2.onnx")


def test_a_short_clip_still_gets_nan_and_its_reason():
    x = default_corpus()[0].load(16000).samples[:8000]
    m = compute_metrics(x, x, 16000, ["plcmos"])
    assert np.isnan(m["plcmos"]) and "too short" in m["plcmos_error"]
