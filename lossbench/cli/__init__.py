"""The ``lossbench`` command line: one typer sub-app per command group."""

from __future__ import annotations

import typer

from lossbench import __version__
from lossbench.cli.codecs import app as codecs_app
from lossbench.cli.corpus import app as corpus_app
from lossbench.cli.data import app as data_app
from lossbench.cli.live import app as live_app
from lossbench.cli.netsim import app as netsim_app
from lossbench.cli.sweep import register as register_sweep
from lossbench.cli.traces import app as traces_app
from lossbench.cli.train import app as train_app

app = typer.Typer(
    name="lossbench",
    help="How speech and audio codecs hold up on lossy packet networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_sweep(app)
app.add_typer(traces_app, name="traces")
app.add_typer(netsim_app, name="netsim")
app.add_typer(corpus_app, name="corpus")
app.add_typer(codecs_app, name="codecs")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(live_app, name="live")


@app.command()
def version() -> None:
    """Print the lossbench version."""
    typer.echo(f"lossbench {__version__}")


def main() -> None:  # pragma: no cover - console entry point
    app()
