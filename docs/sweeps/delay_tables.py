"""The tables of docs/delay.md from a run of docs/sweeps/delay_heldout.toml.

Usage: python docs/sweeps/delay_tables.py runs/delay_heldout

Per system and jitter: each buffer's mean mouth-to-ear delay, late-loss rate, PESQ-WB and PLCMOS (means over
clips and seeds), then each adaptive buffer against the fixed buffers at its own mean delay (the fixed curve
interpolated linearly in mouth-to-ear delay between the two fixed settings around it).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def main(run: str) -> None:
    df = pd.read_parquet(f"{run}/results.parquet")
    df = df[df["status"] == "ok"]
    cols = ["mouth_to_ear_ms", "late_rate", "pesq_wb", "plcmos", "playout_expand_rate", "playout_accelerate_rate",
            "playout_preemptive_rate", "playout_hold_rate"]
    g = df.groupby(["system", "jitter", "playout"], sort=False)[cols].mean().reset_index()
    order = ["fixed:20ms", "fixed:40ms", "fixed:60ms", "fixed:80ms", "fixed:120ms", "fixed:160ms", "adaptive", "tsm", "speex"]
    g["o"] = g["playout"].map({p: i for i, p in enumerate(order)})
    g = g.sort_values(["system", "jitter", "o"])
    print("## every buffer\n")
    print("| system | jitter | buffer | mouth-to-ear ms | late % | PESQ-WB | PLCMOS | expand % | accel % | pre-exp % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for _, r in g.iterrows():
        rates = [r["playout_expand_rate"], r["playout_accelerate_rate"], r["playout_preemptive_rate"]]
        rs = " | ".join("" if np.isnan(x) else f"{100 * x:.1f}" for x in rates)
        print(f"| {r['system']} | {r['jitter']} | {r['playout']} | {r['mouth_to_ear_ms']:.0f} | "
              f"{100 * r['late_rate']:.2f} | {r['pesq_wb']:.2f} | {r['plcmos']:.2f} | {rs} |")
    print("\n## adaptive buffers against the fixed curve at the same mean delay\n")
    print("| system | jitter | buffer | mouth-to-ear ms | late % (fixed at that delay) | PESQ-WB (fixed) | PLCMOS (fixed) |")
    print("|---|---|---|---|---|---|---|")
    wins = {"late": 0, "pesq": 0, "plcmos": 0, "n": 0}
    for (s, j), h in g.groupby(["system", "jitter"], sort=False):
        fx = h[h["playout"].str.startswith("fixed")].sort_values("mouth_to_ear_ms")
        x = fx["mouth_to_ear_ms"].to_numpy()
        for _, r in h[~h["playout"].str.startswith("fixed")].iterrows():
            d = r["mouth_to_ear_ms"]
            if not (x[0] <= d <= x[-1]):
                print(f"| {s} | {j} | {r['playout']} | {d:.0f} | outside the fixed buffers' range "
                      f"({x[0]:.0f}-{x[-1]:.0f} ms) | | |")
                continue
            f = {k: float(np.interp(d, x, fx[k].to_numpy())) for k in ("late_rate", "pesq_wb", "plcmos")}
            print(f"| {s} | {j} | {r['playout']} | {d:.0f} | {100 * r['late_rate']:.2f} ({100 * f['late_rate']:.2f}) | "
                  f"{r['pesq_wb']:.2f} ({f['pesq_wb']:.2f}) | {r['plcmos']:.2f} ({f['plcmos']:.2f}) |")
            if r["playout"] == "tsm":
                wins["n"] += 1
                wins["late"] += r["late_rate"] < f["late_rate"]
                wins["pesq"] += r["pesq_wb"] > f["pesq_wb"]
                wins["plcmos"] += r["plcmos"] > f["plcmos"]
    print(f"\ntsm against fixed at equal mean delay, of {wins['n']} (system, jitter) pairs: lower late loss in "
          f"{wins['late']}, higher PESQ-WB in {wins['pesq']}, higher PLCMOS in {wins['plcmos']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/delay_heldout")
