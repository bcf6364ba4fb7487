"""Build the embedded full-band (48 kHz) corpus: music of six genres and full-band speech.

- **Recorded music** (lossy, as Debian ships it): a 10 s excerpt of a
  beat-driven electronic track of Endgame: Singularity (``singularity-music``,
  Ogg Vorbis, band-limited at about 17 kHz, CC BY-SA 3.0) and of the dense
  electronic score of the Warzone 2100 original soundtrack
  (``warzone2100-music``, Opus, about 20 kHz, GPL-2+).
- **Rendered music**: scores from the ``music21`` corpus (public-domain
  works; the encodings are BSD-licensed) written as MIDI with a General MIDI
  instrument per genre and rendered at 48 kHz by fluidsynth with the
  FluidR3 GM soundfont (``fluid-soundfont-gm``, MIT): ragtime piano,
  a Baroque chorale on organ, a Classical string quartet, a Scottish fiddle
  reel.
- **Full-band speech**: English spoken descriptions of Tux Paint's stamps
  (``tuxpaint-stamps-default``, GPL-2, 44.1 kHz Vorbis; only the files
  recorded at 44.1 kHz; their Vorbis coding keeps about 14 kHz), joined
  with 300 ms pauses into about 9 s clips;
  the words are the stamps' English descriptions, kept as the clip's
  transcript. These English files are not among the files
  ``lossbench data prepare-speech`` trains on (those are ``*_desc_<lang>``).

Every clip is mono (the mean of the channels), 48 kHz, 16-bit FLAC; music is
levelled to an RMS of -23 dBFS over its active frames, speech to -26 dBFS
active speech level, both with the peak kept below -0.1 dBFS. Excerpt starts
and the speech files are chosen by a seeded generator, so the same packages
give the same corpus. ``make corpus-fullband`` installs the packages and runs
``lossbench corpus build --fullband``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lossbench.audio import save_audio
from lossbench.corpus.build import active_level_normalise, trim
from lossbench.errors import ConfigError

SR = 48000
CLIP_S = 10.0
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TUXPAINT = Path("/usr/share/tuxpaint/stamps")
SINGULARITY = Path("/usr/share/games/singularity/music")
WARZONE = Path("/usr/share/games/warzone2100/music")

#: recorded excerpts: id -> (file, genre, title, artist, licence, package)
RECORDED = {
    "music_electronic_beat": (SINGULARITY / "Nebula.ogg", "electronic, beat-driven", "Nebula", "Max McCracken",
                                 "CC-BY-SA-3.0", "singularity-music"),
    "music_electronic_score": (WARZONE / "albums/original_soundtrack/track1.opus", "electronic game score, dense",
                                    "Warzone 2100 original soundtrack, track 1", "Warzone 2100 Project (Pumpkin Studios)",
                                    "GPL-2+", "warzone2100-music"),
}
#: rendered scores: id -> (music21 corpus path, genre, title, composer, General MIDI program (0-based), tempo bpm)
RENDERED = {
    "music_ragtime_piano": ("joplin/maple_leaf_rag.mxl", "ragtime piano", "Maple Leaf Rag", "Scott Joplin", 0, None),
    "music_baroque_organ": ("bach/bwv66.6.mxl", "Baroque chorale (organ)", "Christ unser Herr zum Jordan kam, BWV 66.6",
                            "J. S. Bach", 19, 80),
    "music_string_quartet": ("beethoven/opus18no1/movement1.mxl", "Classical string quartet",
                             "String Quartet op. 18 no. 1, I. Allegro con brio", "L. van Beethoven", None, None),
    "music_fiddle_reel": ("ryansMammoth/7thRegimentReel.abc", "Scottish fiddle reel", "7th Regiment Reel",
                          "traditional (Ryan's Mammoth Collection, 1883)", 110, 112),
}
SPEECH_CLIPS = 4
SPEECH_PAUSE_S = 0.3


def check_tools() -> None:
    missing = []
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg")
    if shutil.which("fluidsynth") is None:
        missing.append("fluidsynth")
    if not SOUNDFONT.exists():
        missing.append(f"fluid-soundfont-gm ({SOUNDFONT})")
    for f, *_rest, pkg in RECORDED.values():
        if not f.exists():
            missing.append(f"{pkg} ({f})")
    if not TUXPAINT.is_dir():
        missing.append(f"tuxpaint-stamps-default ({TUXPAINT})")
    try:
        import music21  # noqa: F401  (only whether it imports: the fullband build needs it)
    except ImportError:
        missing.append("music21 (pip)")
    if missing:
        raise ConfigError("building the full-band corpus needs: " + ", ".join(missing) +
                          " (run 'make corpus-fullband' as root)")


def decode(path: Path, channels: int = 1) -> np.ndarray:
    """Any file ffmpeg reads, as float32 at 48 kHz (ffmpeg's own resampler, soxr where the rate differs): mono,
    or [n, 2] with ``channels=2``."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", str(channels), "-ar",
                          str(SR), "-"], capture_output=True, check=True).stdout
    x = np.frombuffer(out, dtype="<f4").copy()
    return x if channels == 1 else x.reshape(-1, channels)


