"""Loading results and the shared vocabulary of the report (colours; metric names come from the metric table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError
from lossbench.metrics.table import COLUMNS

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def load_results(run_dir: str | Path) -> pd.DataFrame:
    p = Path(run_dir) / "results.parquet"
    if not p.exists():
        raise ConfigError(f"{run_dir}: no results.parquet (run 'lossbench sweep' first)")
    from lossbench.benchmarks.store import structured

    df = structured(pd.read_parquet(p))
    if df.empty:
        raise ConfigError(f"{p} holds no rows")
    if "channel_kind" not in df.columns and "channel_key" in df.columns:  # written before rows had channel_kind
        key = df["channel_key"].astype(str)
        df["channel_kind"] = np.where(key.str.startswith("trace:"), "trace", key.str.split(":").str[0])
    return df


def scored_columns(df: pd.DataFrame) -> list[str]:
    """The metric columns of the table (in the metric table's order) that hold at least one value."""
    return [m for m in COLUMNS if m in df.columns and df[m].notna().any()]


def mean_ci(x: pd.Series) -> tuple[float, float, int]:
    """Mean and half-width of the 95 % t confidence interval."""
    from scipy import stats

    v = x.dropna().to_numpy(dtype=float)
    n = v.size
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(v[0]), 0.0, 1
    h = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return float(v.mean()), float(h), n


def swept_channels(df: pd.DataFrame) -> list[str]:
    """Model channels with several loss levels (quality-vs-loss curves)."""
    d = df[df["channel_kind"] != "trace"]
    g = d.groupby("channel")["loss_param"].nunique()
    return [c for c in g.index if g[c] > 1]


def distribution_channels(df: pd.DataFrame) -> list[str]:
    """Channels shown as CDFs: fixed models (e.g. WLAN) and trace sets."""
    sw = set(swept_channels(df))
    return [c for c in dict.fromkeys(df["channel"]) if c not in sw]


def playout_order(settings) -> list[str]:
    """Buffer settings in a reader's order: fixed buffers by their delay, then the others as they come."""
    from lossbench.netsim.spec import parse_seconds

    def key(item: tuple[int, str]):
        i, p = item
        head, _, rest = p.partition(":")
        if head == "fixed":
            try:
                return (0, parse_seconds(rest), i)
            except ConfigError:  # an unparsable setting keeps its place among the others
                pass
        return (1, 0.0, i)

    return [p for _, p in sorted(enumerate(dict.fromkeys(settings)), key=key)]


def playout_settings(df: pd.DataFrame, channel: str | None = None) -> list[str]:
    """The playout buffer settings of ``channel``'s rows (of every row without one), fixed ones by delay."""
    if "playout" not in df.columns:
        return [""]
    d = df if channel is None else df[df["channel"] == channel]
    return playout_order(d["playout"].fillna("").astype(str))


def label_packets(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each system's label ending in the audio its packets carry ("Opus 9 kbps · 20 ms packets"),
    from the rows' ``packet_ms``: a loss rate removes that much audio per lost packet, so a reader comparing two
    systems at one loss rate sees whether they meet it on equal footing."""
    if "packet_ms" not in df.columns or df.empty:
        return df
    ms = df.groupby("system")["packet_ms"].median()
    names = {s: (f"{s} · {ms[s]:g} ms packets" if np.isfinite(ms[s]) else str(s)) for s in ms.index}
    return df.assign(system=df["system"].map(names).fillna(df["system"]))
