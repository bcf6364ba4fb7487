"""The figures papers in this field print, from a results table.

Layout rules every figure follows:

- small multiples: one panel per system (a codec config, labelled as in the
  spec, in the spec's order), shared axes, concealments as lines with one
  colour per concealment across every panel and figure; an overview panel
  shows each system's best concealment; a sweep of one codec gets one panel
  per concealment instead;
- robust axes: y-limits from the bulk of the plotted values, intersected with
  the metric's range; a point outside (a lossless codec's 200 dB SI-SNR) is
  drawn on the edge as an arrow with its value;
- every value axis says which direction is better;
- figures are written in each requested format (PNG, PDF with embedded
  TrueType fonts, SVG) at screen size or at a paper's column or page width.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError
from lossbench.metrics.table import column_info, column_range
from lossbench.reports.data import PALETTE, mean_ci, playout_order, swept_channels

FORMATS = ("png", "pdf", "svg")
#: figure width in inches: screen, one column of a two-column paper (IEEE), a full page width
SIZES = {"screen": 11.0, "column": 3.5, "page": 7.16}
LINESTYLES = ["-", "--", ":", "-."]
#: colours of systems in overview panels (distinct from the concealment colours of the other panels)
SYSTEM_COLORS = ["#000000", "#7f7f7f", "#8c564b", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


@dataclass(frozen=True)
class FigureOptions:
    formats: tuple[str, ...] = ("png",)
    size: str = "screen"

    @classmethod
    def parse(cls, formats: str = "png", size: str = "screen") -> FigureOptions:
        fs = tuple(f.strip().lower() for f in str(formats).split(",") if f.strip())
        bad = [f for f in fs if f not in FORMATS]
        if bad or not fs:
            raise ConfigError(f"--format: unknown format {bad[0] if bad else formats!r}; valid: {', '.join(FORMATS)} "
                              "(several separated by commas, e.g. png,pdf)")
        if size not in SIZES:
            raise ConfigError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")
        return cls(fs, size)

    @property
    def width(self) -> float:
        return SIZES[self.size]

    @property
    def small(self) -> bool:
        return self.size != "screen"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # TrueType (Type 42) fonts in PDF and text as text in SVG: fonts embedded, text selectable
    matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"})
    return plt


def save(fig, out_stem: Path, opts: FigureOptions) -> list[Path]:
    """Write ``fig`` as ``out_stem.<fmt>`` for each format; close it."""
    plt = _plt()
    outs = []
    for f in opts.formats:
        p = out_stem.with_suffix("." + f)
        fig.savefig(p, dpi=200 if opts.small else 110, bbox_inches="tight")
        outs.append(p)
    plt.close(fig)
    return outs


def axis_label(metric: str) -> str:
    """The metric's name and which direction is better."""
    name, higher = column_info(metric)
    return f"{name} ({'higher' if higher else 'lower'} is better)"


def conc_styles(concealments: list[str]) -> dict[str, dict]:
    """One colour, line style and marker per concealment, the same in every panel."""
    return {c: {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
                "marker": MARKERS[i % len(MARKERS)]} for i, c in enumerate(concealments)}


