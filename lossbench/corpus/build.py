"""Build the embedded default corpus from Debian-packaged speech.

Real speech: the Asterisk core sound prompts (G.722, 16 kHz; five
professional voices in en, es, fr, it, ru), several prompts of one voice
joined into 4–8 s utterances with 200 ms pauses. Synthetic speech: a few
Harvard sentences read by flite and espeak-ng. Every clip is levelled to an
active speech level of about -26 dBFS and written as 16 kHz mono FLAC with a
manifest (sources of every clip) and ``SOURCES.md`` (attribution, licences).

Selection is seeded, so the same packages give the same corpus. Needs
ffmpeg, flite, espeak-ng and the asterisk-core-sounds-*-g722 packages
(``make corpus-deps`` installs them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lossbench.audio import load_audio, resample, save_audio
from lossbench.errors import ConfigError

SR = 16000
ASTERISK = Path("/usr/share/asterisk/sounds")
VOICES = {  # directory -> (language, speaker, licence)
    "en_US_f_Allison": ("en", "Allison Smith", "CC-BY-SA-3.0"),
    "es_MX_f_Allison": ("es", "Allison Smith", "CC-BY-SA-3.0"),
    "fr_CA_f_June": ("fr", "June Wallack", "CC-BY-SA-3.0"),
    "it_IT_m_Carlo": ("it", "Carlo Flora", "CC-BY-SA-3.0"),
    "ru_RU_f_IvrvoiceRU": ("ru", "Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"),
}
CLIPS_PER_VOICE = 6
HARVARD = [
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us. A large size in stockings is hard to sell.",
]
SYNTH = [("flite", "slt"), ("flite", "awb"), ("espeak-ng", "en-us"), ("espeak-ng", "en+f3")]


#: the prompt texts each language's Debian package ships (``asterisk-core-sounds-<lang>``)
TRANSCRIPTS = Path("/usr/share/doc")


def prompt_texts(lang: str) -> dict[str, str]:
    """``prompt name`` (e.g. ``agent-incorrect``, ``dictate/pause``) -> its text, from the language package's
    ``core-sounds-<lang>.txt.gz``; bracketed notes (``[beep]``, ``(note: ...)``) are dropped. Empty if absent."""
    import gzip
    import re

    f = TRANSCRIPTS / f"asterisk-core-sounds-{lang}" / f"core-sounds-{lang}.txt.gz"
    if not f.exists():
        return {}
    raw = gzip.decompress(f.read_bytes())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    out = {}
    for line in text.splitlines():
        if ":" not in line or line.startswith(";"):
            continue
        k, v = line.split(":", 1)
        v = re.sub(r"\[[^]]*\]|\([^)]*\)", " ", v).replace("...", " ")
        out[k.strip().removesuffix(".wav")] = " ".join(v.split())
    return out


def attach_transcripts(entries: list[dict]) -> int:
    """Set each Asterisk clip's ``text`` to its prompts' texts joined, where its package ships every one of
    them (the clip keeps no text otherwise); returns how many clips got one."""
    n = 0
    cache: dict[str, dict[str, str]] = {}
    for e in entries:
        if e.get("kind") != "real" or not e.get("sources"):
            continue
        lang = e["language"]
        texts = cache.setdefault(lang, prompt_texts(lang))
        names = [str(Path(*Path(src).parts[1:]).with_suffix("")) for src in e["sources"]]
        if texts and all(texts.get(nm) for nm in names):
            e["text"] = " ".join(texts[nm] for nm in names)
            e["text_source"] = f"asterisk-core-sounds-{lang}: core-sounds-{lang}.txt"
            n += 1
    return n


def decode_g722(path: Path) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "g722", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(SR), "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(out, dtype="<i2").astype(np.float32) / 32768.0


def active_level_normalise(x: np.ndarray, target_dbfs: float = -26.0, sample_rate_hz: int = SR) -> np.ndarray:
    """Scale so the RMS over active 20 ms frames (within 40 dB of the loudest) is ``target_dbfs``; peak <= 0.99.
    A stereo ``x`` ([n, 2]) is measured on the mean of its channels and both are scaled alike."""
    n = int(0.02 * sample_rate_hz)
    m = x.mean(axis=1) if x.ndim == 2 else x
    f = m[: len(m) // n * n].reshape(-1, n)
    e = (f.astype(np.float64) ** 2).mean(axis=1) + 1e-12
    active = e > e.max() * 1e-4
    rms = np.sqrt(e[active].mean())
    y = x * (10 ** (target_dbfs / 20) / rms)
    peak = np.abs(y).max()
    return (y / peak * 0.99 if peak > 0.99 else y).astype(np.float32)


def trim(x: np.ndarray, thresh_db: float = -45.0) -> np.ndarray:
    a = np.abs(x)
    idx = np.flatnonzero(a > 10 ** (thresh_db / 20))
    return x[max(0, idx[0] - 480) : idx[-1] + 480] if idx.size else x[:0]


def check_tools() -> None:
    missing = [t for t in ("ffmpeg", "flite", "espeak-ng") if shutil.which(t) is None]
    absent = [v for v in VOICES if not (ASTERISK / v).is_dir()]
    absent += [f"asterisk-core-sounds-{lang} (its prompt texts)" for lang in {v[0] for v in VOICES.values()}
               if not (TRANSCRIPTS / f"asterisk-core-sounds-{lang}").is_dir()]
    if missing or absent:
        raise ConfigError(
            "building the corpus needs ffmpeg, flite, espeak-ng and the Debian packages "
            "asterisk-core-sounds-{en,es,fr,it,ru}-g722; missing: " + ", ".join(missing + absent)
            + " (run 'make corpus-deps' as root)"
        )


def build_default_corpus(out_dir: Path, seed: int = 2026) -> list[dict]:
    """Write the corpus FLACs, ``manifest.json`` and ``SOURCES.md`` under ``out_dir``."""
    check_tools()
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.flac"):
        old.unlink()
    pause = np.zeros(int(0.2 * SR), np.float32)
    entries: list[dict] = []
    for vdir, (lang, speaker, lic) in VOICES.items():
        files = sorted((ASTERISK / vdir).rglob("*.g722"))
        files = [f for f in files if "digits" not in f.parts and "letters" not in f.parts and "phonetic" not in f.parts]
        order = rng.permutation(len(files))
        used: set[int] = set()
        k = 0
        for c in range(CLIPS_PER_VOICE):
            target = rng.uniform(4.5, 7.5)
            parts: list[np.ndarray] = []
            names: list[str] = []
            total = 0.0
            while total < target and k < len(order):
                i = int(order[k])
                k += 1
                if i in used:
                    continue
                x = trim(decode_g722(files[i]))
                d = len(x) / SR
                if d < 0.8 or total + d > 8.0:
                    continue
                used.add(i)
                parts += [x, pause]
                names.append(str(files[i].relative_to(ASTERISK)))
                total += d + 0.2
            y = active_level_normalise(np.concatenate(parts[:-1]))
            cid = f"{lang}_{c:02d}"
            save_audio(out_dir / f"{cid}.flac", y, SR)
            entries.append({"id": cid, "file": f"{cid}.flac", "kind": "real", "language": lang, "speaker": speaker,
                            "license": lic, "duration_s": round(len(y) / SR, 3), "sources": names})
    with tempfile.TemporaryDirectory() as td:
        for j, (tool, voice) in enumerate(SYNTH):
            text = HARVARD[j % len(HARVARD)]
            wav = Path(td) / f"s{j}.wav"
            if tool == "flite":
                subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True, capture_output=True)
            else:
                subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
            clip = load_audio(wav)
            x = resample(clip.samples, clip.sample_rate_hz, SR) if clip.sample_rate_hz != SR else clip.samples
            y = active_level_normalise(trim(np.asarray(x)))
            cid = f"synth_{tool.replace('-', '')}_{voice.replace('+', '_').replace('-', '')}"
            save_audio(out_dir / f"{cid}.flac", y, SR)
            entries.append({"id": cid, "file": f"{cid}.flac", "kind": "synthetic", "language": "en",
                            "speaker": f"{tool} {voice}", "license": "generated (public-domain Harvard sentences)",
                            "duration_s": round(len(y) / SR, 3), "text": text})
    attach_transcripts(entries)
    manifest = {"sample_rate_hz": SR, "seed": seed, "builder": "lossbench corpus build", "clips": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "SOURCES.md").write_text(SOURCES_MD)
    return entries


SOURCES_MD = """# Sources of the embedded default corpus

