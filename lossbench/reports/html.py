"""``report.html``: plots, tables and audio players for listening."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from lossbench.files import write_atomic
from lossbench.reports import plots
from lossbench.reports.data import distribution_channels, load_results, metric_columns, swept_channels
from lossbench.reports.tables import error_table, markdown, rate_table, summary_table

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}audio{height:28px;vertical-align:middle}
.players td{text-align:left}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def write_plots(df: pd.DataFrame, plot_dir: Path) -> list[Path]:
    plot_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    metrics = metric_columns(df)
    for ch in swept_channels(df):
        for m in metrics:
            out.append(plots.quality_vs_loss(df, m, ch, plot_dir / f"loss_{ch}_{m}.png"))
    for ch in distribution_channels(df):
        for m in metrics:
            out.append(plots.cdf(df, m, ch, plot_dir / f"cdf_{ch}_{m}.png"))
        if "timeseries" in df.columns:
            p = plots.quality_over_time(df, ch, plot_dir / f"time_{ch}.png")
            if p:
                out.append(p)
    for m in metrics:
        out.append(plots.rate_quality(df, m, plot_dir / f"rate_{m}.png"))
    return out


def write_report(run_dir: str | Path) -> Path:
    from lossbench.errors import writing

    with writing(run_dir, "write the report into"):
        return _write_report(Path(run_dir))


def _write_report(run_dir: Path) -> Path:
    df = load_results(run_dir)
    metrics = metric_columns(df)
    figs = write_plots(df, run_dir / "plots")
    (run_dir / "tables.md").write_text(markdown(df, metrics))
    ok = int((df["status"] == "ok").sum())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lossbench: {html.escape(run_dir.name)}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1>lossbench run <code>{html.escape(run_dir.name)}</code></h1>",
             f"<p>{len(df)} tasks ({ok} scored, {len(df) - ok} failed); {df['clip'].nunique()} clips, "
             f"{df['system'].nunique()} codec configs, {df['concealment'].nunique()} concealments, "
             f"{df['channel_key'].nunique()} channel conditions, {df['seed'].nunique()} seed(s). "
             "Spec: <a href='spec.toml'>spec.toml</a>; data: <a href='results.parquet'>results.parquet</a>; "
             "tables: <a href='tables.md'>tables.md</a>.</p>"]
    parts.append("<h2>Plots</h2>")
    for f in figs:
        parts.append(f"<img src='plots/{html.escape(f.name)}' alt='{html.escape(f.stem)}'>")
    for m in metrics:
        parts.append(f"<h2>{html.escape(m)}</h2>")
        parts.append(summary_table(df, m).to_html())
    parts.append("<h2>Measured bitrate and speed</h2>")
    parts.append(rate_table(df).to_html())
    err = error_table(df)
    if not err.empty:
        parts.append("<h2>Failed tasks</h2>" + err.to_html(index=False))
    parts.append(_players(df, run_dir))
    parts.append("</body></html>")
    out = run_dir / "report.html"
    write_atomic(out, "\n".join(parts))
    return out


def _players(df: pd.DataFrame, run_dir: Path) -> str:
    if "audio_file" not in df.columns:
        return ""
    d = df[df["audio_file"].notna()]
    if d.empty:
        return ""
    parts = ["<h2>Listen</h2>"]
    for clip, g in d.groupby("clip", sort=False):
        refs = sorted((run_dir / "audio").glob(f"ref__{clip}_*.wav"))
        parts.append(f"<h3>{html.escape(str(clip))}</h3>")
        if refs:
            parts.append(f"<p>reference <audio controls preload='none' src='audio/{html.escape(refs[0].name)}'></audio></p>")
        parts.append("<table class='players'><tr><th>system / concealment</th><th>channel</th><th>loss</th><th>audio</th></tr>")
        for _, r in g.sort_values(["system", "concealment", "channel", "loss_param"]).iterrows():
            parts.append(
                f"<tr><td>{html.escape(r['system'])} / {html.escape(r['concealment'])}</td><td>{html.escape(r['channel'])}</td>"
                f"<td>{100 * r['effective_loss']:.1f} %</td>"
                f"<td><audio controls preload='none' src='{html.escape(r['audio_file'])}'></audio></td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)