def level(x: np.ndarray, target_dbfs: float) -> np.ndarray:
    """The corpus builder's active-level normalisation at 48 kHz (20 ms frames)."""
    return active_level_normalise(x, target_dbfs, SR)


def excerpt(x: np.ndarray, rng: np.random.Generator, lo: float = 0.2, hi: float = 0.6) -> tuple[np.ndarray, float]:
    """A CLIP_S excerpt starting between ``lo`` and ``hi`` of the piece (never in its first 2 s), 20 ms fades."""
    n = int(CLIP_S * SR)
    if len(x) <= n:
        return x, 0.0
    start_max = len(x) - n
    s = int(rng.uniform(lo, hi) * start_max)
    s = max(min(s, start_max), min(int(2 * SR), start_max))
    y = x[s : s + n].copy()
    ramp = np.linspace(0, 1, int(0.02 * SR), dtype=np.float32).reshape((-1,) + (1,) * (y.ndim - 1))
    y[: ramp.shape[0]] *= ramp
    y[-ramp.shape[0] :] *= ramp[::-1]
    return y, s / SR


def render_score(path: str, program: int | None, bpm: float | None, wav: Path) -> None:
    from music21 import converter, instrument, tempo

    score = converter.parse(str(_music21_file(path)))
    for part in score.parts:
        if program is not None:
            for old in part.recurse().getElementsByClass(instrument.Instrument):
                old.activeSite.remove(old)
            inst = instrument.instrumentFromMidiProgram(program)
            part.insert(0, inst)
    if bpm is not None:
        for old in score.recurse().getElementsByClass(tempo.MetronomeMark):
            old.activeSite.remove(old)
        score.parts[0].insert(0, tempo.MetronomeMark(number=bpm))
    mid = wav.with_suffix(".mid")
    score.write("midi", fp=str(mid))
    subprocess.run(["fluidsynth", "-ni", "-g", "0.7", "-F", str(wav), "-r", str(SR), "-T", "wav", str(SOUNDFONT),
                    str(mid)], check=True, capture_output=True)


def _music21_file(path: str) -> Path:
    from music21 import corpus

    return Path(str(corpus.getWork(path)))


def tuxpaint_english() -> list[tuple[Path, str]]:
    """(file, English description) of the English stamp descriptions recorded at 44.1 kHz, sorted by path."""
    import soundfile as sf

    out = []
    for f in sorted(TUXPAINT.rglob("*_desc.ogg")):
        txt = f.with_name(f.name[: -len("_desc.ogg")] + ".txt")
        text = txt.read_text(errors="replace").splitlines()[0].strip() if txt.exists() else ""
        if not text or "=" in text:
            continue
        try:
            if sf.info(str(f)).samplerate < 44100:
                continue
        except Exception:
            continue
        out.append((f, text))
    return out


