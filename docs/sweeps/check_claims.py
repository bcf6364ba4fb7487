"""Print, from finished sweeps, each paper claim the docs test, with the numbers behind the verdict.

Superseded since 2026-12-07 by ``lossbench claims docs/claims/<paper>.toml RUN...``, which decides each claim by a
rule written before the run with paired tests; kept because the older sections of docs/soundspring.md and
docs/glaris.md cite its output. Its "holds" compares means only.

Run after the sweeps in docs/soundspring.md and docs/glaris.md:

    python docs/sweeps/check_claims.py soundspring runs/soundspring runs/soundspring_wlan
    python docs/sweeps/check_claims.py glaris runs/glaris runs/glaris_wlan runs/glaris_rate

Means are over clips (and channel seeds); "holds" means the inequality holds for the means.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def load(run: str) -> pd.DataFrame:
    df = pd.read_parquet(Path(run) / "results.parquet")
    bad = df[df.status != "ok"]
    if len(bad):
        print(f"  ({run}: {len(bad)} task(s) failed: {bad.error.iloc[0]})")
    return df[df.status == "ok"]


def mean(df: pd.DataFrame, metric: str, **sel) -> float:
    m = np.ones(len(df), bool)
    for k, v in sel.items():
        m &= (df[k] == v).to_numpy()
    return float(df.loc[m, metric].mean())


def verdict(ok: bool) -> str:
    return "holds" if ok else "DOES NOT HOLD"


def soundspring(bern: pd.DataFrame, wlan: pd.DataFrame) -> None:
    ss5, ss12, opus = ("SoundSpring-S ~5 kbps (K=6, coarse FEC)", "SoundSpring-S K=12, no FEC", "Opus 9 kbps")
    print("payload kbit/s:", {s: round(float(bern[bern.system == s].payload_kbps.mean()), 2) for s in (ss5, ss12, opus)},
          "FEC share:", {s: round(float(bern[bern.system == s].fec_kbps.mean()), 2) for s in (ss5, ss12)})
    losses = sorted(x for x in bern.loss_param.unique() if x >= 0.05)
    print("\nClaim 1: MLM concealment beats zero-token concealment at every loss rate >= 5 %")
    for sysname in (ss5, ss12):
        for metric in ("pesq_wb", "plcmos", "stoi"):
            cells = []
            allok = True
            for p in losses:
                a = mean(bern, metric, system=sysname, concealment="mlm", loss_param=p)
                b = mean(bern, metric, system=sysname, concealment="zero-token", loss_param=p)
                allok &= a > b
                cells.append(f"{p:.0%}: {a:.2f} vs {b:.2f}")
            print(f"  {sysname}, {metric}: " + "; ".join(cells) + f" -> {verdict(allok)}")
    print("\nClaim 2: ~5 kbps SoundSpring-S with coarse FEC beats Opus 9 kbps at 10-30 % Bernoulli loss")
    for metric in ("pesq_wb", "plcmos"):
        cells = []
        allok = True
        for p in [x for x in losses if 0.1 <= x <= 0.3]:
            a = mean(bern, metric, system=ss5, concealment="mlm", loss_param=p)
            b = mean(bern, metric, system=opus, concealment="opus-plc", loss_param=p)
            allok &= a > b
            cells.append(f"{p:.0%}: {a:.2f} vs {b:.2f}")
        print(f"  {metric}: " + "; ".join(cells) + f" -> {verdict(allok)}")
    print("\nClaim 3: on the WLAN channel SoundSpring-S's PLCMOS CDF lies right of Opus's and of no concealment")
    qs = (0.1, 0.25, 0.5, 0.75, 0.9)
    ss = wlan[(wlan.system == ss5) & (wlan.concealment == "mlm")].plcmos.dropna()
    for label, other in (("Opus 9 kbps + PLC", wlan[(wlan.system == opus) & (wlan.concealment == "opus-plc")].plcmos.dropna()),
                         ("SoundSpring-S zero-token", wlan[(wlan.system == ss5) & (wlan.concealment == "zero-token")].plcmos.dropna())):
        a, b = np.quantile(ss, qs), np.quantile(other, qs)
        print(f"  vs {label}: quantiles {qs}: " + ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b))
              + f" (n = {len(ss)}/{len(other)}) -> {verdict(bool((a >= b).all()))}")
    production(bern, wlan, [(ss5, "mlm"), (ss12, "mlm")])


def production(bern: pd.DataFrame, wlan: pd.DataFrame, ours: list[tuple[str, str]]) -> None:
    """Our systems next to Opus 1.5.2's neural tools (deep PLC, DRED), which the papers never compared against."""
    base = [(s, c) for s, c in (("rvq K=14 (7 kbps)", "fargan-plc"), ("Opus 6 kbps", "opus-deep-plc"),
                                ("Opus 9 kbps", "opus-deep-plc"), ("Opus 20 kbps + DRED 500 ms", "opus-dred"))
            if ((bern.system == s) & (bern.concealment == c)).any()]
    if not base:
        return
    rows = ours + base
    print("\nProduction baselines (Opus 1.5.2; DRED needs >= 20 kbit/s in libopus 1.5.2, so it runs at 20): "
          "PESQ-WB / PLCMOS by Bernoulli loss")
    print("  payload kbit/s: " + ", ".join(f"{s} {bern[bern.system == s].payload_kbps.mean():.2f}" for s, _ in rows))
    for s, c in rows:
        cells = [f"{p:.0%} {mean(bern, 'pesq_wb', system=s, concealment=c, loss_param=p):.2f}/"
                 f"{mean(bern, 'plcmos', system=s, concealment=c, loss_param=p):.2f}"
                 for p in sorted(bern.loss_param.unique())]
        print(f"  {s} / {c}: " + "; ".join(cells))
    print("  WLAN channel (PESQ-WB P10 / median" + (", PLCMOS median" if "plcmos" in wlan.columns else "") + "):")
    for s, c in rows:
        g = wlan[(wlan.system == s) & (wlan.concealment == c)]
        if g.empty:
            continue
        extra = f", {g.plcmos.median():.2f}" if "plcmos" in g.columns else ""
        print(f"    {s} / {c}: {np.quantile(g.pesq_wb.dropna(), 0.1):.2f} / {g.pesq_wb.median():.2f}{extra} (n = {len(g)})")


