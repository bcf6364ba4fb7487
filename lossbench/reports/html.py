"""``report.html``: figures, tables and audio players for listening, in one self-contained folder.

Next to the page: ``plots/`` (PNG for the page, plus PDF/SVG when asked for),
``tables.md`` and ``tables.tex`` (booktabs; best per column in bold),
``compare.md``/``compare.tex`` (paired concealment comparisons), and under
each audio player a strip that shows the reference and the decoded waveform
with the lost and late packets marked. A plain offline filter (no network,
no CDN: the script is inline) shows the players and rows of one system,
channel and loss level; ``#system=...&channel=...&loss=...`` in the URL
sets it.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError
from lossbench.files import safe_name, write_atomic
from lossbench.reports import plots
from lossbench.reports.data import (
    distribution_channels,
    label_packets,
    load_results,
    playout_settings,
    scored_columns,
    swept_channels,
)
from lossbench.reports.plots import FigureOptions
from lossbench.reports.tables import (
    error_table,
    latex_compare,
    latex_table,
    live_table,
    markdown,
    per_trace_table,
    rate_table,
    summary_table,
)

#: the columns a results table from this version has; an older file without them gets a clear message
REQUIRED = ("status", "system", "codec", "codec_config", "concealment", "channel", "channel_key", "loss_param", "clip",
            "seed")

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}audio{height:28px;vertical-align:middle}
.players td{text-align:left}.players img{border:0;margin:0;max-width:640px}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.note{color:#8a4b00;background:#fff6e5;padding:.4em .6em;border-left:3px solid #e0a000}
#filter{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;z-index:2}
#filter select{margin-right:1em}"""

FILTER_JS = """
(function(){
  const sel = {system: document.getElementById('f-system'), channel: document.getElementById('f-channel'),
               loss: document.getElementById('f-loss')};
  function apply(){
    let shown = 0;
    document.querySelectorAll('tr.example').forEach(function(tr){
      const ok = Object.keys(sel).every(function(k){ return sel[k].value === '' || tr.dataset[k] === sel[k].value; });
      tr.style.display = ok ? '' : 'none';
      if (ok) shown += 1;
    });
    document.querySelectorAll('div.clip').forEach(function(div){
      const any = Array.from(div.querySelectorAll('tr.example')).some(function(tr){ return tr.style.display !== 'none'; });
      div.style.display = any ? '' : 'none';
    });
    document.body.dataset.shown = String(shown);
    const parts = Object.keys(sel).filter(function(k){ return sel[k].value !== ''; })
      .map(function(k){ return k + '=' + encodeURIComponent(sel[k].value); });
    if (history.replaceState) history.replaceState(null, '', parts.length ? '#' + parts.join('&') : '#');
  }
  const h = new URLSearchParams(location.hash.replace(/^#/, ''));
  Object.keys(sel).forEach(function(k){ if (h.has(k)) sel[k].value = h.get(k); sel[k].addEventListener('change', apply); });
  apply();
  // for checks: how many images and audio sources failed to load
  let broken = 0;
  window.addEventListener('load', function(){
    document.querySelectorAll('img').forEach(function(i){ if (!i.complete || i.naturalWidth === 0) broken += 1; });
    document.body.dataset.brokenImages = String(broken);
  });
})();
"""


def check_results(df: pd.DataFrame, run_dir: Path) -> None:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ConfigError(f"{run_dir / 'results.parquet'} lacks the columns {', '.join(missing)}: it was written by an "
                          "older lossbench; re-run the sweep ('lossbench sweep SPEC --out DIR' resumes nothing from it)")


