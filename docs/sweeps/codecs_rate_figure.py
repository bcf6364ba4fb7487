"""The rate-quality figure of docs/codecs.md from runs/codecs_rate (lossbench sweep docs/sweeps/codecs_rate.toml):
PESQ-WB and PLCMOS against the measured payload rate, one line per codec, solid without loss and dashed at 10 %
Bernoulli loss, means over the clips.

Run: python docs/sweeps/codecs_rate_figure.py [run dir] [output png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/codecs_rate")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img/codecs_rate.png")
    d = pd.read_parquet(run / "results.parquet")
    d = d[d["status"] == "ok"]
    m = d.groupby(["codec", "codec_config", "loss_param"])[["payload_kbps", "pesq_wb", "plcmos"]].mean().reset_index()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharex=True)
    colours = plt.get_cmap("tab10")
    for k, (name, g) in enumerate(sorted(m.groupby("codec"), key=lambda t: t[0])):
        for loss, ls in ((0.0, "-"), (0.1, "--")):
            h = g[g["loss_param"] == loss].sort_values("payload_kbps")
            for ax, col in zip(axes, ("pesq_wb", "plcmos")):
                ax.plot(h["payload_kbps"], h[col], ls, marker="o", ms=3.5, color=colours(k % 10),
                        label=name if (loss == 0.0 and col == "pesq_wb") else None)
    for ax, lab in zip(axes, ("PESQ-WB (MOS-LQO, higher is better)", "PLCMOS (higher is better)")):
        ax.set_xscale("log")
        ax.set_xlabel("measured payload rate (kbit/s, log scale)")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3, which="both")
    fig.legend(loc="upper center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle("solid: no loss; dashed: 10 % Bernoulli loss (each codec's own concealment)", y=0.02, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.88))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
