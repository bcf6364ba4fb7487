"""``lossbench data``: build training sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossbench.cli.common import console, friendly_errors

app = typer.Typer(help="Training data for the neural codecs.", no_args_is_help=True)


@app.command("prepare-speech")
@friendly_errors
def prepare_speech_cmd(
    out: Annotated[Path, typer.Argument(help="output directory")],
    synthetic_hours: Annotated[float, typer.Option(help="hours of synthetic speech (Piper, flite, espeak-ng)")] = 2.0,
    seed: Annotated[int, typer.Option()] = 0,
    tuxpaint: Annotated[bool, typer.Option(help="include the Tux Paint recordings")] = True,
) -> None:
    """Build the speech training set (real Asterisk and Tux Paint speech + synthetic), split by speaker."""
    from lossbench.data.prepare import prepare_speech

    summary = prepare_speech(out, synthetic_hours, seed, tuxpaint)
    for k, v in summary.items():
        console.print(f"{k:24s} {v:7.3f} h")
