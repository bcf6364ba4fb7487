"""The figures papers in this field print, from a results table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.reports.data import METRIC_INFO, mean_ci, styles, swept_channels


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, out: Path) -> Path:
    """Grid, legend outside on the right, save, close."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    _plt().close(fig)
    return out


def _label(s: str, c: str) -> str:
    return f"{s} / {c}"


def quality_vs_loss(df: pd.DataFrame, metric: str, channel: str, out: Path) -> Path:
    plt = _plt()
    st = styles(df)
    d = df[(df["channel"] == channel) & (df["status"] == "ok")]
    fig, ax = plt.subplots(figsize=(10.5, 4.8))
    for (sys_, conc), g in d.groupby(["system", "concealment"], sort=False):
        pts = [(lv, *mean_ci(gg[metric])) for lv, gg in g.groupby("loss_param")]
        pts = [p for p in pts if p[3] > 0]
        if not pts:
            continue
        x = np.array([p[0] for p in pts]) * 100
        m = np.array([p[1] for p in pts])
        h = np.array([p[2] for p in pts])
        s = st[(sys_, conc)]
        ax.plot(x, m, label=_label(sys_, conc), color=s["color"], linestyle=s["linestyle"], marker=s["marker"], ms=4)
        ax.fill_between(x, m - h, m + h, color=s["color"], alpha=0.12, linewidth=0)
    name, _ = METRIC_INFO.get(metric, (metric, True))
    ax.set_xlabel(f"packet loss rate, {channel} channel (%)")
    ax.set_ylabel(name)
    ax.set_title(f"{name} vs loss ({channel}); mean and 95 % CI over clips and seeds", fontsize=10)
    return _finish(fig, ax, out)


def cdf(df: pd.DataFrame, metric: str, channel: str, out: Path) -> Path:
    plt = _plt()
    st = styles(df)
    d = df[(df["channel"] == channel) & (df["status"] == "ok")]
    fig, ax = plt.subplots(figsize=(10.5, 4.8))
    for (sys_, conc), g in d.groupby(["system", "concealment"], sort=False):
        v = np.sort(g[metric].dropna().to_numpy(float))
        if v.size == 0:
            continue
        s = st[(sys_, conc)]
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", label=_label(sys_, conc), color=s["color"],
                linestyle=s["linestyle"])
    name, higher = METRIC_INFO.get(metric, (metric, True))
    ax.set_xlabel(name + ("  (further right is better)" if higher else "  (further left is better)"))
    ax.set_ylabel("CDF")
    n = d["channel_key"].nunique()
    ax.set_title(f"CDF of {name} over clips, seeds and {n} channel instance(s): {channel}", fontsize=10)
    return _finish(fig, ax, out)


def rate_quality(df: pd.DataFrame, metric: str, out: Path) -> Path:
    """Quality against measured bitrate, one panel per loss level of the first swept channel."""
    plt = _plt()
    st = styles(df)
    d = df[df["status"] == "ok"]
    sw = swept_channels(d)
    if sw:
        d = d[d["channel"] == sw[0]]
        levels = sorted(d["loss_param"].unique())
        levels = sorted({levels[0], levels[len(levels) // 2], levels[-1]})
        title_ch = sw[0]
    else:
        levels = [None]
        title_ch = "all channels"
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels) + 3.0, 4.2), squeeze=False, sharey=True)
    for ax, lv in zip(axes[0], levels):
        dd = d if lv is None else d[d["loss_param"] == lv]
        for (sys_, conc), g in dd.groupby(["system", "concealment"], sort=False):
            m, h, n = mean_ci(g[metric])
            if n == 0:
                continue
            s = st[(sys_, conc)]
            ax.errorbar(g["bitrate_kbps"].mean(), m, yerr=h, fmt=s["marker"], color=s["color"], label=_label(sys_, conc),
                        capsize=3, ms=6, mfc="none" if s["linestyle"] != "-" else s["color"])
        ax.set_xscale("log")
        ax.set_xlabel("measured bitrate incl. headers (kbit/s, log scale)")
        ax.set_title("no loss" if lv == 0 else (f"{100 * lv:.0f} % loss" if lv is not None else ""), fontsize=10)
        ax.grid(alpha=0.3)
    name, _ = METRIC_INFO.get(metric, (metric, True))
    axes[0][0].set_ylabel(name)
    axes[0][-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(f"rate–quality ({title_ch})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def quality_over_time(df: pd.DataFrame, channel: str, out: Path) -> Path | None:
    plt = _plt()
    st = styles(df)
    d = df[(df["channel"] == channel) & (df["status"] == "ok") & df.get("timeseries", pd.Series(dtype=object)).notna()]
    if d.empty:
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5))
    metric = None
    lost_marked = False
    for (sys_, conc), g in d.groupby(["system", "concealment"], sort=False):
        series = [json.loads(s) for s in g["timeseries"]]
        metric = series[0]["metric"]
        t = np.asarray(series[0]["t"], float)
        vals = np.array([[np.nan if v is None else v for v in s["v"]][: t.size] for s in series if len(s["v"]) >= t.size])
        if vals.size == 0:
            continue
        s = st[(sys_, conc)]
        ax.plot(t, np.nanmean(vals, axis=0), label=_label(sys_, conc), color=s["color"], linestyle=s["linestyle"])
        if not lost_marked:
            lt = np.asarray(series[0]["lost_t"], float)
            ax.vlines(lt, 0, 0.06, transform=ax.get_xaxis_transform(), color="#c0392b", lw=0.6, label="lost packets (first clip)")
            lost_marked = True
    name, _ = METRIC_INFO.get(metric or "", (metric, True))
    ax.set_xlabel("time (s), end of the 2.5 s scoring window")
    ax.set_ylabel(f"{name} over the latest 2.5 s")
    ax.set_title(f"quality over time, time-varying channel {channel}", fontsize=10)
    return _finish(fig, ax, out)