def concealments(bern: pd.DataFrame, system: str) -> None:
    """PESQ-WB / PLCMOS of each concealment of ``system`` at 10, 20, 30 % loss."""
    for p in (0.1, 0.2, 0.3):
        cells = [f"{c} {mean(bern, 'pesq_wb', system=system, concealment=c, loss_param=p):.2f}/"
                 f"{mean(bern, 'plcmos', system=system, concealment=c, loss_param=p):.2f}"
                 for c in sorted(bern[bern.system == system].concealment.unique())]
        print(f"  {p:.0%}: " + "; ".join(cells))


def glaris(bern: pd.DataFrame, wlan: pd.DataFrame, rate: pd.DataFrame) -> None:
    systems = sorted(bern.system.unique())
    print("payload kbit/s:", {s: round(float(bern[bern.system == s].payload_kbps.mean()), 2) for s in systems})
    print("FEC kbit/s:", {s: round(float(bern[bern.system == s].fec_kbps.mean()), 2) for s in systems})
    # the Glaris configurations in order of their measured side-information FEC rate
    g1, g2, g3 = sorted((s for s in systems if s.startswith("Glaris")), key=lambda s: bern[bern.system == s].fec_kbps.mean())
    ss = next(s for s in systems if s.startswith("SoundSpring"))
    print(f"\nClaim 1: at equal total rate, {g1} >= SoundSpring with coarse FEC at 10-20 % loss")
    for metric in ("pesq_wb", "plcmos", "stoi"):
        cells = []
        allok = True
        for p in (0.1, 0.2):
            a = mean(bern, metric, system=g1, concealment="side-info-plc", loss_param=p)
            b = mean(bern, metric, system=ss, concealment="mlm", loss_param=p)
            allok &= a >= b
            cells.append(f"{p:.0%}: {a:.2f} vs {b:.2f}")
        print(f"  {metric}: " + "; ".join(cells) + f" -> {verdict(allok)}")
    print(f"\nClaim 2: more side-info FEC helps more at 20-30 % loss (gain over {g1}, in PESQ-WB)")
    for p in (0.0, 0.1, 0.2, 0.3):
        base = mean(bern, "pesq_wb", system=g1, concealment="side-info-plc", loss_param=p)
        d2 = mean(bern, "pesq_wb", system=g2, concealment="side-info-plc", loss_param=p) - base
        d3 = mean(bern, "pesq_wb", system=g3, concealment="side-info-plc", loss_param=p) - base
        print(f"  {p:.0%}: {g1} {base:.2f}; {g2} {d2:+.2f}; {g3} {d3:+.2f}")
    print(f"\nAblation (the paper's Fig. 5): concealments of {g1}, PESQ-WB / PLCMOS")
    concealments(bern, g1)
    print("\nSoundSpring-S concealments in the same sweep (PESQ-WB / PLCMOS)")
    concealments(bern, ss)
    print("\nClaim 3: without loss Glaris has better rate-quality than rvq (PESQ-WB at payload kbit/s)")
    curves: dict[str, list[tuple[float, float, float]]] = {"Glaris": [], "rvq": []}
    for s in sorted(rate.system.unique()):
        r = rate[rate.system == s]
        print(f"  {s}: {r.payload_kbps.mean():.2f} kbit/s -> PESQ-WB {r.pesq_wb.mean():.2f}, STOI {r.stoi.mean():.3f}")
        curves["Glaris" if s.startswith("Glaris") else "rvq"].append(
            (float(r.payload_kbps.mean()), float(r.pesq_wb.mean()), float(r.stoi.mean())))
    g = sorted(curves["Glaris"])
    allok, cells = True, []
    for kbps, pesq, stoi in sorted(curves["rvq"]):
        if not g[0][0] <= kbps <= g[-1][0]:
            continue
        gp = float(np.interp(kbps, [x[0] for x in g], [x[1] for x in g]))
        gs = float(np.interp(kbps, [x[0] for x in g], [x[2] for x in g]))
        allok &= gp >= pesq
        cells.append(f"{kbps:.2f} kbit/s: Glaris {gp:.2f} / {gs:.3f} vs rvq {pesq:.2f} / {stoi:.3f}")
    print("  at the rvq rates inside the Glaris range (Glaris interpolated linearly in rate), PESQ-WB / STOI: "
          + ("; ".join(cells) or "none") + f" -> {verdict(allok and bool(cells))}")
    print("\nClaim 4: on the WLAN channel Glaris's 10th-percentile PESQ-WB is the highest (among systems at <= 10 kbit/s)")
    best = None
    for (s, c), g in wlan.groupby(["system", "concealment"]):
        q10 = float(np.quantile(g.pesq_wb.dropna(), 0.1))
        kbps = float(g.payload_kbps.mean())
        print(f"  {s} / {c}: {kbps:.2f} kbit/s, P10 {q10:.2f}, median {g.pesq_wb.median():.2f} (n = {len(g)})")
        if kbps <= 10 and (best is None or q10 > best[0]):
            best = (q10, s, c)
    print(f"  highest: {best[1]} / {best[2]} -> {verdict(best[1].startswith('Glaris'))}")
    production(bern, wlan, [(g1, "side-info-plc"), (ss, "mlm")])


if __name__ == "__main__":
    which, *runs = sys.argv[1:]
    dfs = [load(r) for r in runs]
    {"soundspring": soundspring, "glaris": glaris}[which](*dfs)
