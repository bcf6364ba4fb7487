"""Loading results and the shared vocabulary of the report (metric names, colours)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError

#: metric column -> (axis label, higher is better)
METRIC_INFO = {
    "pesq_wb": ("PESQ-WB (MOS-LQO)", True),
    "pesq_nb": ("PESQ-NB (MOS-LQO)", True),
    "stoi": ("STOI", True),
    "estoi": ("ESTOI", True),
    "si_snr": ("SI-SNR (dB)", True),
    "sdr": ("SDR (dB)", True),
    "snr": ("SNR (dB)", True),
    "mfcc_dist": ("MFCC distance (lower is better)", False),
    "plcmos": ("PLCMOS", True),
    "dnsmos_ovrl": ("DNSMOS overall", True),
    "dnsmos_sig": ("DNSMOS signal", True),
    "dnsmos_bak": ("DNSMOS background", True),
    "dnsmos_p808": ("DNSMOS P.808", True),
}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def load_results(run_dir: str | Path) -> pd.DataFrame:
    p = Path(run_dir) / "results.parquet"
    if not p.exists():
        raise ConfigError(f"{run_dir}: no results.parquet (run 'lossbench sweep' first)")
    df = pd.read_parquet(p)
    if df.empty:
        raise ConfigError(f"{p} holds no rows")
    return df


def metric_columns(df: pd.DataFrame) -> list[str]:
    return [m for m in METRIC_INFO if m in df.columns and df[m].notna().any()]


def styles(df: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """A fixed style per (system, concealment): colour by system, line style by concealment."""
    systems = list(dict.fromkeys(df["system"]))
    concs = list(dict.fromkeys(df["concealment"]))
    out = {}
    for s in systems:
        for c in concs:
            i, j = systems.index(s), concs.index(c)
            out[(s, c)] = {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[j % len(LINESTYLES)],
                           "marker": MARKERS[j % len(MARKERS)]}
    return out


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
    d = df[~df["channel_key"].astype(str).str.startswith("trace:")]
    g = d.groupby("channel")["loss_param"].nunique()
    return [c for c in g.index if g[c] > 1]


def distribution_channels(df: pd.DataFrame) -> list[str]:
    """Channels shown as CDFs: fixed models (e.g. WLAN) and trace sets."""
    sw = set(swept_channels(df))
    return [c for c in dict.fromkeys(df["channel"]) if c not in sw]