Built by `lossbench corpus build` (see `lossbench/corpus/build.py`); the exact
source prompts of every clip are listed in `manifest.json`.

## Real speech: Asterisk core sound prompts (Debian `asterisk-core-sounds-*-g722`)

Prompts of one voice were trimmed, joined with 200 ms pauses into 4–8 s
clips and levelled to about -26 dBFS active speech level. The recordings
were distributed as G.722 at 64 kbit/s, so they already carry that codec's
coloration.

| clips | voice | licence |
|---|---|---|
| en_* | Allison Smith (theivrvoice.com), for Digium, Inc. | CC BY-SA 3.0 |
| es_* | Allison Smith, for Digium, Inc. | CC BY-SA 3.0 |
| fr_* | June Wallack (junewallack.com); translation Clod Patry, Kristopher Lalletti, June Wallack | CC BY-SA 3.0 |
| it_* | Carlo Flora (carloflora.com); translation Silvia Petrin | CC BY-SA 3.0 |
| ru_* | Maxim Topal (ivrvoice.ru) | CC BY 3.0 |

These clips are adapted works (trimmed, joined, levelled); they are shared
under the same licences, CC BY-SA 3.0 and CC BY 3.0 respectively.

## Synthetic speech

`synth_*` clips read Harvard sentences (IEEE 1969, public domain) with flite
(voices slt, awb) and espeak-ng (en-us, en+f3).
"""
