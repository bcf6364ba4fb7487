"""``lossbench codecs``: the codec backends and their concealments."""

from __future__ import annotations

import inspect

import typer
from rich.table import Table

from lossbench.cli.common import console, friendly_errors

app = typer.Typer(help="Codec backends.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_codecs() -> None:
    """List codecs, their parameters and the concealments each supports."""
    from lossbench.codecs import CODECS
    from lossbench.concealment import CONCEALMENTS

    t = Table(title="codecs")
    for c in ("name", "parameters", "native concealments"):
        t.add_column(c)
    for name in CODECS.names():
        cls = CODECS.get(name)
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "packet_kw")]
        t.add_row(name, ", ".join(params), ", ".join(cls.native_concealments) or "-")
    console.print(t)
    console.print("waveform concealments (any codec): " + ", ".join(CONCEALMENTS.names()))
    console.print("packet FEC (any codec): frames_per_packet=N, red=N, red_offset=K, xor=K, header_bytes=B")