def build_fullband_corpus(out_dir: Path, seed: int = 2026) -> list[dict]:
    """Write the full-band FLACs, ``manifest.json`` and ``SOURCES.md`` under ``out_dir``."""
    check_tools()
    import music21

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.flac"):
        old.unlink()
    entries: list[dict] = []
    for cid, (f, genre, title, artist, lic, pkg) in RECORDED.items():
        y, t0 = excerpt(decode(f), rng)
        y = level(y, -23.0)
        save_audio(out_dir / f"{cid}.flac", y, SR)
        entries.append({"id": cid, "file": f"{cid}.flac", "kind": "music", "genre": genre, "title": title,
                        "artist": artist, "license": lic, "package": pkg, "source": str(f),
                        "excerpt_start_s": round(t0, 3), "duration_s": round(len(y) / SR, 3)})
    with tempfile.TemporaryDirectory() as td:
        for cid, (path, genre, title, composer, program, bpm) in RENDERED.items():
            wav = Path(td) / f"{cid}.wav"
            render_score(path, program, bpm, wav)
            x = trim(decode(wav), -50.0)
            y, t0 = excerpt(x, rng, 0.0, 0.3)
            y = level(y, -23.0)
            save_audio(out_dir / f"{cid}.flac", y, SR)
            entries.append({"id": cid, "file": f"{cid}.flac", "kind": "music", "genre": genre, "title": title,
                            "artist": composer, "license": "public-domain work; rendered with FluidR3 GM (MIT)",
                            "package": "music21 corpus + fluidsynth + fluid-soundfont-gm",
                            "source": f"music21 {music21.__version__}: {path}",
                            "gm_program": program, "tempo_bpm": bpm, "excerpt_start_s": round(t0, 3),
                            "duration_s": round(len(y) / SR, 3)})
    files = tuxpaint_english()
    order = rng.permutation(len(files))
    pause = np.zeros(int(SPEECH_PAUSE_S * SR), np.float32)
    k = 0
    for c in range(SPEECH_CLIPS):
        parts: list[np.ndarray] = []
        names: list[str] = []
        words: list[str] = []
        total = 0.0
        while total < CLIP_S - 1.0 and k < len(order):
            f, text = files[int(order[k])]
            k += 1
            x = trim(decode(f), -45.0)
            d = len(x) / SR
            if d < 0.3 or total + d > CLIP_S:
                continue
            parts += [x, pause]
            names.append(str(f.relative_to(TUXPAINT)))
            words.append(text)
            total += d + SPEECH_PAUSE_S
        if not parts:
            raise ConfigError(f"too few Tux Paint English descriptions under {TUXPAINT} for {SPEECH_CLIPS} clips")
        y = level(np.concatenate(parts[:-1]), -26.0)
        cid = f"speech_en_{c:02d}"
        save_audio(out_dir / f"{cid}.flac", y, SR)
        entries.append({"id": cid, "file": f"{cid}.flac", "kind": "speech", "language": "en",
                        "speaker": "Tux Paint volunteers", "license": "GPL-2", "package": "tuxpaint-stamps-default",
                        "duration_s": round(len(y) / SR, 3), "text": " ".join(words), "sources": names})
    manifest = {"sample_rate_hz": SR, "seed": seed, "builder": "lossbench corpus build --fullband", "clips": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "SOURCES.md").write_text(SOURCES_MD)
    return entries


