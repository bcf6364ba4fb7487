"""The one CSV row reader of loss traces (``formats``) and timing traces (``timing``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lossbench.errors import TraceFormatError


def csv_rows(data: bytes, p: Path | str) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """The (line number, cells) rows of a CSV trace without its comment lines, and its header's lower-cased
    names; errors name the file and the position."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{p}: byte offset {exc.start}: not a text file (invalid UTF-8)") from None
    rows = [(no, r) for no, r in enumerate(csv.reader(io.StringIO(text)), start=1) if r and not r[0].startswith("#")]
    if not rows:
        raise TraceFormatError(f"{p}: the CSV file has no rows")
    return rows, [h.strip().lower() for h in rows[0][1]]