def robust_limits(values: np.ndarray, metric: str) -> tuple[float, float]:
    """y-limits covering the bulk of ``values`` (far outliers excluded: beyond 3 IQR of the quartiles),
    padded, inside the metric's range."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo_r, hi_r = column_range(metric)
    if v.size == 0:
        return (lo_r if lo_r is not None else 0.0, hi_r if hi_r is not None else 1.0)
    q1, q3 = np.percentile(v, [25, 75])
    iqr = max(q3 - q1, 1e-9 + 0.05 * abs(q3))
    inner = v[(v >= q1 - 3 * iqr) & (v <= q3 + 3 * iqr)]
    lo, hi = float(inner.min()), float(inner.max())
    pad = 0.06 * max(hi - lo, 1e-6 + 0.02 * abs(hi))
    lo, hi = lo - pad, hi + pad
    if lo_r is not None:
        lo = max(lo, lo_r)
    if hi_r is not None:
        hi = min(hi, hi_r)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _clip_marks(ax, xs: np.ndarray, ys: np.ndarray, lo: float, hi: float, color: str) -> None:
    """Points outside [lo, hi]: an arrow on the edge with the value."""
    for x, y in zip(xs, ys):
        if not np.isfinite(y) or lo <= y <= hi:
            continue
        up = y > hi
        edge = hi if up else lo
        ax.plot([x], [edge], marker="^" if up else "v", color=color, ms=7, clip_on=False, zorder=5)
        ax.annotate(f"{y:.3g}", (x, edge), textcoords="offset points", xytext=(4, -9 if up else 3), fontsize=6,
                    color=color)


def _grid(n: int, opts: FigureOptions, aspect: float = 0.75):
    plt = _plt()
    ncols = {"column": 2, "page": 4}.get(opts.size, 4)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    w = opts.width if opts.small else min(opts.width, 2.9 * ncols + 1.2)  # few panels: not one huge panel
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, w / ncols * aspect * nrows + 0.9), sharex=True, sharey=True,
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _fontsize(opts: FigureOptions) -> dict:
    return {"title": 7 if opts.small else 9, "label": 7 if opts.small else 9, "tick": 6 if opts.small else 8,
            "legend": 6 if opts.small else 8}


def _curve(g: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts = [(lv, *mean_ci(gg[metric])) for lv, gg in g.groupby("loss_param")]
    pts = [p for p in pts if p[3] > 0]
    return (np.array([p[0] for p in pts]) * 100, np.array([p[1] for p in pts]), np.array([p[2] for p in pts]))


def _scored(df: pd.DataFrame, metric: str, channel: str):
    """The scored rows of ``channel``, its systems and concealments in the spec's order, and the concealments'
    styles; a ConfigError when nothing was scored."""
    d = df[(df["channel"] == channel) & (df["status"] == "ok") & df[metric].notna()]
    if d.empty:
        raise ConfigError(f"no scored {metric} values on channel {channel!r}")
    concs = list(dict.fromkeys(d["concealment"]))
    return d, list(dict.fromkeys(d["system"])), concs, conc_styles(concs)


def quality_vs_loss(df: pd.DataFrame, metric: str, channel: str, out_stem: Path,
                    opts: FigureOptions = FigureOptions()) -> list[Path]:
    """Small multiples of quality against loss rate: an overview of each system's best concealment, then one
    panel per system (concealments as lines with 95 % CI bands), or one panel per concealment for one codec."""
    d, systems, concs, cst = _scored(df, metric, channel)
    _, higher = column_info(metric)
    curves = {(s, c): _curve(g, metric) for (s, c), g in d.groupby(["system", "concealment"], sort=False)}
    lo, hi = robust_limits(np.concatenate([m for _, m, _ in curves.values()]), metric)
    one_codec = len(systems) == 1 and len(concs) > 1
    facets = concs if one_codec else ["best"] + systems
    overview = None
    fig, axes = _grid(len(facets), opts)
    fs = _fontsize(opts)
    for ax, facet in zip(axes, facets):
        if facet == "best" and not one_codec:
            for i, s in enumerate(systems):
                best = max((c for c in concs if (s, c) in curves),
                           key=lambda c: np.nanmean(curves[(s, c)][1]) * (1 if higher else -1))
                x, m, h = curves[(s, best)]
                col = SYSTEM_COLORS[i % len(SYSTEM_COLORS)]
                ax.plot(x, np.clip(m, lo, hi), color=col, marker=MARKERS[i % len(MARKERS)], ms=3, lw=1.2,
                        label=f"{s} ({best})")
                _clip_marks(ax, x, m, lo, hi, col)
            ax.set_title("overview: best concealment per system", fontsize=fs["title"])
            overview = ax
            continue
        for c in concs:
            key = (systems[0], c) if one_codec else (facet, c)
            if key not in curves:
                continue
            x, m, h = curves[key]
            st = cst[c]
            faint = one_codec and c != facet
            ax.plot(x, np.clip(m, lo, hi), color="#bbbbbb" if faint else st["color"], linestyle=st["linestyle"],
                    marker=None if faint else st["marker"], ms=3, lw=0.8 if faint else 1.2, zorder=1 if faint else 3)
            if not faint:
                ax.fill_between(x, np.clip(m - h, lo, hi), np.clip(m + h, lo, hi), color=st["color"], alpha=0.15,
                                linewidth=0)
                _clip_marks(ax, x, m, lo, hi, st["color"])
        ax.set_title(facet, fontsize=fs["title"])
    for ax in axes:
        ax.set_ylim(lo, hi)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
    what = f"concealments of {systems[0]}" if one_codec else "concealments (colour) per system"
    buffers = d["playout"].dropna().astype(str).unique() if "playout" in d.columns else []
    behind = f", behind the {buffers[0]} playout buffer" if len(buffers) == 1 and buffers[0] else ""
    _legends(fig, opts, fs, [_line(cst[c]) for c in concs], concs, f"mean and 95 % CI over clips and seeds; {what}",
             overview, f"packet loss rate, {channel} channel (%){behind}", axis_label(metric))
    return save(fig, out_stem, opts)


def _legends(fig, opts: FigureOptions, fs: dict, handles, labels, title: str, overview=None, xlabel: str = "",
             ylabel: str = "") -> None:
    """Title and the concealment legend above the panels, the axis labels, the overview panel's legend below.
    Long labels take fewer columns, so that the legend never widens the figure."""
    ncol = 3 if opts.small else 6
    longest = max((len(str(x)) for x in labels), default=0)
    ncol = max(1, min(ncol, int(fig.get_figwidth() * 72 / max(1.0, 0.62 * fs["legend"] * (longest + 4)))))
    top_rows = math.ceil(len(labels) / ncol)
    h_in = fig.get_figheight()
    line = (fs["legend"] + 5) / 72  # inches per legend row
    top = 1 - (line * (top_rows + 1.2)) / h_in
    bottom = 0.0
    if overview is not None:
        oh, ol = overview.get_legend_handles_labels()
        ocol = 2 if opts.small else 3
        bottom = line * (math.ceil(len(ol) / ocol) + 0.6) / h_in
        fig.legend(oh, ol, loc="lower center", ncol=ocol, frameon=False, fontsize=fs["legend"] - 1,
                   bbox_to_anchor=(0.5, 0.0), title="overview panel", title_fontsize=fs["legend"] - 1)
    fig.suptitle(title, fontsize=fs["title"], y=0.995)
    fig.legend(handles, labels, loc="upper center", ncol=ncol, frameon=False, fontsize=fs["legend"],
               bbox_to_anchor=(0.5, 1 - line * 1.1 / h_in))
    lab = (fs["label"] + 6) / 72 / h_in
    if xlabel:
        fig.supxlabel(xlabel, fontsize=fs["label"], y=bottom + 0.005)
    if ylabel:
        fig.supylabel(ylabel, fontsize=fs["label"])
    fig.tight_layout(rect=(0, bottom + (lab if xlabel else 0.0), 1, top))


def _line(st: dict):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=st["color"], linestyle=st["linestyle"], marker=st["marker"], ms=3)


def distribution(df: pd.DataFrame, metric: str, channel: str, out_stem: Path, opts: FigureOptions = FigureOptions(),
                 kind: str = "cdf") -> list[Path]:
    """CDF (or box plots) of ``metric`` pooled over every clip x seed x channel instance of ``channel``, one panel
    per system, concealments as lines. With fewer than 30 values a CDF shows the points and says so."""
    plt = _plt()
    d, systems, concs, cst = _scored(df, metric, channel)
    lo, hi = robust_limits(d[metric].to_numpy(float), metric)
    fs = _fontsize(opts)
    n_inst = d["channel_key"].nunique()
    if kind == "box":
        fig, ax = plt.subplots(figsize=(opts.width, opts.width * 0.45 + 0.5))
        labels, data, cols = [], [], []
        for s in systems:
            for c in concs:
                v = d[(d["system"] == s) & (d["concealment"] == c)][metric].to_numpy(float)
                if v.size:
                    labels.append(f"{s}\n{c}")
                    data.append(np.clip(v, lo, hi))
                    cols.append(cst[c]["color"])
        bp = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=True, flierprops={"ms": 2})
        for patch, col in zip(bp["boxes"], cols):
            patch.set_facecolor(col)
            patch.set_alpha(0.4)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=60, ha="right", fontsize=fs["tick"] - 1)
        ax.set_ylim(lo, hi)
        ax.set_ylabel(axis_label(metric), fontsize=fs["label"])
        ax.grid(alpha=0.3, axis="y")
        ax.set_title(f"{metric} on {channel}: clips x seeds x {n_inst} channel instance(s)", fontsize=fs["title"])
        fig.tight_layout()
        return save(fig, out_stem, opts)
    fig, axes = _grid(len(systems), opts, aspect=0.7)
    few = []
    for ax, s in zip(axes, systems):
        for c in concs:
            v = np.sort(d[(d["system"] == s) & (d["concealment"] == c)][metric].to_numpy(float))
            if v.size == 0:
                continue
            st = cst[c]
            y = np.arange(1, v.size + 1) / v.size
            if v.size < 30:
                few.append(v.size)
                ax.plot(np.clip(v, lo, hi), y, linestyle="none", marker=st["marker"], ms=3, color=st["color"])
            else:
                ax.step(np.clip(v, lo, hi), y, where="post", color=st["color"], linestyle=st["linestyle"], lw=1.1)
        ax.set_title(s, fontsize=fs["title"])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
    for ax in axes:
        ax.set_xlim(lo, hi)
    _, higher = column_info(metric)
    n = int(d.groupby(["system", "concealment"]).size().min())
    title = f"{channel}: pooled over clips x seeds x {n_inst} channel instance(s), n >= {n} per curve"
    if few:
        title += f"; curves with under 30 values ({min(few)}-{max(few)}) drawn as points"
    _legends(fig, opts, fs, [_line(cst[c]) for c in concs], concs, title, None,
             axis_label(metric) + (" - further right is better" if higher else " - further left is better"), "CDF")
    return save(fig, out_stem, opts)


def rate_ticks(ax, rates: list[float], fontsize: float) -> None:
    """Log-scale x ticks at the measured rates, labelled in plain numbers; no minor tick labels; a rate closer
    than 25 % to the previous tick gets none."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    r = sorted({float(f"{x:.3g}") for x in rates if x > 0})
    keep: list[float] = []
    for x in r:  # drop a tick crowding the previous one (under 12 % apart on the log axis)
        if not keep or x / keep[-1] > 1.25:
            keep.append(x)
    ax.xaxis.set_major_locator(FixedLocator(keep))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(keep, [f"{x:g}" for x in keep], fontsize=fontsize, rotation=45)


