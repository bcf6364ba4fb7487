"""``lossbench traces``: generate, inspect, convert and plot loss-trace files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from lossbench.cli.common import console, friendly_errors, parse_params
from lossbench.errors import ConfigError
from lossbench.traces.formats import EXTENSIONS, FORMATS, read_trace, write_trace

app = typer.Typer(help="Loss-trace files: generate, stats, convert, plot.", no_args_is_help=True)


@app.command()
@friendly_errors
def generate(
    model: Annotated[str, typer.Argument(help="loss model name or spec, e.g. markov3 or 'gilbert:loss_rate=0.1'")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output file; format from the extension")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="model parameter k=v (repeatable)")] = None,
    packets: Annotated[int, typer.Option(help="number of slots (packets)", min=1)] = 3000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    slot_ms: Annotated[float, typer.Option(help="slot duration in ms")] = 20.0,
    fmt: Annotated[str | None, typer.Option("--format", help=f"one of {', '.join(FORMATS)}")] = None,
    sidecar: Annotated[bool, typer.Option(help="write <out>.json with model, parameters and seed")] = True,
) -> None:
    """Generate a loss trace from a model and write it to a file."""
    from lossbench.netsim.spec import make_loss_model, split_spec

    name, spec_params = split_spec(model)
    params = {**spec_params, **parse_params(param)}
    m = make_loss_model({"model": name, **params})
    tr = m.sample(packets, np.random.default_rng(seed), slot_ms / 1000.0)
    tr = type(tr)(tr.lost, tr.slot_s, meta={**tr.meta, "seed": seed, "spec": model})
    p = write_trace(tr, out, fmt=fmt, sidecar=sidecar)
    st = m.stats()
    console.print(f"wrote {p} ({packets} slots, {m.describe()})")
    console.print(f"sampled loss {100 * tr.loss_rate:.2f} %" + (f", model {100 * st.loss_rate:.2f} %" if st else ""))


def _expand(files: list[Path]) -> list[Path]:
    out: list[Path] = []
    for f in files:
        if f.is_dir():
            found = sorted(p for p in f.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
            if not found:
                raise ConfigError(f"{f}: no trace files ({', '.join(sorted(EXTENSIONS))}) in this directory")
            out.extend(found)
        else:
            out.append(f)
    return out


@app.command()
@friendly_errors
def stats(
    files: Annotated[list[Path], typer.Argument(help="trace files or directories")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    histogram: Annotated[bool, typer.Option(help="also print burst-length histograms")] = False,
    ssrc: Annotated[str | None, typer.Option(help="pcap: the RTP SSRC to take (hex 0x... or decimal); "
                                                     "default: the largest stream")] = None,
    clock_rate: Annotated[int | None, typer.Option(help="pcap: the RTP clock rate (default: inferred)")] = None,
) -> None:
    """Statistics of trace files: loss rate, bursts, gaps, P(loss | loss); for traces with timing (a
    seq,send_s,arrival_s CSV, a pcap of RTP) also the delay percentiles and the RFC 3550 jitter."""
    from lossbench.traces.stats import trace_stats
    from lossbench.traces.timing import timing_stats

    want = None
    if ssrc is not None:
        try:
            want = int(ssrc, 0)
        except ValueError:
            raise ConfigError(f"--ssrc must be a number (0x1234abcd or decimal), got {ssrc!r}") from None
    rows = []
    for f in _expand(files):
        tr = read_trace(f, ssrc=want, clock_rate=clock_rate)
        st = trace_stats(tr)
        rows.append((f, tr, st, timing_stats(tr.timing) if tr.timing is not None else None))
    if as_json:
        out = [{"file": str(f), "format": tr.meta.get("format"), "slot_s": tr.slot_s, **st.summary(),
                **({"bursts": st.bursts} if histogram else {}), **(ts or {}),
                **({k: tr.meta[k] for k in ("ssrc", "clock_rate") if k in tr.meta})} for f, tr, st, ts in rows]
        console.print_json(json.dumps(out))
        return
    timed = any(ts is not None for *_, ts in rows)
    t = Table(title="loss traces")
    cols = ["file", "format", "packets", "loss %", "mean burst", "longest", "mean gap", "P(loss|loss)"]
    if timed:
        cols += ["delay p50 ms", "p95 ms", "p99 ms", "max ms", "jitter ms (RFC 3550)", "dup", "reord"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("file", "format") else "right")
    for f, tr, st, ts in rows:
        cells = [str(f), str(tr.meta.get("format")), str(st.packets), f"{100 * st.loss_rate:.2f}", f"{st.mean_burst:.2f}",
                 str(st.longest_burst), f"{st.mean_gap:.2f}", f"{st.p_loss_given_loss:.3f}"]
        if timed:
            cells += (["-"] * 7 if ts is None else
                      [f"{ts['delay_p50_ms']:.1f}", f"{ts['delay_p95_ms']:.1f}", f"{ts['delay_p99_ms']:.1f}",
                       f"{ts['delay_max_ms']:.1f}", f"{ts['jitter_rfc3550_ms']:.2f}", f"{int(ts['duplicates'])}",
                       f"{int(ts['reordered'])}"])
        t.add_row(*cells)
    console.print(t)
    if histogram:
        for f, _, st, _ts in rows:
            console.print(f"{f}: bursts " + ", ".join(f"{k}:{v}" for k, v in sorted(st.bursts.items())))


@app.command()
@friendly_errors
def convert(
    src: Annotated[Path, typer.Argument(help="input trace (format detected)")],
    dst: Annotated[Path, typer.Argument(help="output trace (format from the extension)")],
    to: Annotated[str | None, typer.Option(help=f"output format: {', '.join(FORMATS)}")] = None,
    time_column: Annotated[bool, typer.Option(help="CSV output with time_s instead of seq")] = False,
) -> None:
    """Convert a trace file to another format."""
    tr = read_trace(src)
    keep_side = tr.slot_s != 0.02 or bool({"model", "spec"} & set(tr.meta))
    p = write_trace(tr, dst, fmt=to, sidecar=keep_side, time_column=time_column)
    console.print(f"{src} ({tr.meta['format']}) -> {p} ({to or p.suffix.lstrip('.')}), {len(tr)} slots")


@app.command()
@friendly_errors
def plot(
    file: Annotated[Path, typer.Argument(help="trace file")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="PNG path (default: <file>.png)")] = None,
) -> None:
    """Plot a trace: loss pattern over time and burst-length histogram (PNG)."""
    from lossbench.traces.plot import plot_trace

    tr = read_trace(file)
    p = plot_trace(tr, out or file.with_name(file.name + ".png"), title=str(file))
    console.print(f"wrote {p}")


@app.command("list")
@friendly_errors
def list_library() -> None:
    """List the bundled trace sets."""
    from lossbench.netsim.library import LIBRARY
    from lossbench.traces.library import library_files

    t = Table(title="bundled trace sets (lossbench/traces/library)")
    for c in ("set", "files", "model", "description"):
        t.add_column(c)
    for ts in LIBRARY:
        t.add_row(ts.name, str(len(library_files(ts.name))), ts.spec, ts.description)
    console.print(t)


@app.command("build-library")
@friendly_errors
def build_library_cmd(
    out: Annotated[Path | None, typer.Option(help="output directory (default: the package's library)")] = None,
    seed: Annotated[int, typer.Option(help="base seed")] = 0,
) -> None:
    """Regenerate the bundled trace library from its recorded models and seeds."""
    from lossbench.netsim.library import build_library
    from lossbench.traces.library import LIBRARY_DIR

    paths = build_library(out or LIBRARY_DIR, seed)
    console.print(f"wrote {len(paths)} traces under {out or LIBRARY_DIR}")