def write_plots(df: pd.DataFrame, plot_dir: Path, opts: FigureOptions = FigureOptions(),
                box: bool = False) -> tuple[list[Path], list[str]]:
    """Every figure in every format asked for (PNG always, for the page); returns (PNG paths, notes on
    figures that could not be drawn)."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    fo = FigureOptions(tuple(dict.fromkeys(("png", *opts.formats))), opts.size)
    pngs: list[Path] = []
    notes: list[str] = []

    def run(fn, *args, **kw):
        try:
            pngs.extend(p for p in fn(*args, **kw) if p.suffix == ".png")
        except ConfigError as e:
            notes.append(str(e))

    metrics = scored_columns(df)

    def per_playout(settings: list[str]):
        """(rows, file suffix) per playout setting of a channel: a figure never pools rows of two delays."""
        if len(settings) == 1:
            yield df, ""
            return
        for p in settings:
            yield df[df["playout"].fillna("").astype(str) == p], "_" + safe_name(p)

    for ch in swept_channels(df):
        settings = playout_settings(df, ch)
        for d, sfx in per_playout(settings):
            for m in metrics:
                run(plots.quality_vs_loss, d, m, ch, plot_dir / f"loss_{ch}{sfx}_{m}", fo)
        if len(settings) > 1:  # quality against delay, per loss level
            for m in metrics:
                run(plots.quality_vs_delay_per_loss, df, m, ch, plot_dir / f"delay_{ch}_{m}", fo)
    for ch in distribution_channels(df):
        for d, sfx in per_playout(playout_settings(df, ch)):
            for m in metrics:
                run(plots.distribution, d, m, ch, plot_dir / f"cdf_{ch}{sfx}_{m}", fo)
                if box:
                    run(plots.distribution, d, m, ch, plot_dir / f"box_{ch}{sfx}_{m}", fo, kind="box")
            if "timeseries" in df.columns:
                run(plots.quality_over_time, d, ch, plot_dir / f"time_{ch}{sfx}", fo)
    if "bitrate_kbps" in df.columns:
        for m in metrics:
            run(plots.rate_quality, df, m, plot_dir / f"rate_{m}", fo)
    if plots.delay_settings(df):  # buffer settings compared: quality against delay, and the delay CDFs
        for m in metrics:
            run(plots.quality_vs_delay, df, m, plot_dir / f"delay_{m}", fo)
        run(plots.delay_cdf, df, plot_dir / "delay_cdf", fo)
    return pngs, notes


def write_report(run_dir: str | Path, opts: FigureOptions = FigureOptions(), box: bool = False) -> Path:
    from lossbench.errors import writing

    with writing(run_dir, "write the report into"):
        return _write_report(Path(run_dir), opts, box)


def _compare_all(df: pd.DataFrame, metric: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(config, baseline, table) for every system that ran more than one concealment."""
    from lossbench.reports.compare import compare_rows

    out = []
    ok = df[df["status"] == "ok"]
    for s, g in ok.groupby("system", sort=False):
        if g["concealment"].nunique() > 1 and g["codec_config"].nunique() == 1:
            t, config, base = compare_rows(ok, s, metric)
            out.append((config, base, t))
    return out