def rate_quality(df: pd.DataFrame, metric: str, out_stem: Path, opts: FigureOptions = FigureOptions()) -> list[Path]:
    """Quality against measured bitrate: one panel per codec (its configs along x), concealments as lines,
    at no loss and at the middle loss level of the first swept channel (line styles)."""
    d = df[(df["status"] == "ok") & df[metric].notna()]
    sw = swept_channels(d)
    if sw:
        d = d[d["channel"] == sw[0]]
        levels = sorted(d["loss_param"].unique())
        levels = sorted({levels[0], levels[len(levels) // 2]})
        where = sw[0]
    else:
        levels = [None]
        where = "all channels"
    if d.empty:
        raise ConfigError(f"no scored {metric} values for a rate-quality figure")
    codecs = list(dict.fromkeys(d["codec"]))
    concs = list(dict.fromkeys(d["concealment"]))
    cst = conc_styles(concs)
    fs = _fontsize(opts)
    pts: dict[tuple, list[tuple[float, float, float]]] = {}
    for (cod, c, lv, _s), g in d.groupby(["codec", "concealment", "loss_param", "system"], sort=False):
        m, h, n = mean_ci(g[metric])
        if n:
            pts.setdefault((cod, c, lv), []).append((float(g["bitrate_kbps"].mean()), m, h))
    lo, hi = robust_limits(np.array([p[1] for v in pts.values() for p in v]), metric)
    fig, axes = _grid(len(codecs), opts, aspect=0.8)
    styles_lv = ["-", "--"]
    for ax, cod in zip(axes, codecs):
        for c in concs:
            for i, lv in enumerate(levels):
                pp = sorted(pts.get((cod, c, lv), []) if lv is not None else
                            [q for (a, b, _), v in pts.items() if a == cod and b == c for q in v])
                if not pp:
                    continue
                x, mv, hv = (np.array(t) for t in zip(*pp))
                st = cst[c]
                ax.errorbar(x, np.clip(mv, lo, hi), yerr=hv, color=st["color"], linestyle=styles_lv[i % 2],
                            marker=st["marker"], ms=3, lw=1.0, capsize=2, mfc="none" if i else st["color"])
                _clip_marks(ax, x, mv, lo, hi, st["color"])
        ax.set_xscale("log")
        ax.set_title(cod, fontsize=fs["title"])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
    for ax in axes:
        ax.set_ylim(lo, hi)
    for ax in axes:
        rate_ticks(ax, list(d.groupby("system")["bitrate_kbps"].mean()), fs["tick"])
    lv_text = " / ".join(("no loss" if lv == 0 else f"{100 * lv:.0f} % loss") + f" ({s})"
                         for lv, s in zip(levels, ("solid", "dashed"))) if levels != [None] else "all conditions"
    _legends(fig, opts, fs, [_line(cst[c]) for c in concs], concs, f"rate-quality on {where}: {lv_text}", None,
             "measured bitrate incl. headers (kbit/s, log scale)", axis_label(metric))
    return save(fig, out_stem, opts)


def quality_over_time(df: pd.DataFrame, channel: str, out_stem: Path,
                      opts: FigureOptions = FigureOptions()) -> list[Path]:
    plt = _plt()
    d = df[(df["channel"] == channel) & (df["status"] == "ok") & df.get("timeseries", pd.Series(dtype=object)).notna()]
    if d.empty:
        return []
    concs = list(dict.fromkeys(d["concealment"]))
    systems = list(dict.fromkeys(d["system"]))
    fs = _fontsize(opts)
    fig, ax = plt.subplots(figsize=(opts.width, opts.width * 0.4 + 0.6))
    metric = None
    lost_marked = False
    for (sys_, conc), g in d.groupby(["system", "concealment"], sort=False):
        series = list(g["timeseries"])
        metric = series[0]["metric"]
        t = np.asarray(series[0]["t"], float)
        vals = np.array([[np.nan if v is None else v for v in s["v"]][: t.size] for s in series if len(s["v"]) >= t.size])
        if vals.size == 0:
            continue
        i, j = systems.index(sys_), concs.index(conc)
        ax.plot(t, np.nanmean(vals, axis=0), label=f"{sys_} / {conc}", color=PALETTE[i % len(PALETTE)],
                linestyle=LINESTYLES[j % len(LINESTYLES)])
        if not lost_marked:
            lt = np.asarray(series[0]["lost_t"], float)
            ax.vlines(lt, 0, 0.06, transform=ax.get_xaxis_transform(), color="#c0392b", lw=0.6, label="lost packets (first clip)")
            lost_marked = True
    ax.set_xlabel("time (s), end of the 2.5 s scoring window", fontsize=fs["label"])
    ax.set_ylabel(axis_label(metric or "") + ", latest 2.5 s", fontsize=fs["label"])
    ax.set_title(f"quality over time, time-varying channel {channel}", fontsize=fs["title"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fs["legend"], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return save(fig, out_stem, opts)


def listening_strip(ref: np.ndarray, out: np.ndarray, sr: int, frame_s: float, lost: list[int], late: list[int],
                    out_png: Path, delay_s: float = 0.0) -> Path:
    """The reference and the decoded waveforms, one above the other on one time axis, with each lost (red)
    and late (orange) packet's 20 ms marked: what the listener hears, and where the channel hit it."""
    plt = _plt()
    n = min(len(ref), len(out))
    t = np.arange(n) / sr
    step = max(1, n // 4000)  # a drawing, not a signal: decimate to ~4000 points per trace
    fig, axes = plt.subplots(2, 1, figsize=(9.0, 1.6), sharex=True, sharey=True)
    for ax, x, name in zip(axes, (ref, out), ("reference", "received")):
        seg = x[: n - n % step].reshape(-1, step)
        tt = t[: n - n % step : step]
        ax.fill_between(tt, seg.min(1), seg.max(1), color="#444444", lw=0)
        ax.set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
        ax.set_yticks([])
        for k, color in ((lost, "#d62728"), (late, "#ff7f0e")):
            for i in k:
                ax.axvspan(i * frame_s + delay_s, (i + 1) * frame_s + delay_s, color=color, alpha=0.35, lw=0)
        ax.spines[["top", "right", "left"]].set_visible(False)
    axes[-1].set_xlabel("time (s); red: lost packets, orange: late packets", fontsize=6)
    axes[-1].tick_params(labelsize=6)
    axes[0].set_xlim(0, n / sr)
    fig.tight_layout(pad=0.2)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


__all__ = ["FORMATS", "SIZES", "FigureOptions", "axis_label", "distribution", "listening_strip",
           "quality_over_time", "quality_vs_delay_per_loss", "quality_vs_loss", "rate_quality", "rate_ticks",
           "robust_limits", "save"]


def playout_policy(playout: str) -> str:
    """A buffer setting's policy: ``fixed:60ms`` -> fixed, ``tsm:quantile=0.9`` -> tsm, ``none`` -> none."""
    return str(playout or "none").split(":")[0].strip().lower() or "none"


def delay_settings(df: pd.DataFrame) -> bool:
    """Whether the run compares buffer settings (more than one ``playout`` value): the delay figures apply."""
    return "playout" in df.columns and "mouth_to_ear_ms" in df.columns and df["playout"].nunique() > 1


def _delay_points(g: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One point per playout setting of ``g``: (mean mouth-to-ear delay, metric mean, 95 % half-width), sorted by
    delay; None where no setting has a score."""
    pts = []
    for _setting, h in g.groupby("playout", sort=False):
        m, ci, n = mean_ci(h[metric])
        if n:
            pts.append((float(h["mouth_to_ear_ms"].mean()), m, ci))
    if not pts:
        return None
    x, mv, civ = (np.array(t) for t in zip(*sorted(pts)))
    return x, mv, civ


def quality_vs_delay(df: pd.DataFrame, metric: str, out_stem: Path, opts: FigureOptions = FigureOptions()) -> list[Path]:
    """Quality against the mean mouth-to-ear delay: one panel per system and concealment, one line per buffer
    policy (fixed, adaptive, tsm, speex), one point per buffer setting (its mean over clips, seeds and loss
    levels; error bars: 95 % t interval), one line style per jitter setting."""
    d = df[(df["status"] == "ok") & df[metric].notna() & df["mouth_to_ear_ms"].notna()]
    if d.empty or d["playout"].nunique() < 2:
        raise ConfigError(f"no {metric} values over two or more playout settings for a quality-delay figure")
    d = d.assign(_policy=d["playout"].map(playout_policy), _jit=d["jitter"].fillna("") if "jitter" in d else "")
    panels = list(dict.fromkeys(zip(d["system"], d["concealment"])))[:16]
    policies = list(dict.fromkeys(d["_policy"]))
    jitters = list(dict.fromkeys(d["_jit"]))
    fs = _fontsize(opts)
    lo, hi = robust_limits(d[metric].to_numpy(dtype=float), metric)
    fig, axes = _grid(len(panels), opts, aspect=0.8)
    colors = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(policies)}
    for ax, (sysname, conc) in zip(axes, panels):
        g = d[(d["system"] == sysname) & (d["concealment"] == conc)]
        for pi, pol in enumerate(policies):
            for ji, jit in enumerate(jitters):
                pts = _delay_points(g[(g["_policy"] == pol) & (g["_jit"] == jit)], metric)
                if pts is None:
                    continue
                x, mv, civ = pts
                ax.errorbar(x, np.clip(mv, lo, hi), yerr=civ, color=colors[pol], marker=MARKERS[pi % len(MARKERS)],
                            linestyle=LINESTYLES[ji % len(LINESTYLES)], ms=4, lw=1.1, capsize=2)
        title = f"{sysname} / {conc}" if d["concealment"].nunique() > 1 else str(sysname)
        ax.set_title("\n".join(textwrap.wrap(title, 28 if len(panels) > 2 else 60)), fontsize=fs["title"])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
        ax.set_ylim(lo, hi)
    plt = _plt()
    handles = [plt.Line2D([], [], color=colors[p], marker=MARKERS[i % len(MARKERS)]) for i, p in enumerate(policies)]
    labels = list(policies)
    if len(jitters) > 1:
        handles += [plt.Line2D([], [], color="k", linestyle=LINESTYLES[i % len(LINESTYLES)]) for i in range(len(jitters))]
        labels += [f"jitter {j or 'none'}" for j in jitters]
    _legends(fig, opts, fs, handles, labels, "quality against mouth-to-ear delay, per buffer policy", None,
             "mean mouth-to-ear delay (ms): codec + packetisation + network + buffer", axis_label(metric))
    return save(fig, out_stem, opts)


def quality_vs_delay_per_loss(df: pd.DataFrame, metric: str, channel: str, out_stem: Path,
                              opts: FigureOptions = FigureOptions()) -> list[Path]:
    """Quality against mouth-to-ear delay on one channel, one panel per loss level: one line per system (its
    best concealment on this channel, named in the legend), one point per playout setting (mean over clips and
    seeds, 95 % t interval). Systems are thus compared at equal delay: a scheme that needs a later packet is
    drawn where that wait puts it."""
    d = df[(df["channel"] == channel) & (df["status"] == "ok") & df[metric].notna() & df["mouth_to_ear_ms"].notna()]
    if d.empty or d["playout"].nunique() < 2:
        raise ConfigError(f"no {metric} values on channel {channel!r} over two or more playout settings")
    _, higher = column_info(metric)
    systems = list(dict.fromkeys(d["system"]))
    levels = sorted(d["loss_param"].unique())
    best = {}
    for sysname in systems:
        g = d[d["system"] == sysname]
        means = g.groupby("concealment", sort=False)[metric].mean()
        best[sysname] = str(means.idxmax() if higher else means.idxmin())
    fs = _fontsize(opts)
    lo, hi = robust_limits(d[metric].to_numpy(dtype=float), metric)
    fig, axes = _grid(len(levels), opts, aspect=1.1)
    handles, labels = [], []
    plt = _plt()
    for i, sysname in enumerate(systems):
        col = PALETTE[i % len(PALETTE)]
        handles.append(plt.Line2D([], [], color=col, marker=MARKERS[i % len(MARKERS)], ms=4))
        labels.append(f"{sysname} ({best[sysname]})")
    for ax, lv in zip(axes, levels):
        for i, sysname in enumerate(systems):
            pts = _delay_points(d[(d["loss_param"] == lv) & (d["system"] == sysname)
                                  & (d["concealment"] == best[sysname])], metric)
            if pts is None:
                continue
            x, mv, civ = pts
            ax.errorbar(x, np.clip(mv, lo, hi), yerr=civ, color=PALETTE[i % len(PALETTE)],
                        marker=MARKERS[i % len(MARKERS)], ms=4, lw=1.1, capsize=2)
        ax.set_title(f"{channel} {100 * lv:.0f} % loss", fontsize=fs["title"])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
        ax.set_ylim(lo, hi)
    settings = ", ".join(playout_order(d["playout"].astype(str)))
    _legends(fig, opts, fs, handles, labels, f"quality against mouth-to-ear delay, one point per playout setting "
             f"({settings}); each system's best concealment on {channel}", None,
             "mean mouth-to-ear delay (ms): codec + packetisation + network + buffer", axis_label(metric))
    return save(fig, out_stem, opts)


def delay_cdf(df: pd.DataFrame, out_stem: Path, opts: FigureOptions = FigureOptions()) -> list[Path]:
    """The distribution of playout delay (send to play, per packet) per buffer setting: the rows' per-packet
    quantiles averaged quantile by quantile (over clips and seeds), one panel per jitter setting."""
    if "playout_delay_quantiles_ms" not in df.columns:
        raise ConfigError("the rows carry no playout-delay quantiles (written by an older lossbench)")
    d = df[(df["status"] == "ok") & df["playout_delay_quantiles_ms"].map(lambda v: v is not None and len(v) > 0)]
    if d.empty:
        raise ConfigError("no row has a playout buffer: no delay distribution to draw")
    # one row per (clip, channel, seed): the quantiles do not depend on the concealment
    d = d.drop_duplicates(subset=["clip", "system", "channel_key", "seed"])
    jit = d["jitter"].fillna("") if "jitter" in d.columns else pd.Series("", index=d.index)
    jitters = list(dict.fromkeys(jit))
    settings = list(dict.fromkeys(d["playout"]))
    fs = _fontsize(opts)
    fig, axes = _grid(len(jitters), opts, aspect=0.7)
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(settings)}
    for ax, j in zip(axes, jitters):
        g = d[jit == j]
        for i, s in enumerate(settings):
            qs = [np.asarray(v, float) for v in g[g["playout"] == s]["playout_delay_quantiles_ms"]]
            if not qs:
                continue
            q = np.mean(np.array(qs, dtype=float), axis=0)
            p = np.linspace(0, 1, q.size)
            ax.plot(q, p, color=colors[s], linestyle=LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)], lw=1.2)
        ax.set_title(f"jitter {j or 'none'}", fontsize=fs["title"])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=fs["tick"])
        ax.set_ylim(0, 1)
    plt = _plt()
    handles = [plt.Line2D([], [], color=colors[s], linestyle=LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)])
               for i, s in enumerate(settings)]
    _legends(fig, opts, fs, handles, settings, "playout delay per buffer (send to play, per packet)", None,
             "playout delay (ms)", "fraction of packets (CDF)")
    return save(fig, out_stem, opts)
