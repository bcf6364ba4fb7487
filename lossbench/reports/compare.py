"""Concealment strategies side by side on the same clips, channels and seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.errors import ConfigError, choices
from lossbench.reports.data import load_results, swept_channels


def compare_concealments(run_dir: str | Path, codec: str, metric: str = "pesq_wb",
                         baseline: str | None = None) -> str:
    """A table per channel condition: mean metric per concealment, its paired
    difference to ``baseline`` and a Wilcoxon signed-rank p-value over the
    (clip, channel instance, seed) pairs both scored."""
    from scipy.stats import wilcoxon

    df = load_results(run_dir)
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
    pairs = d.pivot_table(index=["channel", "level", "clip", "channel_key", "seed"], columns="concealment",
                          values=metric)
    lines = [f"{metric} for {d['codec_config'].iloc[0]}, paired against '{baseline}' (Wilcoxon signed-rank)", ""]
    header = f"{'channel':>12} {'loss %':>7} {'concealment':>24} {'mean':>7} {'diff':>7} {'p':>9} {'n':>4}"
    lines += [header, "-" * len(header)]
    for (ch, lv), g in pairs.groupby(level=["channel", "level"]):
        for c in concs:
            if c not in g.columns:
                continue
            both = g[[baseline]].dropna() if c == baseline else g[[baseline, c]].dropna()
            diff = both[c] - both[baseline]
            p = float("nan")
            if c != baseline and len(both) >= 2 and np.any(diff != 0):
                p = float(wilcoxon(both[c], both[baseline]).pvalue)
            level = f"{100 * lv:7.1f}" if lv >= 0 else f"{'all':>7}"
            lines.append(f"{ch:>12} {level} {c:>24} {g[c].mean():7.3f} {diff.mean():+7.3f} {p:9.2g} {len(both):4d}")
    return "\n".join(lines)
