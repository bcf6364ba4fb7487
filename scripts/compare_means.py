"""Compare two sweep runs cell by cell: the mean of each metric per (system, concealment, channel, loss level), over
clips and seeds. For runs whose task keys differ (another buffer, another channel key) but whose cells match.

    python scripts/compare_means.py RUN_BEFORE RUN_AFTER

Prints every cell that moved, with its before and after means, then how many cells are identical and how many
moved; exits 1 if a cell of one run is missing from the other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

KEYS = ["system", "concealment", "channel", "loss_param"]
METRICS = ("pesq_wb", "plcmos", "stoi", "si_snr", "mfcc_dist", "visqol", "dnsmos_ovrl")


def means(run: str) -> pd.DataFrame:
    df = pd.read_parquet(Path(run) / "results.parquet")
    df = df[df["status"] == "ok"]
    return df.groupby(KEYS)[[m for m in METRICS if m in df.columns]].mean()


def main(before: str, after: str) -> int:
    b, a = means(before), means(after)
    metrics = [m for m in b.columns if m in a.columns]
    missing = b.index.symmetric_difference(a.index)
    same = moved = 0
    for key in b.index.intersection(a.index):
        diffs = [f"{m} {b.at[key, m]:.3f} -> {a.at[key, m]:.3f}" for m in metrics
                 if not (b.at[key, m] == a.at[key, m] or (pd.isna(b.at[key, m]) and pd.isna(a.at[key, m])))]
        if diffs:
            moved += 1
            print(" / ".join(map(str, key)) + ": " + "; ".join(diffs))
        else:
            same += 1
    print(f"cells identical: {same}, moved: {moved}" + (f", in one run only: {len(missing)}" if len(missing) else ""))
    return 1 if len(missing) else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