def _write_report(run_dir: Path, opts: FigureOptions, box: bool) -> Path:
    df = label_packets(load_results(run_dir))
    check_results(df, run_dir)
    metrics = scored_columns(df)
    empty = [m for m in ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_snr", "sdr", "snr", "mfcc_dist", "plcmos",
                         "dnsmos_ovrl") if m in df.columns and m not in metrics]
    figs, notes = write_plots(df, run_dir / "plots", opts, box)
    (run_dir / "tables.md").write_text(markdown(df, metrics))
    (run_dir / "tables.tex").write_text("% lossbench: booktabs tables (\\usepackage{booktabs})\n\n"
                                        + "\n".join(latex_table(df, m) for m in metrics))
    cmp_metric = "pesq_wb" if "pesq_wb" in metrics else (metrics[0] if metrics else None)
    comparisons = _compare_all(df, cmp_metric) if cmp_metric else []
    if comparisons:
        assert cmp_metric is not None  # comparisons exist only with a metric
        (run_dir / "compare.tex").write_text("\n".join(latex_compare(t, c, cmp_metric, b) for c, b, t in comparisons))
    ok = int((df["status"] == "ok").sum())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lossbench: {html.escape(run_dir.name)}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1>lossbench run <code>{html.escape(run_dir.name)}</code></h1>",
             f"<p>{len(df)} tasks ({ok} scored, {len(df) - ok} failed); {df['clip'].nunique()} clips, "
             f"{df['system'].nunique()} codec configs, {df['concealment'].nunique()} concealments, "
             f"{df['channel_key'].nunique()} channel conditions, {df['seed'].nunique()} seed(s). "
             "Spec: <a href='spec.toml'>spec.toml</a>; data: <a href='results.parquet'>results.parquet</a>; "
             "tables: <a href='tables.md'>tables.md</a>, <a href='tables.tex'>tables.tex</a>"
             + (", <a href='compare.tex'>compare.tex</a>" if comparisons else "") + ".</p>"]
    if not metrics:
        parts.append("<p class='note'>No metric column holds a value: every task failed or no metric was asked "
                     "for; see the failed tasks below.</p>")
    for m in empty:
        parts.append(f"<p class='note'>Metric <code>{html.escape(m)}</code> has no values in this run (every clip gave "
                     f"NaN; the reasons are in the column <code>{html.escape(m)}_error</code>).</p>")
    for n in notes:
        parts.append(f"<p class='note'>Figure not drawn: {html.escape(n)}</p>")
    parts.append("<h2>Figures</h2>")
    for f in figs:
        parts.append(f"<img src='plots/{html.escape(f.name)}' alt='{html.escape(f.stem)}'>")
    for m in metrics:
        parts.append(f"<h2>{html.escape(plots.axis_label(m))}</h2>")
        parts.append(summary_table(df, m).to_html())
        pt = per_trace_table(df, m)
        if not pt.empty:
            parts.append(f"<h3>{html.escape(plots.axis_label(m))} per trace</h3>")
            parts.append(pt.to_html())
    if comparisons and cmp_metric is not None:
        parts.append(f"<h2>Concealments compared ({html.escape(cmp_metric)}, paired per clip, channel instance and "
                     "seed; 95 % t interval of the difference; Wilcoxon signed-rank p)</h2>")
        for config, base, t in comparisons:
            parts.append(f"<h3>{html.escape(config)} against <code>{html.escape(base)}</code></h3>")
            tt = t.assign(loss=[f"{100 * v:.0f} %" if v >= 0 else "all" for v in t["level"]],
                          difference=[("" if c == base else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
                                      for c, d, lo, hi in zip(t["concealment"], t["diff"], t["ci_lo"], t["ci_hi"])],
                          p=[("" if np.isnan(p) else f"{p:.2g}") for p in t["p"]], mean=t["mean"].round(3))
            parts.append(tt[["channel", "playout", "loss", "concealment", "mean", "difference", "p", "n"]]
                         .to_html(index=False))
    lt = live_table(df, metrics)
    if not lt.empty:
        parts.append("<h2>Live against the offline twin</h2><p class='note'>The same packets (the run's "
                     "<code>timing.csv</code>) through lossbench's model of the client's codec and receiver; "
                     "live - twin is what the client's own receiver adds or loses on that network.</p>")
        parts.append(lt.to_html(index=False))
    parts.append("<h2>Measured bitrate and speed</h2>")
    parts.append(rate_table(df).to_html())
    err = error_table(df)
    if not err.empty:
        parts.append("<h2>Failed tasks</h2>" + err.to_html(index=False))
    parts.append(_players(df, run_dir))
    parts.append(f"<script>{FILTER_JS}</script>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    write_atomic(out, "\n".join(parts))
    return out


@functools.lru_cache(maxsize=2)
def _read_ref(path: str, mtime_ns: int):
    """A clip's reference audio, read once for all its example rows (keyed by its modification time)."""
    import soundfile as sf

    return sf.read(path, dtype="float32")


def _strip(run_dir: Path, ref_file: Path | None, r: pd.Series) -> str:
    """The listening strip of an example row: its PNG path relative to the run, or '' when it cannot be drawn."""
    import soundfile as sf

    if ref_file is None:
        return ""
    audio = run_dir / str(r["audio_file"])
    png = audio.with_suffix(".png")
    if not png.exists() or png.stat().st_mtime < audio.stat().st_mtime:
        marks = r.get("packet_marks") if isinstance(r.get("packet_marks"), dict) else {}
        try:
            ref, sr = _read_ref(str(ref_file), ref_file.stat().st_mtime_ns)
            y, _ = sf.read(audio, dtype="float32")
        except (OSError, RuntimeError):
            return ""
        ref, y = (x.mean(axis=1) if x.ndim == 2 else x for x in (ref, y))  # a stereo pair is drawn as its mean
        plots.listening_strip(ref, y, sr, marks.get("frame_s", 0.02), marks.get("lost", []), marks.get("late", []), png)
    return str(png.relative_to(run_dir))


def _players(df: pd.DataFrame, run_dir: Path) -> str:
    if "audio_file" not in df.columns:
        return ""
    d = df[df["audio_file"].notna() & (df["status"] == "ok")].copy()
    if d.empty:
        return ""
    d["loss_label"] = [f"{100 * v:.0f} %" if isinstance(v, (int, float)) and v >= 0 else "-" for v in d["loss_param"]]

    def options(name: str, values) -> str:
        opts = "".join(f"<option value='{html.escape(str(v), quote=True)}'>{html.escape(str(v))}</option>"
                       for v in dict.fromkeys(values))
        return f"<label>{name} <select id='f-{name}'><option value=''>all</option>{opts}</select></label>"

    parts = ["<h2>Listen</h2>",
             "<p>Under each player: the reference (top) and what was decoded (bottom), lost packets in red, late ones "
             "in orange.</p>",
             "<div id='filter'>" + options("system", d["system"]) + options("channel", d["channel"])
             + options("loss", sorted(set(d["loss_label"]), key=lambda s: (s == "-", float(s.split()[0]) if s != "-" else 0)))
             + "</div>"]
    for clip, g in d.groupby("clip", sort=False):
        refs = sorted((run_dir / "audio").glob(f"ref__{clip}_*.wav"))
        parts.append(f"<div class='clip'><h3>{html.escape(str(clip))}</h3>")
        if refs:
            parts.append(f"<p>reference <audio controls preload='none' src='audio/{html.escape(refs[0].name)}'></audio></p>")
        parts.append("<table class='players'><tr><th>system / concealment</th><th>channel</th><th>loss</th>"
                     "<th>audio, and where its packets were lost</th></tr>")
        for _, r in g.sort_values(["system", "concealment", "channel", "loss_param"]).iterrows():
            strip = _strip(run_dir, refs[0] if refs else None, r)
            img = f"<br><img src='{html.escape(strip)}' alt='waveform with lost packets'>" if strip else ""
            attrs = " ".join(f"data-{k}='{html.escape(str(v), quote=True)}'" for k, v in
                             (("system", r["system"]), ("channel", r["channel"]), ("loss", r["loss_label"])))
            parts.append(
                f"<tr class='example' {attrs}><td>{html.escape(r['system'])} / {html.escape(r['concealment'])}</td>"
                f"<td>{html.escape(r['channel'])}</td><td>{100 * r['effective_loss']:.1f} %</td>"
                f"<td><audio controls preload='none' src='{html.escape(r['audio_file'])}'></audio>{img}</td></tr>"
            )
        parts.append("</table></div>")
    return "\n".join(parts)
