"""Speech corpora: the embedded default corpus and loaders for user corpora.

Clips are listed lazily as :class:`ClipRef` (an id, a path and facts about
it) and read only when a task needs them, so a sweep over thousands of
files holds only the clips in use.

Supported layouts:

- a directory of audio files (wav, flac, ogg, ...), searched recursively;
- the LibriSpeech layout ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
  with ``*.trans.txt`` transcripts (speaker recorded per clip);
- the embedded default corpus (``lossbench/corpus/default``), built by
  ``lossbench corpus build`` from Debian-packaged recordings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossbench.audio import AUDIO_EXTENSIONS, load_audio
from lossbench.core import Clip
from lossbench.errors import AudioError, ConfigError

DEFAULT_CORPUS_DIR = Path(__file__).parent / "default"
#: the embedded full-band corpus (48 kHz music and speech), named "fullband" where a corpus is asked for
FULLBAND_CORPUS_DIR = Path(__file__).parent / "fullband"
EMBEDDED = {"default": DEFAULT_CORPUS_DIR, "fullband": FULLBAND_CORPUS_DIR}
_LIBRI_RE = re.compile(r"^(\d+)-(\d+)-(\d+)$")


@dataclass(frozen=True)
class ClipRef:
    """A clip on disk, not yet read."""

    id: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self, sample_rate_hz: int | None = None, stereo: bool = False) -> Clip:
        clip = load_audio(self.path, sample_rate_hz, clip_id=self.id, stereo=stereo)
        return Clip(clip.id, clip.samples, clip.sample_rate_hz, meta={**self.meta, **clip.meta})


def default_corpus(name: str = "default") -> list[ClipRef]:
    """An embedded corpus (``default``: 16 kHz speech; ``fullband``: 48 kHz music and speech), in manifest order."""
    if name not in EMBEDDED:
        raise ConfigError(f"unknown embedded corpus {name!r}; embedded corpora: {', '.join(EMBEDDED)}")
    root = EMBEDDED[name]
    man = root / "manifest.json"
    if not man.exists():
        how = "lossbench corpus build" + (" --fullband" if name == "fullband" else "")
        raise ConfigError(f"the embedded corpus {name!r} is missing ({man}); rebuild it with '{how}'")
    entries = json.loads(man.read_text())["clips"]
    return [ClipRef(e["id"], root / e["file"], {k: v for k, v in e.items() if k not in ("id", "file")})
            for e in entries]


def is_librispeech(root: Path) -> bool:
    return any(root.rglob("*.trans.txt"))


def scan_corpus(path: str | Path | None = None) -> list[ClipRef]:
    """List the clips of a corpus directory (or the default corpus when None).

    Raises:
        ConfigError: the path does not exist or holds no audio.
    """
    if path is None or str(path) in EMBEDDED:
        return default_corpus(str(path or "default"))
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"corpus path {str(root)!r} does not exist")
    if root.is_file():
        if root.suffix.lower() not in AUDIO_EXTENSIONS:
            raise ConfigError(f"{root}: not an audio file (extensions: {', '.join(AUDIO_EXTENSIONS)})")
        return [ClipRef(root.stem, root)]
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ConfigError(f"corpus directory {str(root)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    refs = []
    if is_librispeech(root):
        trans: dict[str, str] = {}
        for t in root.rglob("*.trans.txt"):
            for line in t.read_text(errors="replace").splitlines():
                if " " in line:
                    k, v = line.split(" ", 1)
                    trans[k] = v
        for f in files:
            m = _LIBRI_RE.match(f.stem)
            meta: dict[str, Any] = {"layout": "librispeech"}
            if m:
                meta["speaker"] = m.group(1)
                meta["chapter"] = m.group(2)
            if f.stem in trans:
                meta["text"] = trans[f.stem]
            refs.append(ClipRef(f.stem, f, meta))
        return refs
    seen: dict[str, int] = {}
    for f in files:
        rel = f.relative_to(root).with_suffix("")
        cid = str(rel).replace("/", "__")
        if cid in seen:  # same stem, different extension
            cid = f"{cid}.{f.suffix.lstrip('.')}"
        seen[cid] = 1
        refs.append(ClipRef(cid, f))
    return refs


def with_transcripts(refs: list[ClipRef], path: str | Path) -> list[ClipRef]:
    """``refs`` with the texts of a transcript file as their ``text`` (the WER metric's reference).

    One clip per line: ``<clip id><TAB><text>``, or LibriSpeech's ``<clip id> <text>``; blank lines and lines
    starting with ``#`` are skipped. A clip the file does not name keeps what it had.

    Raises:
        ConfigError: the file is missing or unreadable, a line has no text, or it names clip ids the corpus
            does not hold (they are listed, with a few of the corpus's own).
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"transcript file {str(p)!r} cannot be read: {exc}") from exc
    texts: dict[str, str] = {}
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cid, _, text = line.partition("\t") if "\t" in line else line.strip().partition(" ")
        if not text.strip():
            raise ConfigError(f"{p}:{i}: expected '<clip id><TAB><text>', got {line!r}")
        texts[cid.strip()] = text.strip()
    ids = {r.id for r in refs}
    unknown = sorted(set(texts) - ids)
    if unknown:
        shown = ", ".join(map(repr, unknown[:10])) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        have = ", ".join(map(repr, sorted(ids)[:5]))
        raise ConfigError(f"transcript file {str(p)!r} names {len(unknown)} clip id(s) the corpus does not hold: "
                          f"{shown}; its ids look like {have}")
    return [ClipRef(r.id, r.path, {**r.meta, "text": texts[r.id], "text_source": str(p)}) if r.id in texts else r
            for r in refs]


def corpus_info(path: str | Path | None) -> dict[str, Any]:
    """Counts, total duration and sample rates of a corpus (reads file headers only)."""
    import soundfile as sf

    refs = scan_corpus(path)
    rates: dict[int, int] = {}
    chans: dict[int, int] = {}
    total = 0.0
    bad = []
    for r in refs:
        try:
            info = sf.info(str(r.path))
        except Exception as exc:
            bad.append(f"{r.path}: {exc}")
            continue
        rates[info.samplerate] = rates.get(info.samplerate, 0) + 1
        chans[info.channels] = chans.get(info.channels, 0) + 1
        total += info.duration
    return {"clips": len(refs), "total_s": total, "sample_rates_hz": rates, "channels": chans, "unreadable": bad,
            "layout": refs[0].meta.get("layout", "directory") if refs else "empty"}


__all__ = ["ClipRef", "DEFAULT_CORPUS_DIR", "EMBEDDED", "FULLBAND_CORPUS_DIR", "AudioError", "corpus_info",
           "default_corpus", "scan_corpus", "with_transcripts"]
