"""Concealment strategies side by side on the same clips, channels and seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.errors import ConfigError, choices
from lossbench.reports.data import load_results, swept_channels


def compare_rows(df, codec: str, metric: str = "pesq_wb", baseline: str | None = None):
    """Per channel condition and concealment of ``codec``: mean, paired difference to ``baseline`` with its 95 %
    t interval, and the Wilcoxon signed-rank p-value over the (clip, channel instance, seed) pairs both scored.

    Returns (DataFrame with columns channel, playout, level, concealment, mean, diff, ci_lo, ci_hi, p, n; the codec
    config; the baseline)."""
    import pandas as pd
    from scipy.stats import wilcoxon

    from lossbench.reports.data import mean_ci

    df = df[df["status"] == "ok"]
    d = df[(df["codec_config"] == codec) | (df["system"] == codec) | (df["codec"] == codec)]
    if d.empty:
        raise ConfigError(f"no results for codec {codec!r}; valid: {choices(set(df['system']) | set(df['codec_config']))}")
    if d["codec_config"].nunique() > 1:
        raise ConfigError(f"{codec!r} matches several configs; name one of: {choices(set(d['codec_config']))}")
    if metric not in d.columns:
        raise ConfigError(f"no metric column {metric!r} in the results")
    concs = list(dict.fromkeys(d["concealment"]))
    if baseline is None:
        baseline = "zeros" if "zeros" in concs else concs[0]
    if baseline not in concs:
        raise ConfigError(f"baseline {baseline!r} was not run for {codec!r}; valid: {choices(concs)}")
    # swept channels compare per loss level; trace sets and fixed models over all their instances
    d = d.copy()
    sw = set(swept_channels(d))
    d["level"] = [lv if ch in sw else -1.0 for ch, lv in zip(d["channel"], d["loss_param"])]
    # and per playout buffer setting: a comparison never pools rows of different delays
    d["playout"] = d["playout"].fillna("").astype(str) if "playout" in d.columns else ""
    pairs = d.pivot_table(index=["channel", "playout", "level", "clip", "channel_key", "seed"], columns="concealment",
                          values=metric)
    rows = []
    for (ch, play, lv), g in pairs.groupby(level=["channel", "playout", "level"], sort=False):
        for c in concs:
            if c not in g.columns:
                continue
            both = g[[baseline]].dropna() if c == baseline else g[[baseline, c]].dropna()
            diff = both[c] - both[baseline]
            p = float("nan")
            if c != baseline and len(both) >= 2 and np.any(diff != 0):
                p = float(wilcoxon(both[c], both[baseline]).pvalue)
            dm, dh, _ = mean_ci(diff)
            rows.append({"channel": ch, "playout": play, "level": lv, "concealment": c, "mean": float(g[c].mean()), "diff": dm,
                         "ci_lo": dm - dh, "ci_hi": dm + dh, "p": p, "n": len(both)})
    return pd.DataFrame(rows), str(d["codec_config"].iloc[0]), baseline


def compare_concealments(run_dir: str | Path, codec: str, metric: str = "pesq_wb",
                         baseline: str | None = None) -> str:
    """A table per channel condition: mean metric per concealment, its paired
    difference to ``baseline`` and a Wilcoxon signed-rank p-value over the
    (clip, channel instance, seed) pairs both scored."""
    t, config, baseline = compare_rows(load_results(run_dir), codec, metric, baseline)
    lines = [f"{metric} for {config}, paired against '{baseline}' (Wilcoxon signed-rank)", ""]
    header = (f"{'channel':>12} {'playout':>12} {'loss %':>7} {'concealment':>24} {'mean':>7} {'diff':>7} {'p':>9} "
              f"{'n':>4}")
    lines += [header, "-" * len(header)]
    for r in t.itertuples():
        level = f"{100 * r.level:7.1f}" if r.level >= 0 else f"{'all':>7}"
        lines.append(f"{r.channel:>12} {r.playout:>12} {level} {r.concealment:>24} {r.mean:7.3f} {r.diff:+7.3f} "
                     f"{r.p:9.2g} {r.n:4d}")
    return "\n".join(lines)
