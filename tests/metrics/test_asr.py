"""Word and character error rate: the scoring equals jiwer's (the field's reference implementation), and the
real recogniser (Whisper tiny.en, offline) scores the corpus: exact on clean speech against its own reference
transcript, worse under loss, the corpus transcript where there is one, NaN with a reason off English."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.metrics import compute_metrics
from lossbench.metrics.asr import edit_distance, error_rates, normalise, transcribe


@pytest.mark.parametrize("seed", range(20))
def test_rates_equal_jiwers(seed):
    import jiwer

    rng = np.random.default_rng(seed)
    words = ["the", "birch", "canoe", "slid", "on", "smooth", "planks", "glue", "sheet", "dark"]
    ref = " ".join(rng.choice(words, rng.integers(1, 12)))
    hyp = " ".join(rng.choice(words, rng.integers(0, 14)))
    w, c = error_rates(hyp, ref)
    assert w == pytest.approx(jiwer.wer(ref, hyp) if hyp else 1.0)
    assert c == pytest.approx(jiwer.cer(ref, hyp) if hyp else 1.0)


def test_normalisation_and_distance():
    assert normalise("Login incorrect. Please enter your agent's number!") == "login incorrect please enter your agent's number"
    assert normalise("'Quoted' words") == "quoted words"
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert error_rates("a b c d e", "a")[0] == 4.0  # insertions can take WER above 1


@pytest.fixture(scope="module")
def corpus():
    return {r.id: r for r in default_corpus()}


def _damaged(x: np.ndarray, ratio: float, seed: int = 1) -> np.ndarray:
    y = x.copy()
    rng = np.random.default_rng(seed)
    for i in np.flatnonzero(rng.random(x.size // 320) < ratio):
        y[i * 320 : (i + 1) * 320] = 0.0
    return y


def _ctx(clip):
    return {"transcript": clip.meta.get("text"), "language": clip.meta.get("language")}


def test_english_clip_against_the_asr_of_its_reference(corpus, network_off):
    clip = corpus["en_00"].load(16000)
    x = clip.samples
    assert "agent number" in normalise(transcribe(x))
    clean = compute_metrics(x, x, 16000, ["wer"], None, _ctx(clip))
    assert clean["wer"] == 0.0 and clean["cer"] == 0.0 and clean["wer_reference"] == "asr"
    lossy = compute_metrics(_damaged(x, 0.3), x, 16000, ["wer"], None, _ctx(clip))
    assert lossy["wer"] > 0.1 and lossy["cer"] > 0.0


def test_a_clip_with_a_transcript_is_scored_against_it(corpus):
    clip = corpus["synth_flite_slt"].load(16000)
    out = compute_metrics(clip.samples, clip.samples, 16000, ["wer"], None, _ctx(clip))
    assert out["wer_reference"] == "transcript"
    assert out["wer"] < 0.35  # tiny.en's own errors on flite's voice ("canoe slid" -> "can use laid")


def test_other_languages_are_nan_with_the_reason(corpus):
    clip = corpus["ru_00"].load(16000)
    out = compute_metrics(clip.samples, clip.samples, 16000, ["wer"], None, _ctx(clip))
    assert np.isnan(out["wer"]) and np.isnan(out["cer"]) and "English only" in out["wer_error"]
    bad = compute_metrics(np.full(8000, np.nan), clip.samples, 16000, ["wer"], None, {"language": "en"})
    assert np.isnan(bad["wer"]) and "NaN" in bad["wer_error"]
