"""Claims decided by rules written before the run (``lossbench claims CLAIMS.toml RUN_DIR ...``).

A claims file states each claim before any number is looked at: what is compared (arm ``a``, the side the claim
favours, against arm ``b``: each a selection of rows), on which rows (``where``), by which metric, at which levels
(each decided on its own) and by which test. The verdict then follows the rule, whatever the numbers::

    [[claim]]
    id = "SS-1"
    statement = "MLM concealment beats zero-token concealment at every loss rate of at least 5 %"
    metric = "pesq_wb"
    a = {system = "SoundSpring-S", concealment = "mlm"}
    b = {system = "SoundSpring-S", concealment = "zero-token"}
    where = {channel = "bernoulli"}
    levels = [0.1, 0.2, 0.3]          # loss_param values; omit to pool every row
    test = "paired-mean"              # or "share-above" with threshold = 3.5
    margin = 0.0                      # the effect must exceed this (in the metric's units, or in share)
    # metric_b = "fine_raw_kbps"      # optional: arm b's value from another column (a rate against a rate)
    # direction = "lower"             # for a column outside the metric table: which way is better

Tests, both over the (clip, channel instance, seed) pairs that both arms scored, with the metric's sign turned so
that a positive difference favours ``a``:

- ``paired-mean``: the paired difference d = a - b, its mean and 95 % t interval, and the Wilcoxon signed-rank p.
- ``share-above``: the share of pairs whose value exceeds ``threshold`` (the paper's "share of clips above PLCMOS
  3.5"), a's share minus b's, its 95 % interval (the paired Wald interval) and McNemar's exact p on the discordant
  pairs.

Decision, per level: **holds** if the interval lies above ``margin`` and p < ``alpha``; **does not hold** if the
interval lies below ``margin``; **undecided** otherwise (too few pairs, or an interval that holds ``margin``). A claim
holds if every level holds, does not hold if any level does not, and is undecided otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError, choices

TESTS = ("paired-mean", "share-above")
PAIR_ON = ("clip", "channel_key", "seed")
#: fewer pairs than this at a level: undecided, whatever the numbers
MIN_PAIRS = 6
KEYS = ("id", "statement", "metric", "a", "b", "where", "levels", "test", "threshold", "margin", "alpha", "metric_b",
        "direction")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    a: dict[str, Any]
    b: dict[str, Any]
    where: dict[str, Any] = field(default_factory=dict)
    levels: tuple[float, ...] | None = None
    test: str = "paired-mean"
    threshold: float | None = None
    margin: float = 0.0
    alpha: float = 0.05
    metric_b: str | None = None  # arm b's column, when it is not ``metric``
    direction: str | None = None  # "higher" or "lower" is better; None: the metric table's

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ConfigError(f"claim {self.id!r}: direction must be one of {choices(DIRECTIONS)}, got "
                              f"{self.direction!r}")
        if self.test not in TESTS:
            raise ConfigError(f"claim {self.id!r}: test must be one of {choices(TESTS)}, got {self.test!r}")
        if self.test == "share-above" and self.threshold is None:
            raise ConfigError(f"claim {self.id!r}: test 'share-above' needs a threshold (e.g. threshold = 3.5)")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"claim {self.id!r}: alpha must lie in (0, 1), got {self.alpha!r}")
        for arm in ("a", "b"):
            sel = getattr(self, arm)
            if not isinstance(sel, dict) or not sel:
                raise ConfigError(f"claim {self.id!r}: {arm} must be a table of row facts, like "
                                  f"{{system = \"Opus 9 kbps\", concealment = \"opus-plc\"}}, got {sel!r}")

    @property
    def higher_is_better(self) -> bool:
        if self.direction is not None:
            return self.direction == "higher"
        from lossbench.metrics.table import COLUMNS, column_info

        if self.metric not in COLUMNS:
            raise ConfigError(f"claim {self.id!r}: {self.metric!r} is not in the metric table; say which way is "
                              f"better with direction = \"higher\" or \"lower\"")
        return bool(column_info(self.metric)[1])

    def rule(self) -> str:
        what = ("the paired difference of means" if self.test == "paired-mean"
                else f"the paired difference of the shares above {self.threshold:g}")
        test = "Wilcoxon signed-rank" if self.test == "paired-mean" else "McNemar exact"
        per = "at every level" if self.levels else "over all rows"
        col = self.metric if self.metric_b is None else f"{self.metric} against {self.metric_b}"
        sign = "a - b" if self.higher_is_better else "b - a"
        return (f"holds if, {per}, the 95 % interval of {what} ({sign}, {col}) lies above {self.margin:g} "
                f"and the {test} p < {self.alpha:g}; does not hold if at some level it lies below {self.margin:g}; "
                f"undecided otherwise (or under {MIN_PAIRS} pairs)")


@dataclass
class Decision:
    claim: Claim
    table: pd.DataFrame  # one row per level: level, n, a, b, diff, lo, hi, p, verdict
    verdict: str

    def markdown(self) -> str:
        c = self.claim
        t = self.table
        unit_a = "share" if c.test == "share-above" else c.metric
        unit_b = "share" if c.test == "share-above" else (c.metric_b or c.metric)
        lines = [f"### {c.id}: {c.statement}", "",
                 f"- a: {_sel(c.a)}; b: {_sel(c.b)}" + (f"; rows: {_sel(c.where)}" if c.where else ""),
                 f"- rule (written before the run): {c.rule()}", f"- **verdict: {self.verdict}**", "",
                 f"| level | pairs | a ({unit_a}) | b ({unit_b}) | {'a - b' if c.higher_is_better else 'b - a'} "
                 "[95 % interval] | p | verdict |",
                 "|---|---|---|---|---|---|---|"]
        for r in t.itertuples():
            level = "all" if r.level is None or (isinstance(r.level, float) and math.isnan(r.level)) else f"{r.level:g}"
            lines.append(f"| {level} | {r.n} | {r.a:.3f} | {r.b:.3f} | {r.diff:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] | "
                         f"{r.p:.2g} | {r.verdict} |")
        return "\n".join(lines)


def _sel(sel: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sel.items())


def _mask(df: pd.DataFrame, sel: dict[str, Any], what: str) -> np.ndarray:
    m = np.ones(len(df), bool)
    for k, v in sel.items():
        if k not in df.columns:
            raise ConfigError(f"{what}: no column {k!r} in the results; valid: {choices(df.columns)}")
        vals = v if isinstance(v, list) else [v]
        m &= df[k].isin(vals).to_numpy()
    return m


def _paired(df: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    """One row per (clip, channel instance, seed) both arms scored: level, a, b (signed so that + favours a)."""
    cols = {"a": claim.metric, "b": claim.metric_b or claim.metric}
    for col in cols.values():
        if col not in df.columns:
            raise ConfigError(f"claim {claim.id!r}: no column {col!r} in the results")
    d = df[(df["status"] == "ok") & _mask(df, claim.where, f"claim {claim.id!r} where")]
    arms = []
    for arm in ("a", "b"):
        sel = getattr(claim, arm)
        g = d[_mask(d, sel, f"claim {claim.id!r} {arm}")]
        if g.empty:
            raise ConfigError(f"claim {claim.id!r}: no scored rows for {arm} ({_sel(sel)})")
        if g.duplicated(list(PAIR_ON)).any():
            raise ConfigError(f"claim {claim.id!r}: {arm} ({_sel(sel)}) selects more than one row per clip, channel "
                              f"instance and seed; name the system and concealment")
        arms.append(g[[*PAIR_ON, "loss_param"]].assign(v=g[cols[arm]].to_numpy(float)))
    both = arms[0].merge(arms[1][[*PAIR_ON, "v"]], on=list(PAIR_ON), how="inner", suffixes=("_a", "_b"))
    # a channel without a loss parameter (a schedule, a trace set) has level NaN: only an unscored arm drops a pair
    both = both.dropna(subset=["v_a", "v_b"])
    sign = 1.0 if claim.higher_is_better else -1.0
    a, b = both["v_a"].to_numpy(float), both["v_b"].to_numpy(float)
    if claim.test == "share-above":
        assert claim.threshold is not None
        a = (sign * a > sign * claim.threshold).astype(float)
        b = (sign * b > sign * claim.threshold).astype(float)
    else:
        a, b = sign * a, sign * b
    return pd.DataFrame({"level": both["loss_param"].to_numpy(float), "a": a, "b": b})


def _decide_level(a: np.ndarray, b: np.ndarray, claim: Claim) -> dict[str, Any]:
    from scipy import stats

    n = int(a.size)
    d = a - b
    out: dict[str, Any] = {"n": n, "a": float(a.mean()) if n else math.nan, "b": float(b.mean()) if n else math.nan,
                           "diff": float(d.mean()) if n else math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan}
    if n >= 2:
        if claim.test == "paired-mean":
            h = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
            out["p"] = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
        else:  # paired proportions: Wald interval and McNemar's exact test on the discordant pairs
            n10, n01 = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
            var = max((n10 + n01) - (n10 - n01) ** 2 / n, 0.0) / n**2
            h = 1.959964 * math.sqrt(var)
            out["p"] = float(stats.binomtest(n10, n10 + n01).pvalue) if n10 + n01 else 1.0
        out["lo"], out["hi"] = out["diff"] - h, out["diff"] + h
    if n < MIN_PAIRS:
        verdict = "undecided"
    elif out["lo"] > claim.margin and out["p"] < claim.alpha:
        verdict = "holds"
    elif out["hi"] < claim.margin:
        verdict = "does not hold"
    else:
        verdict = "undecided"
    # a metric with the sign turned reports its own values
    return out | {"verdict": verdict}


def decide(df: pd.DataFrame, claim: Claim) -> Decision:
    """The claim decided on the rows of ``df`` by its written rule."""
    p = _paired(df, claim)
    rows = []
    if claim.levels:
        for lv in claim.levels:
            g = p[np.isclose(p["level"], lv)]
            rows.append({"level": float(lv), **_decide_level(g["a"].to_numpy(), g["b"].to_numpy(), claim)})
    else:
        rows.append({"level": math.nan, **_decide_level(p["a"].to_numpy(), p["b"].to_numpy(), claim)})
    t = pd.DataFrame(rows)
    # show the metric's own values; the difference stays "+ = a better"
    if claim.test == "paired-mean" and not claim.higher_is_better:
        t["a"], t["b"] = -t["a"], -t["b"]
    verdicts = set(t["verdict"])
    overall = ("does not hold" if "does not hold" in verdicts else "holds" if verdicts == {"holds"} else "undecided")
    return Decision(claim, t, overall)


def load_claims(path: str | Path) -> list[Claim]:
    from lossbench.files import read_toml

    p = Path(path)
    d = read_toml(p, "claims file")
    entries = d.get("claim")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{p}: no [[claim]] tables")
    out = []
    for i, e in enumerate(entries):
        bad = [k for k in e if k not in KEYS]
        if bad:
            raise ConfigError(f"{p}: claim[{i}]: unknown key {bad[0]!r}; valid keys: {choices(KEYS)}")
        missing = [k for k in ("id", "statement", "metric", "a", "b") if k not in e]
        if missing:
            raise ConfigError(f"{p}: claim[{i}] needs {', '.join(missing)}")
        levels = e.get("levels")
        out.append(Claim(str(e["id"]), str(e["statement"]), str(e["metric"]), dict(e["a"]), dict(e["b"]),
                         dict(e.get("where", {})), tuple(float(x) for x in levels) if levels else None,
                         str(e.get("test", "paired-mean")), e.get("threshold"), float(e.get("margin", 0.0)),
                         float(e.get("alpha", 0.05)), e.get("metric_b"), e.get("direction")))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{p}: claim ids must be unique, got {ids}")
    return out


def check_claims(claims_file: str | Path, run_dirs: list[str | Path], only: list[str] | None = None
                 ) -> list[Decision]:
    """Every claim of ``claims_file`` (or those whose ids ``only`` names) decided on the rows of the runs (their
    results pooled)."""
    from lossbench.reports.data import load_results

    if not run_dirs:
        raise ConfigError("name at least one run directory")
    claims = load_claims(claims_file)
    if only:
        ids = [c.id for c in claims]
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise ConfigError(f"no claim {', '.join(map(repr, unknown))} in {claims_file}; {choices(ids)}")
        claims = [c for c in claims if c.id in only]
    df = pd.concat([load_results(r) for r in run_dirs], ignore_index=True)
    return [decide(df, c) for c in claims]


__all__ = ["MIN_PAIRS", "TESTS", "Claim", "Decision", "check_claims", "decide", "load_claims"]
