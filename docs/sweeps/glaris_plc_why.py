"""Why Glaris's learned PLC gains little over the prior mean at 10 % loss (docs/glaris.md, GL-3b/c).

Reads a run of docs/sweeps/glaris.toml and prints, per loss level, the paired PESQ-WB difference
side-info-plc - prior-mean over (clip, seed): mean, median, standard deviation, the share of pairs favouring the
learned PLC, the share of frames whose y was lost, the gain per unit of that share, and the number of pairs a 95 %
interval as wide as the observed spread would need to exclude 0 at the observed mean.

Run: python docs/sweeps/glaris_plc_why.py runs/glaris
"""

import sys

import numpy as np
import pandas as pd

SYSTEM = "Glaris, 1.5 kbps side-info FEC"


def main(run: str) -> None:
    d = pd.read_parquet(f"{run}/results.parquet")
    d = d[(d["system"] == SYSTEM) & (d["status"] == "ok") & (d["channel"] == "bernoulli")]
    print("| loss | pairs | mean | median | sd | share > 0 | y lost | gain per unit lost | pairs needed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lv in sorted(x for x in d["loss_param"].unique() if x > 0):
        x = d[d["loss_param"] == lv]
        a = x[x["concealment"] == "side-info-plc"].set_index(["clip", "seed"])
        b = x[x["concealment"] == "prior-mean"].set_index(["clip", "seed"])
        diff = (a["pesq_wb"] - b["pesq_wb"]).dropna()
        lost = float((a["y_lost_frames"] / (a["duration_s"] / 0.02)).mean())
        need = int(np.ceil((1.96 * diff.std() / abs(diff.mean())) ** 2)) if diff.mean() else -1
        print(f"| {lv:.0%} | {len(diff)} | {diff.mean():+.4f} | {diff.median():+.4f} | {diff.std():.3f} | "
              f"{(diff > 0).mean():.2f} | {lost:.3f} | {diff.mean() / lost:+.3f} | {need} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/glaris")
