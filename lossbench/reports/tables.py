"""Markdown tables of a results table."""

from __future__ import annotations

import pandas as pd

from lossbench.reports.data import METRIC_INFO, mean_ci, swept_channels


def summary_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean (± 95 % CI) of ``metric`` per system/concealment (rows) and channel condition (columns)."""
    d = df[df["status"] == "ok"].copy()
    sw = set(swept_channels(d))
    d["condition"] = [f"{c} {100 * l:.0f}%" if c in sw else c for c, l in zip(d["channel"], d["loss_param"])]
    order = list(dict.fromkeys(d.sort_values(["channel", "loss_param"])["condition"]))
    cells = {}
    for (s, c, cond), g in d.groupby(["system", "concealment", "condition"], sort=False):
        m, h, n = mean_ci(g[metric])
        cells.setdefault((s, c), {})[cond] = "" if n == 0 else f"{m:.2f} ± {h:.2f}"
    t = pd.DataFrame.from_dict(cells, orient="index")
    t = t[[c for c in order if c in t.columns]]
    t.index = [f"{s} / {c}" for s, c in t.index]
    t.index.name = "system / concealment"
    return t


def rate_table(df: pd.DataFrame) -> pd.DataFrame:
    d = df[df["status"] == "ok"]
    cols = [c for c in ("bitrate_kbps", "payload_kbps", "header_kbps", "fec_kbps", "lbrr_fraction", "dred_fraction",
                        "dred_kbps", "encode_rtf",
                        "decode_rtf") if c in d.columns]
    t = d.groupby(["system"], sort=False)[cols].mean().round(3)
    return t


def error_table(df: pd.DataFrame) -> pd.DataFrame:
    e = df[df["status"] != "ok"]
    if e.empty:
        return pd.DataFrame()
    return e.groupby(["system", "concealment", "error"], sort=False).size().rename("tasks").reset_index()


def markdown(df: pd.DataFrame, metrics: list[str]) -> str:
    parts = ["# Results\n"]
    for m in metrics:
        name, higher = METRIC_INFO.get(m, (m, True))
        parts.append(f"## {name} ({'higher' if higher else 'lower'} is better)\n")
        parts.append(summary_table(df, m).to_markdown() + "\n")
    parts.append("## Measured bitrate and speed (mean per system)\n")
    parts.append(rate_table(df).to_markdown() + "\n")
    err = error_table(df)
    if not err.empty:
        parts.append("## Tasks that failed\n")
        parts.append(err.to_markdown(index=False) + "\n")
    return "\n".join(parts)
