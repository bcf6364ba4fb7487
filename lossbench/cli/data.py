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


@app.command("heldout")
@friendly_errors
def heldout_cmd(
    out: Annotated[Path, typer.Argument(help="output directory (a corpus for 'lossbench sweep --corpus')")],
    data: Annotated[Path, typer.Option(help="directory made by 'prepare-speech'")] = Path("data/speech"),
    count: Annotated[int, typer.Option(help="clips: the longest held-out real clips, speakers alternating")] = 24,
    min_seconds: Annotated[float, typer.Option(help="shortest clip")] = 2.0,
) -> None:
    """Write held-out real speech (speakers never seen in training) as a sweepable corpus.

    The same clips the model cards are scored on, so sweeps of the neural
    codecs are measured on speech their models never saw.
    """
    import soundfile as sf

    from lossbench.data.heldout import heldout_clips

    out.mkdir(parents=True, exist_ok=True)
    clips = heldout_clips(data, count, real_only=True, min_s=min_seconds)
    for name, x in clips:
        sf.write(out / Path(name).name, x, 16000, subtype="PCM_16")
    secs = sum(len(x) for _, x in clips) / 16000
    console.print(f"wrote {len(clips)} held-out clips ({secs:.0f} s) to {out}")
