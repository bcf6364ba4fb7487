"""The result store of a run directory.

Rows arrive in batches (one per finished job); each batch is written as its
own Parquet file under ``parts/`` by write-then-rename, so a crash can lose
at most the batch being written and never corrupts what is on disk.
``results.parquet`` is the union of the parts, rewritten (also atomically)
as the sweep goes and at its end. Finished task keys are read back from the
parts, so a rerun skips them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lossbench.errors import writing
from lossbench.files import atomic


def structured(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the structured columns (:data:`~lossbench.benchmarks.columns.STRUCTURED`) as lists and
    structs: a run written before they were stored so holds them as JSON text, read back here, so that a resumed
    run never mixes the two in one column ("" and missing become None)."""
    import json

    from lossbench.benchmarks.columns import STRUCTURED

    for c in STRUCTURED:
        if c in df.columns and df[c].map(lambda v: isinstance(v, str)).any():
            df[c] = df[c].map(lambda v: (json.loads(v) if v else None) if isinstance(v, str) else v)
    return df


class ResultStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.parts = self.dir / "parts"
        with writing(self.parts, "create"):
            self.parts.mkdir(parents=True, exist_ok=True)
        self._n = len(list(self.parts.glob("part-*.parquet")))
        self._last_consolidate = 0.0

    @property
    def results_path(self) -> Path:
        return self.dir / "results.parquet"

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        df = pd.DataFrame(rows)
        while True:
            path = self.parts / f"part-{self._n:06d}-{os.getpid()}.parquet"
            self._n += 1
            if not path.exists():
                break
        with atomic(path) as tmp:
            df.to_parquet(tmp, index=False)

    def read(self) -> pd.DataFrame:
        files = sorted(self.parts.glob("part-*.parquet"))
        if not files:
            return pd.DataFrame()
        df = pd.concat([structured(pd.read_parquet(f)) for f in files], ignore_index=True)
        # a task rerun after an error replaces the error row
        return df.drop_duplicates("task", keep="last").reset_index(drop=True)

    def done_keys(self, include_errors: bool = False) -> set[str]:
        df = self.read()
        if df.empty:
            return set()
        if not include_errors:
            df = df[df["status"] == "ok"]
        return set(df["task"])

    def consolidate(self, every_s: float = 0.0) -> Path | None:
        now = time.monotonic()
        if every_s and now - self._last_consolidate < every_s:
            return None
        self._last_consolidate = now
        df = self.read()
        if df.empty:
            return None
        with atomic(self.results_path) as tmp:
            df.to_parquet(tmp, index=False)
        return self.results_path
