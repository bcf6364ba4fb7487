"""Picture of a loss trace: the pattern over time and the burst-length histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.core import LossTrace
from lossbench.traces.stats import trace_stats


def sliding_loss_rate(lost: np.ndarray, window: int) -> np.ndarray:
    """Loss rate over the ``window`` slots centred on each slot (shorter at the ends)."""
    x = np.asarray(lost, float)
    if x.size == 0:
        return x
    w = max(1, min(int(window), x.size))
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(x.size)
    lo = np.clip(i - w // 2, 0, x.size)
    hi = np.clip(i - w // 2 + w, 0, x.size)
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


def plot_trace(trace: LossTrace, out: Path, title: str | None = None, max_slots: int = 3000,
               window_s: float = 1.0) -> Path:
    """Write a PNG with the loss pattern and its sliding-window loss rate (top; a time-varying trace shows
    its phases) and the burst-length histogram on integer ticks (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = trace_stats(trace)
    lost = trace.lost[:max_slots]
    t = np.arange(lost.size) * trace.slot_s
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), gridspec_kw={"height_ratios": [1, 1.4]})
    ax = axes[0]
    ax.vlines(t[lost], 0, 1, color="#e6a0a0", linewidth=0.8, label="lost packet")
    win = max(1, int(round(window_s / trace.slot_s)))
    ax2 = ax.twinx()
    ax2.plot(t, 100 * sliding_loss_rate(lost, win), color="#1f3b73", lw=1.2, label=f"loss rate over {window_s:g} s")
    ax2.set_ylabel(f"loss rate, {window_s:g} s window (%)", fontsize=8)
    ax2.set_ylim(0, max(5.0, 100 * float(sliding_loss_rate(lost, win).max(initial=0)) * 1.1))
    ax.set_xlim(0, max(t[-1] if t.size else 1.0, trace.slot_s))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=7, framealpha=0.8)
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
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
