"""The FARGAN shim: LPCNet analysis, FARGAN synthesis and the PLC predictor of Opus 1.5.2."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.metrics import compute_metrics
from lossbench.corpus import default_corpus
from lossbench.native.fargan import (
    FRAME,
    FarganSynth,
    FeatureAnalyzer,
    PlcPredictor,
    analyze,
    burg_cepstrum,
    synthesize,
    vocode,
)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return default_corpus()[0].load(16000).samples


def test_analysis_then_synthesis_of_a_shipped_clip_sounds_like_it(speech):
    y = vocode(speech)
    assert y.shape == speech.shape and np.isfinite(y).all()
    m = compute_metrics(y, speech, 16000, ["pesq_wb", "stoi"])
    # DATA.md: PESQ-WB 2.59 / STOI 0.95 on held-out speech; silence or a misaligned output scores far lower
    assert m["pesq_wb"] > 2.3 and m["stoi"] > 0.9


def test_features_look_like_lpcnet_features(speech):
    f = analyze(speech)
    assert f.shape == (speech.size // FRAME, 20)
    period = 256.0 / 2 ** (f[:, 18] + 1.5)  # LPCNet's pitch coding
    voiced = f[:, 19] > 0.3
    assert voiced.mean() > 0.2
    assert np.all((period[voiced] > 30) & (period[voiced] < 260))


@pytest.mark.parametrize("chunk", [1, 37, 160, 999])
def test_streaming_analysis_equals_offline(speech, chunk):
    x = speech[:16000]
    an = FeatureAnalyzer()
    parts = [an.push(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    np.testing.assert_array_equal(np.concatenate(parts), analyze(x))


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_streaming_synthesis_equals_offline(speech, chunk):
    f = analyze(speech[:16000])
    syn = FarganSynth()
    parts = [syn.push(f[i : i + chunk]) for i in range(0, len(f), chunk)]
    np.testing.assert_array_equal(np.concatenate(parts), synthesize(f))
    assert synthesize(f).size == (len(f) - 5) * FRAME


def test_plc_predictor_follows_speech_and_is_deterministic(speech):
    x = speech[: 200 * FRAME]
    f = analyze(x)
    p, q = PlcPredictor(), PlcPredictor()
    errs, naive = [], []
    for i in range(len(f) - 1):
        frame = x[i * FRAME : (i + 1) * FRAME]
        pred = p.received(f[i], burg_cepstrum(frame))
        assert np.array_equal(pred, q.received(f[i], burg_cepstrum(frame)))
        errs.append(np.mean((pred[:18] - f[i + 1, :18]) ** 2))
        naive.append(np.mean(f[i + 1, :18] ** 2))
    # the prediction of the next frame's cepstrum is far closer than no knowledge (all zeros)
    assert np.mean(errs) < 0.5 * np.mean(naive)
    lost = p.lost()
    assert lost.shape == (20,) and np.isfinite(lost).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="57"):
        PlcPredictor().step(np.zeros(10))
    with pytest.raises(ValueError, match="160"):
        burg_cepstrum(np.zeros(100))
