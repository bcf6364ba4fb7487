"""``lossbench sweep``, ``report`` and ``compare``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossbench.cli.common import console, escape, friendly_errors
from lossbench.errors import ConfigError

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "benchmarks" / "default_spec.toml"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--loss takes comma-separated numbers like 0,0.05,0.1; got {text!r}") from None


def sweep(
    spec_file: Annotated[Path | None, typer.Argument(help="TOML spec (flags below override or replace it)")] = None,
    codec: Annotated[list[str] | None, typer.Option(help="codec NAME[:k=v,...] (repeatable)")] = None,
    concealment: Annotated[list[str] | None, typer.Option(help="concealment name, or 'native' (repeatable)")] = None,
    channel: Annotated[list[str] | None, typer.Option(help="loss model MODEL[:k=v,...] (repeatable)")] = None,
    loss: Annotated[str | None, typer.Option(help="loss rates swept on every --channel given without parameters "
                                                  "whose model takes a loss_rate alone (bernoulli, gilbert, "
                                                  "gilbert-elliott, markov3, lossgen), e.g. 0,0.05,0.1")] = None,
    trace: Annotated[list[str] | None, typer.Option(help="replay trace FILE or DIR (repeatable)")] = None,
    delay: Annotated[str | None, typer.Option(help="network delay for every channel, e.g. 40ms")] = None,
    jitter: Annotated[str | None, typer.Option(help="jitter for every channel: normal:10ms, uniform, exponential, "
                                                    "pareto:8ms:2.2, lognormal:10ms:0.8, ar1:10ms:0.9 (correlated), "
                                                    "spikes:300ms:0.2 (Poisson spikes per s), periodic:200ms:5s")] = None,
    playout: Annotated[str | None, typer.Option(help="playout buffer: fixed:60ms (the default) | adaptive | tsm | speex")] = None,
    corpus: Annotated[str | None, typer.Option(help="corpus directory, or an embedded one: 'default' (16 kHz "
                                                  "speech) or 'fullband' (48 kHz music and speech)")] = None,
    transcripts: Annotated[Path | None, typer.Option(help="transcript file for WER: '<clip id><TAB><text>' "
                                                        "per line")] = None,
    clips: Annotated[int | None, typer.Option(help="use N clips, evenly spaced over the corpus")] = None,
    seeds: Annotated[int | None, typer.Option(help="seeds per condition")] = None,
    seed: Annotated[int | None, typer.Option(help="base seed")] = None,
    metrics: Annotated[str | None, typer.Option(help="comma-separated metrics, e.g. pesq_wb,stoi,plcmos")] = None,
    workers: Annotated[int | None, typer.Option(help="local worker processes (default: all cores)")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default: runs/<name>)")] = None,
    name: Annotated[str | None, typer.Option(help="run name")] = None,
    report: Annotated[bool, typer.Option(help="write plots, tables and report.html at the end")] = True,
    dry_run: Annotated[bool, typer.Option(help="validate and print the plan only")] = False,
) -> None:
    """Sweep clips x codecs x concealments x channels x seeds, score and tabulate."""
    from lossbench.benchmarks.plan import describe_plan, plan_sweep
    from lossbench.benchmarks.spec import CodecEntry, SweepSpec, channel_entries_from_cli, load_spec
    from lossbench.benchmarks.sweep import run_sweep

    if spec_file is None and not codec:
        spec_file = DEFAULT_SPEC
    if spec_file is not None:
        spec = load_spec(spec_file)
    else:
        spec = SweepSpec(codecs=[], channels=[])
    if codec:
        spec.codecs = [CodecEntry(c) for c in codec]
    if channel or trace:
        net = {"delay": delay, "jitter": jitter, "playout": playout}
        spec.channels = channel_entries_from_cli(channel or [], _floats(loss) if loss else None, trace or [], net)
    elif loss:
        raise ConfigError("--loss needs --channel (e.g. --channel bernoulli --loss 0,0.1,0.2)")
    elif delay or jitter or playout:
        for e in spec.channels:
            e.delay, e.jitter, e.playout = delay or e.delay, jitter or e.jitter, playout or e.playout
    for k, v in (("corpus", corpus), ("clips", clips), ("seeds", seeds), ("seed", seed), ("workers", workers),
                 ("scheduler", scheduler), ("name", name),
                 ("transcripts", str(transcripts) if transcripts else None)):
        if v is not None:
            setattr(spec, k, v)
    if concealment:
        spec.concealments = list(concealment)
    if metrics:
        spec.metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    spec.validate()
    run_dir = out or Path(spec.out or f"runs/{spec.name}")
    if dry_run:
        d = describe_plan(plan_sweep(spec, run_dir))
        for k, v in d.items():
            console.print(f"{k}: {v}")
        return
    res = run_sweep(spec, run_dir)
    console.print(f"{res.ran} tasks run, {res.skipped} already done, {res.errors} errors; results: {res.results}")
    if report and res.results is not None:
        from lossbench.reports import write_report

        html = write_report(run_dir)
        console.print(f"report: {html.resolve()}")


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a run directory with results.parquet")],
    format: Annotated[str, typer.Option("--format", help="figure formats, comma-separated: png, pdf, svg")] = "png",
    size: Annotated[str, typer.Option(help="figure width: screen, column (3.5 in) or page (7.16 in)")] = "screen",
    box: Annotated[bool, typer.Option(help="also box plots per system at each distribution channel")] = False,
) -> None:
    """Write figures (PNG, PDF, SVG), tables (markdown, LaTeX) and report.html for a run."""
    from lossbench.reports import write_report
    from lossbench.reports.plots import FigureOptions

    html = write_report(run_dir, FigureOptions.parse(format, size), box=box)
    console.print(f"report: {html.resolve()}")


def compare_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a run directory with results.parquet")],
    codec: Annotated[str, typer.Option(help="codec config or system label to compare concealments for")],
    metric: Annotated[str, typer.Option(help="metric column")] = "pesq_wb",
    baseline: Annotated[str | None, typer.Option(help="concealment the others are tested against")] = None,
) -> None:
    """Concealments side by side on the same clips and traces, with a paired test per loss rate."""
    from lossbench.reports.compare import compare_concealments

    table = compare_concealments(run_dir, codec, metric, baseline)
    console.print(table)


def rerun_cmd(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    task: Annotated[str, typer.Argument(help="a task key (the 'task' column of results.parquet)")],
) -> None:
    """Recompute one row alone from the run's spec.toml and compare it with the stored one."""
    import math

    import pandas as pd

    from lossbench.benchmarks.sweep import recompute_task
    from lossbench.errors import ConfigError

    if not (run_dir / "results.parquet").exists():
        raise ConfigError(f"{run_dir / 'results.parquet'} does not exist: is {run_dir} a run directory of a sweep?")
    row = recompute_task(run_dir, task)
    stored = pd.read_parquet(run_dir / "results.parquet").set_index("task")
    old = stored.loc[task] if task in stored.index else None
    same = True
    for k, v in row.items():
        if isinstance(v, float) and not k.endswith(("_rtf", "time_s")):
            o = None if old is None else old.get(k)
            # bit for bit: every path that scores a row runs under the same numeric settings
            match = o is not None and (o == v or (math.isnan(o) and math.isnan(v)))
            same &= match or old is None
            console.print(f"{k:20s} {v:12.6g}" + ("" if old is None else f"   stored {o:12.6g} {'=' if match else '!='}"))
    if old is not None:
        console.print("identical to the stored row" if same else "[red]differs from the stored row[/red]")


