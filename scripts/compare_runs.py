"""Compare the rows of two sweep runs, timing columns aside: the check that a change to the harness left every
number where it was.

    python scripts/compare_runs.py RUN_A RUN_B

Rows are matched by task key. Paths of the installed package (the bundled traces in task keys and channel keys)
are compared without their install location; an example's file name, which is cut and hashed when long (hash
included the install location), is compared by whether the row has one. Structured columns stored as JSON text
by older runs are compared as the lists and structs they hold. Prints the columns that differ and in how many rows;
exits 1 if any does.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.benchmarks.columns import STRUCTURED
from lossbench.benchmarks.store import structured

TIMING = ("channel_time_s", "decode_rtf", "encode_rtf", "metric_times", "metrics_time_s")
#: an install location before the package's bundled files, in a path or in a file name made from one
_INSTALL = re.compile(r"(/|_)[^|,]*?(?=(/|_)lossbench(/|_)traces(/|_)library)")


def _plain(v):
    """A value as plain Python data: arrays as lists, NaN as None, JSON text decoded (structured columns)."""
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _load(run: Path) -> pd.DataFrame:
    df = structured(pd.read_parquet(run / "results.parquet"))  # an older run's JSON text as structures
    for c in df.columns:
        if df[c].dtype.kind not in "fiub" and c not in STRUCTURED:
            df[c] = df[c].map(lambda v: _INSTALL.sub("", v) if isinstance(v, str) else v)
    return df.set_index("task").sort_index()


def main(a_dir: str, b_dir: str) -> int:
    a, b = _load(Path(a_dir)), _load(Path(b_dir))
    if list(a.index) != list(b.index):
        print(f"the task sets differ: {len(set(a.index) - set(b.index))} only in A, "
              f"{len(set(b.index) - set(a.index))} only in B")
        return 1
    only = sorted(set(a.columns) ^ set(b.columns))
    cols = [c for c in a.columns if c in b.columns and c not in TIMING]
    diff = {}
    for c in cols:
        x, y = a[c], b[c]
        if c == "audio_file":
            same = (x.isna() == y.isna()).to_numpy()
        elif x.dtype.kind == "f" and y.dtype.kind == "f":
            same = ((x == y) | (x.isna() & y.isna())).to_numpy()
        else:
            same = np.array([_plain(p) == _plain(q) for p, q in zip(x, y)])
        if not same.all():
            diff[c] = int((~same).sum())
    print(f"{len(a)} rows; {len(cols)} columns compared (timing columns left out: {', '.join(TIMING)})")
    print(f"columns in one run only: {', '.join(only) or 'none'}")
    print(f"columns that differ: {', '.join(f'{c} ({n} rows)' for c, n in diff.items()) or 'none'}")
    return 1 if diff else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
