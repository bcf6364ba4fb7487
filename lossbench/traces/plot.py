"""Picture of a loss trace: the pattern over time and the burst-length histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.core import LossTrace
from lossbench.traces.stats import trace_stats


def plot_trace(trace: LossTrace, out: Path, title: str | None = None, max_slots: int = 3000) -> Path:
    """Write a PNG with the loss pattern (top) and burst/gap histograms (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = trace_stats(trace)
    lost = trace.lost[:max_slots]
    t = np.arange(lost.size) * trace.slot_s
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), gridspec_kw={"height_ratios": [1, 1.4]})
    ax = axes[0]
    ax.vlines(t[lost], 0, 1, color="#c0392b", linewidth=0.8)
    ax.set_xlim(0, max(t[-1] if t.size else 1.0, trace.slot_s))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    shown = "" if trace.lost.size <= max_slots else f" (first {max_slots} of {trace.lost.size} slots)"
    ax.set_title(
        (title or str(trace.meta.get("source", "loss trace")))
        + f"\nloss {100 * st.loss_rate:.2f} %, mean burst {st.mean_burst:.2f}, longest {st.longest_burst}, "
        f"P(loss|loss) {st.p_loss_given_loss:.3f}{shown}",
        fontsize=10,
    )
    ax = axes[1]
    if st.bursts:
        ks = np.array(sorted(st.bursts))
        ax.bar(ks, [st.bursts[k] for k in ks], color="#c0392b", width=0.8, label="loss bursts")
    ax.set_xlabel("burst length (packets)")
    ax.set_ylabel("number of bursts")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