def build_stereo_music(out_dir: Path, seed: int = 2026, per_package: int = 3) -> list[dict]:
    """Stereo 10 s excerpts of the recorded Debian music (``singularity-music``, ``warzone2100-music``):
    ``per_package`` tracks of each, chosen by a seeded generator, levelled as the mono corpus is (the gain from
    the mean of the channels). Not embedded in the package (it is built on demand: ``make corpus-stereo``)."""
    if shutil.which("ffmpeg") is None:
        raise ConfigError("building the stereo music set needs ffmpeg: run make corpus-stereo (as root)")
    sources = [(sorted(SINGULARITY.glob("*.ogg")), "singularity-music", "CC-BY-SA-3.0", "Max McCracken"),
               (sorted(WARZONE.rglob("*.opus")), "warzone2100-music", "GPL-2+", "Warzone 2100 Project")]
    missing = [pkg for files, pkg, _, _ in sources if not files]
    if missing:
        raise ConfigError(f"no music from {', '.join(missing)} under /usr/share/games: run make corpus-stereo "
                          "(it installs them as root)")
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    for files, pkg, lic, artist in sources:
        for i in sorted(rng.choice(len(files), size=min(per_package, len(files)), replace=False).tolist()):
            f = files[i]
            y, t0 = excerpt(decode(f, channels=2), rng)
            y = level(y, -23.0)
            cid = "stereo_" + "".join(ch if ch.isalnum() else "_" for ch in f"{pkg.split('-')[0]}_{f.parent.name}_{f.stem}")
            save_audio(out_dir / f"{cid}.flac", y, SR)
            side = float(np.sqrt(np.mean((y[:, 0] - y[:, 1]) ** 2)) / max(np.sqrt(np.mean(y ** 2)), 1e-9))
            entries.append({"id": cid, "file": f"{cid}.flac", "kind": "music", "channels": 2, "title": f.stem,
                            "artist": artist, "license": lic, "package": pkg, "source": str(f),
                            "excerpt_start_s": round(t0, 3), "duration_s": round(len(y) / SR, 3),
                            "side_to_total_rms": round(side, 3)})
    manifest = {"sample_rate_hz": SR, "seed": seed, "builder": "lossbench corpus build --stereo-music",
                "clips": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return entries


SOURCES_MD = """# Sources of the embedded full-band corpus (48 kHz)

Built by `lossbench corpus build --fullband` (`lossbench/corpus/fullband.py`; `make corpus-fullband`). Every
clip is a 10 s mono excerpt at 48 kHz; `manifest.json` lists each clip's source file, excerpt start, genre and
licence. The clips are adapted works (excerpted, mixed to mono, levelled) and are shared under their sources'
licences, listed below.

## Recorded music

| clip | genre | work | artist | licence | Debian package |
|---|---|---|---|---|---|
| music_electronic_beat | electronic, beat-driven | "Nebula", Endgame: Singularity soundtrack | Max McCracken | CC BY-SA 3.0 | `singularity-music` |
| music_electronic_score | electronic game score, dense | Warzone 2100 original soundtrack, track 1 | Warzone 2100 Project (originally Pumpkin Studios) | GPL-2+ | `warzone2100-music` |

Both are lossy as shipped: the Singularity track is Ogg Vorbis with nothing above about 17 kHz; the Warzone
track has been through Opus already (about 20 kHz), which a test of Opus on it inherits.

## Rendered music

Scores of public-domain works from the `music21` corpus (BSD-licensed encodings), written as MIDI with one
General MIDI instrument per genre and rendered by fluidsynth with the FluidR3 GM soundfont
(`fluid-soundfont-gm`, MIT; Frank Wen):

| clip | genre | work | instrument |
|---|---|---|---|
| music_ragtime_piano | ragtime piano | Scott Joplin, Maple Leaf Rag | the score's piano |
| music_baroque_organ | Baroque chorale | J. S. Bach, chorale BWV 66.6 | Church Organ, 80 bpm |
| music_string_quartet | Classical string quartet | Beethoven, op. 18 no. 1, I | the score's violins, viola, cello |
| music_fiddle_reel | Scottish fiddle reel | "7th Regiment Reel" (Ryan's Mammoth Collection, 1883) | Fiddle, 112 bpm |

## Full-band speech

`speech_en_*`: English spoken descriptions of the stamps of Tux Paint (`tuxpaint-stamps-default`, GPL-2;
volunteer speakers, 44.1 kHz Vorbis that keeps about 14 kHz of band, some room noise), joined with 300 ms
pauses (digital silence). The transcript of each clip
is the stamps' English descriptions ("A frog." ...), in `manifest.json`.
"""  # noqa: E501 - the README's Markdown table rows cannot wrap
