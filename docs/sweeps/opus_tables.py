"""Tables of docs/opus.md from a run of docs/sweeps/opus.toml.

Run: python docs/sweeps/opus_tables.py runs/opus
"""

from __future__ import annotations

import sys

import pandas as pd

CHANNELS = [("bernoulli", [0.0, 0.1, 0.2, 0.3, 0.4]), ("wlan", [0.1, 0.2, 0.4]), ("lossgen", [0.1, 0.2, 0.4])]
TOOL = {"opus-plc": "classic PLC", "opus-deep-plc": "deep PLC", "opus-fec": "LBRR", "opus-dred": "DRED"}


def label(row) -> str:
    sysname = row["system"]
    tool = TOOL[row["concealment"]]
    if "NoLACE" in sysname:
        return "NoLACE + deep PLC"
    if "DRED" in sysname:
        return sysname.split(" ", 1)[1] + " (+ deep PLC)"
    if "LBRR" in sysname:
        return "LBRR (+ classic PLC)"
    return tool


def main(run: str) -> None:
    df = pd.read_parquet(f"{run}/results.parquet")
    df = df[df["status"] == "ok"].copy()
    df["rate"] = df["system"].str.split(" ").str[0]
    df["tool"] = df.apply(label, axis=1)
    print("## Rate: what the packets carried (mean over clips, payload without the 40-byte headers)\n")
    r = df.groupby(["rate", "tool"], sort=False)[["payload_kbps", "dred_kbps", "dred_fraction", "lbrr_fraction"]].mean()
    print(r.round(2).to_markdown() + "\n")
    for metric, name in (("pesq_wb", "PESQ-WB"), ("stoi", "STOI"), ("plcmos", "PLCMOS")):
        print(f"## {name} (mean over {df['clip'].nunique()} held-out clips)\n")
        cols = []
        for ch, losses in CHANNELS:
            for p in losses:
                cols.append((ch, p))
        rows = {}
        for (rate, tool), g in df.groupby(["rate", "tool"], sort=False):
            vals = {}
            for ch, p in cols:
                sel = g[(g["channel"] == ch) & ((g["loss_param"] - p).abs() < 1e-9)]
                vals[f"{ch} {100 * p:.0f}%"] = sel[metric].mean()
            rows[f"{rate} {tool}"] = vals
        t = pd.DataFrame.from_dict(rows, orient="index")
        print(t.round(2 if metric != "stoi" else 3).to_markdown() + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/opus")
