"""``lossbench corpus``: the embedded corpus and user corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lossbench.cli.common import console, friendly_errors
from lossbench.errors import ConfigError

app = typer.Typer(help="Speech corpora: list, info, build the embedded one.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_clips(
    path: Annotated[Path | None, typer.Argument(help="corpus directory (default: the embedded corpus)")] = None,
) -> None:
    """List the clips of a corpus."""
    from lossbench.corpus import scan_corpus

    refs = scan_corpus(path)
    t = Table(title=f"corpus: {path or 'embedded default'} ({len(refs)} clips)")
    for c in ("id", "language", "speaker", "kind", "duration (s)", "file"):
        t.add_column(c)
    for r in refs:
        t.add_row(r.id, str(r.meta.get("language", "")), str(r.meta.get("speaker", "")), str(r.meta.get("kind", "")),
                  str(r.meta.get("duration_s", "")), str(r.path.name))
    console.print(t)


@app.command()
@friendly_errors
def info(path: Annotated[Path | None, typer.Argument(help="corpus directory or file (default: embedded)")] = None) -> None:
    """Clip count, total duration, sample rates and channels of a corpus."""
    from lossbench.corpus import corpus_info

    i = corpus_info(path)
    console.print(f"corpus: {path or 'embedded default'} ({i['layout']})")
    console.print(f"clips: {i['clips']}, total {i['total_s'] / 60:.2f} min")
    console.print("sample rates: " + ", ".join(f"{k} Hz x{v}" for k, v in sorted(i["sample_rates_hz"].items())))
    console.print("channels: " + ", ".join(f"{k} x{v}" for k, v in sorted(i["channels"].items())))
    for b in i["unreadable"]:
        console.print(f"[red]unreadable:[/red] {b}")


@app.command()
@friendly_errors
def build(
    out: Annotated[Path | None, typer.Option(help="output directory (default: the package's embedded corpus)")] = None,
    seed: Annotated[int, typer.Option()] = 2026,
    fullband: Annotated[bool, typer.Option("--fullband", help="the 48 kHz music and speech corpus instead "
                                           "('fullband' in sweeps; needs 'make corpus-fullband')")] = False,
    stereo_music: Annotated[bool, typer.Option("--stereo-music", help="stereo 48 kHz excerpts of the recorded "
                                               "Debian music into --out (needs 'make corpus-stereo')")] = False,
) -> None:
    """Rebuild an embedded corpus from Debian-packaged audio (see its SOURCES.md)."""
    from lossbench.corpus import DEFAULT_CORPUS_DIR, FULLBAND_CORPUS_DIR

    if stereo_music:
        from lossbench.corpus.fullband import build_stereo_music

        if out is None:
            raise ConfigError("--stereo-music needs --out DIR (the set is not embedded in the package)")
        dest = out
        entries = build_stereo_music(dest, seed)
    elif fullband:
        from lossbench.corpus.fullband import build_fullband_corpus

        dest = out or FULLBAND_CORPUS_DIR
        entries = build_fullband_corpus(dest, seed)
    else:
        from lossbench.corpus.build import build_default_corpus

        dest = out or DEFAULT_CORPUS_DIR
        entries = build_default_corpus(dest, seed)
    console.print(f"wrote {len(entries)} clips, {sum(e['duration_s'] for e in entries) / 60:.2f} min, to {dest}")