def claims_cmd(
    claims_file: Annotated[Path, typer.Argument(help="a TOML file of [[claim]] tables (lossbench/reports/claims.py)")],
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories whose rows decide the claims (pooled)")],
    only: Annotated[list[str] | None, typer.Option(help="decide only the claim with this id (repeatable)")] = None,
) -> None:
    """Decide each claim of a claims file by its written rule (paired tests), printing the numbers beside each
    verdict in Markdown."""
    from lossbench.reports.claims import check_claims

    decisions = check_claims(claims_file, list(run_dirs), only)
    typer.echo("\n\n".join(d.markdown() for d in decisions))


def register(app: typer.Typer) -> None:
    app.command("rerun")(friendly_errors(rerun_cmd))
    app.command("sweep")(friendly_errors(sweep))
    app.command("report")(friendly_errors(report_cmd))
    app.command("compare")(friendly_errors(compare_cmd))
    app.command("claims")(friendly_errors(claims_cmd))
    app.command("score")(friendly_errors(score_cmd))


def score_cmd(
    ref_dir: Annotated[Path, typer.Argument(help="folder of reference files")],
    deg_dir: Annotated[Path, typer.Argument(help="folder of degraded files, paired with the references by name")],
    out: Annotated[Path | None, typer.Option(help="run directory (default: runs/score-<DEG_DIR's name>)")] = None,
    metrics: Annotated[str, typer.Option(help="comma-separated metrics of the table")] = "pesq_wb,stoi,plcmos",
    label: Annotated[str | None, typer.Option(help="the rows' system (default: DEG_DIR's name)")] = None,
    mask: Annotated[Path | None, typer.Option(help="folder of loss files, <name>.txt (one 0/1 per frame), whose "
                                                   "statistics join each pair's row")] = None,
    max_length_diff_ms: Annotated[float, typer.Option(help="lengths may differ by this much (the longer is cut); "
                                                           "beyond it a pair is an error row")] = 0.0,
    report: Annotated[bool, typer.Option(help="write plots, tables and report.html")] = True,
) -> None:
    """Score existing files: each file of DEG_DIR against the file of the same name in REF_DIR, one row per pair
    in results.parquet, as a sweep writes them."""
    from lossbench.benchmarks.score import score_folders

    run_dir = out or Path("runs") / f"score-{deg_dir.resolve().name}"
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    path = score_folders(ref_dir, deg_dir, run_dir, names, label, mask, max_length_diff_ms)
    import pandas as pd

    df = pd.read_parquet(path)
    bad = df[df["status"] != "ok"]
    for e in bad["error"]:
        console.print(f"[yellow]not scored:[/yellow] {escape(str(e))}")
    console.print(f"{len(df) - len(bad)} pairs scored, {len(bad)} not; results: {path}")
    if report and len(bad) < len(df):
        from lossbench.reports import write_report

        console.print(f"report: {write_report(run_dir).resolve()}")
