"""Markdown tables of a results table."""

from __future__ import annotations

import pandas as pd

from lossbench.metrics.table import column_info
from lossbench.reports.data import mean_ci, playout_order, swept_channels


def summary_stats(df: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(means, CI half-widths) per system/concealment (rows) and channel condition (columns), and the order
    of the conditions."""
    d = df[df["status"] == "ok"].copy()
    sw = set(swept_channels(d))
    d["condition"] = [f"{c} {100 * loss:.0f}%" if c in sw else c for c, loss in zip(d["channel"], d["loss_param"])]
    play = d["playout"].fillna("").astype(str) if "playout" in d.columns else pd.Series("", index=d.index)
    if play.nunique() > 1:  # grouped by delay: the conditions of each playout setting together
        d["condition"] = [f"{p} · {c}" for p, c in zip(play, d["condition"])]
        rank = {p: i for i, p in enumerate(playout_order(play))}
        d["_play"] = play.map(rank)
        order = list(dict.fromkeys(d.sort_values(["_play", "channel", "loss_param"])["condition"]))
    else:
        order = list(dict.fromkeys(d.sort_values(["channel", "loss_param"])["condition"]))
    means: dict = {}
    halves: dict = {}
    for (s, c, cond), g in d.groupby(["system", "concealment", "condition"], sort=False):
        m, h, n = mean_ci(g[metric])
        if n:
            means.setdefault((s, c), {})[cond] = m
            halves.setdefault((s, c), {})[cond] = h
    M = pd.DataFrame.from_dict(means, orient="index")
    H = pd.DataFrame.from_dict(halves, orient="index")
    cols = [c for c in order if c in M.columns]
    return M.reindex(columns=cols), H.reindex(columns=cols), cols


def summary_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean (± 95 % CI) of ``metric`` per system/concealment (rows) and channel condition (columns)."""
    M, H, cols = summary_stats(df, metric)
    t = pd.DataFrame({c: [("" if pd.isna(m) else f"{m:.2f} ± {h:.2f}") for m, h in zip(M[c], H[c])] for c in cols},
                     index=[f"{s} / {c}" for s, c in M.index])
    t.index.name = "system / concealment"
    return t


#: a trace channel with at most this many traces gets a table per trace
MAX_TRACES_TABULATED = 40


def per_trace_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean ``metric`` per system/concealment (rows) and trace (columns: the trace file and the loss it dealt) of
    the trace channels with more than one trace (the Deep PLC Challenge reports per trace); empty if none."""
    d = df[(df["status"] == "ok") & (df.get("channel_kind", pd.Series(index=df.index, dtype=object)) == "trace")]
    if d.empty or metric not in d.columns:
        return pd.DataFrame()
    keys = d.groupby("channel")["channel_key"].nunique()
    d = d[d["channel"].isin(keys[(keys > 1) & (keys <= MAX_TRACES_TABULATED)].index)]
    if d.empty:
        return pd.DataFrame()
    file = d["channel_key"].astype(str).str.removeprefix("trace:").str.split("|").str[0].map(lambda s: s.rsplit("/", 1)[-1])
    loss = d.groupby("channel_key")["effective_loss"].transform("mean") if "effective_loss" in d.columns else None
    col = file if loss is None else file + " (" + (100 * loss).round(1).astype(str) + " %)"
    t = d.assign(_row=d["system"].astype(str) + " / " + d["concealment"].astype(str), _col=col).pivot_table(
        index="_row", columns="_col", values=metric, aggfunc="mean", sort=False)
    t.index.name, t.columns.name = "system / concealment", None
    return t.round(2)


def live_table(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Live runs (``lossbench live run``): per live row, each metric live and in the offline twin (lossbench's model
    of the client's codec and receiver on the same packets), their difference, and what the run measured of the
    network, the relay and the client; empty if the run is not a live one."""
    if "live_role" not in df.columns:
        return pd.DataFrame()
    d = df[(df["live_role"] == "live") & (df["status"] == "ok")]
    if d.empty:
        return pd.DataFrame()
    out = pd.DataFrame(index=d.index)
    out["client"] = d["system"]
    out["repeat"] = d["live_repeat"].astype(int)
    out["loss %"] = (100 * d["live_loss"]).round(1)
    for m in metrics:
        if m in d.columns:
            out[f"{m} live"] = d[m].round(3)
            if f"twin_{m}" in d.columns:
                out[f"{m} twin"] = d[f"twin_{m}"].round(3)
                out[f"{m} live - twin"] = (d[m] - d[f"twin_{m}"]).round(3)
    if "client_concealed_samples" in d.columns:
        out["concealed %"] = (100 * d["client_concealed_samples"] / d["client_total_samples_received"]).round(1)
    if "client_dec_plc_ms" in d.columns:
        out["decoder PLC ms"] = d["client_dec_plc_ms"].round(0)
    out["lateness p99 ms"] = d["live_lateness_p99_ms"].round(2)
    out["align spread / residual ms"] = [f"{a:.1f} / {b:.1f}" for a, b in
                                         zip(d["live_align_spread_ms"], d["live_align_residual_ms"])]
    out["flagged"] = [f if f else "" for f in d["live_flag"].fillna("")]
    return out.reset_index(drop=True)


def _tex(text: str) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        out = out.replace(a, b)
    return out.replace("±", r"$\pm$").replace("→", r"$\rightarrow$")


def latex_table(df: pd.DataFrame, metric: str) -> str:
    """A booktabs table of mean ± 95 % CI per system/concealment and condition; the best mean of each column
    in bold (by the metric's direction)."""
    M, H, cols = summary_stats(df, metric)
    name, higher = column_info(metric)
    best = {c: (M[c].max() if higher else M[c].min()) for c in cols}
    lines = [r"\begin{table*}[t]", r"\centering", r"\small",
             rf"\caption{{{_tex(name)} ({'higher' if higher else 'lower'} is better): mean $\pm$ 95\,\% CI over "
             r"clips and seeds; best per column in bold.}",
             rf"\label{{tab:{_tex(metric).replace(chr(92), '')}}}",
             r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\toprule",
             "system / concealment & " + " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
    for (s, c), row in M.iterrows():
        cells = []
        for col in cols:
            m, h = row[col], H.loc[(s, c), col]
            if pd.isna(m):
                cells.append("--")
                continue
            v = f"{m:.2f} $\\pm$ {h:.2f}"
            cells.append(rf"\textbf{{{v}}}" if m == best[col] else v)
        lines.append(f"{_tex(s)} / {_tex(c)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table*}", ""]
    return "\n".join(lines)


def latex_compare(t: pd.DataFrame, config: str, metric: str, baseline: str) -> str:
    """A booktabs table of :func:`lossbench.reports.compare.compare_rows`."""
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_tex(metric)} of {_tex(config)}: paired difference to {_tex(baseline)} (95\,\% t interval) "
             r"and Wilcoxon signed-rank $p$.}",
             r"\begin{tabular}{llrrrr}", r"\toprule",
             r"channel & concealment & mean & difference & $p$ & $n$ \\", r"\midrule"]
    for r in t.itertuples():
        ch = _tex(r.channel) + (f" {100 * r.level:.0f}\\%" if r.level >= 0 else "")
        if t["playout"].nunique() > 1:
            ch += f", {_tex(r.playout)}"
        diff = "--" if r.concealment == baseline else f"{r.diff:+.2f} [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}]"
        p = "--" if pd.isna(r.p) else f"{r.p:.2g}"
        lines.append(f"{ch} & {_tex(r.concealment)} & {r.mean:.2f} & {diff} & {p} & {r.n} " + r"\\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


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
        name, higher = column_info(m)
        parts.append(f"## {name} ({'higher' if higher else 'lower'} is better)\n")
        parts.append(summary_table(df, m).to_markdown() + "\n")
        pt = per_trace_table(df, m)
        if not pt.empty:
            parts.append(f"### {name} per trace (mean over clips; the loss each trace dealt)\n")
            parts.append(pt.to_markdown() + "\n")
    lt = live_table(df, metrics)
    if not lt.empty:
        parts.append("## Live against the offline twin (the same packets through lossbench's model of the client)\n")
        parts.append(lt.to_markdown(index=False) + "\n")
    parts.append("## Measured bitrate and speed (mean per system)\n")
    parts.append(rate_table(df).to_markdown() + "\n")
    err = error_table(df)
    if not err.empty:
        parts.append("## Tasks that failed\n")
        parts.append(err.to_markdown(index=False) + "\n")
    return "\n".join(parts)
