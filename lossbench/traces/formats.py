"""Loss-trace files: read, write and detect the formats people have.

========  ==================================================================
format    content
========  ==================================================================
text      one 0/1 per line, 1 = lost (the PLC Challenge ``*_is_lost.txt``
          convention, one line per 20 ms packet); ``#`` comment lines allowed
g192      ITU-T G.192 erasure pattern: 16-bit words, 0x6B21 good frame,
          0x6B20 erased frame (little-endian; big-endian is read too)
g191      ITU-T G.191 (STL ``eid``) byte pattern: 0x21 good, 0x20 erased
csv       header ``seq,lost`` or ``time_s,lost``, one row per slot
npy       a NumPy 1-D array of 0/1 or booleans
timing    CSV ``seq,send_s,arrival_s``, an empty arrival for a lost packet:
          loss *and* delay (:mod:`lossbench.traces.timing`)
pcap      a pcap/pcapng capture of RTP (read only): loss and delay of one
          SSRC's stream, the largest by default
========  ==================================================================

:func:`read_trace` detects the format from the content. A file that cannot be
parsed raises :class:`~lossbench.errors.TraceFormatError` naming the file and
the line or byte offset. A JSON sidecar ``<file>.json`` (written by
:func:`write_trace` with ``sidecar=True``) carries the slot duration and the
generating parameters.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.core import LossTrace
from lossbench.errors import ConfigError, TraceFormatError, choices, writing
from lossbench.files import write_atomic
from lossbench.traces.csvrows import csv_rows

G192_GOOD, G192_BAD = 0x6B21, 0x6B20
G191_GOOD, G191_BAD = 0x21, 0x20
DEFAULT_SLOT_S = 0.02

#: the loss-pattern formats (read and written)
FORMATS = ("text", "g192", "g191", "csv", "npy")
#: the formats with timing (read; ``timing`` is written too, from a trace that has timing)
TIMING_FORMATS = ("timing", "pcap")
READ_FORMATS = FORMATS + TIMING_FORMATS
EXTENSIONS = {
    ".txt": "text",
    ".g192": "g192",
    ".192": "g192",
    ".g191": "g191",
    ".eid": "g191",
    ".csv": "csv",
    ".npy": "npy",
    ".pcap": "pcap",
    ".pcapng": "pcap",
}


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def format_for_path(path: Path) -> str:
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the trace format of {str(path)!r} from its extension {path.suffix!r}; "
            f"use one of {choices(EXTENSIONS)} or give the format ({', '.join(FORMATS)})"
        )
    return fmt


def detect_format(data: bytes, path: Path | str = "<bytes>") -> str:
    """Name of the format of ``data`` (see the module table)."""
    if not data:
        raise TraceFormatError(f"{path}: the file is empty")
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    from lossbench.traces.timing import PCAP_MAGICS

    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if len(data) >= 2 and (data[0:2] in (b"\x21\x6b", b"\x20\x6b", b"\x6b\x21", b"\x6b\x20")):
        return "g192"
    if data[0] in (G191_GOOD, G191_BAD) and (set(data) <= {G191_GOOD, G191_BAD} or data[0] == G191_GOOD):
        return "g191"
    head = data[:4096].decode("utf-8", errors="replace")
    for line in head.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "," in s:
            return "timing" if "arrival_s" in [c.strip().lower() for c in s.split(",")] else "csv"
        return "text"
    return "text"


def read_trace(path: str | Path, fmt: str | None = None, slot_s: float | None = None, ssrc: int | None = None,
               clock_rate: int | None = None) -> LossTrace:
    """Read a loss trace file.

    Args:
        path: the file.
        fmt: one of ``FORMATS``; detected from the content when None.
        slot_s: slot duration; from the sidecar or the CSV time column when
            None, else 20 ms (a timing trace: its median send spacing).
        ssrc, clock_rate: for a pcap, the RTP stream to take (default: the
            largest) and its RTP clock (default: inferred).
    Raises:
        TraceFormatError: unreadable or malformed file (names the position).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"{p}: cannot read trace file: {exc.strerror or exc}") from None
    fmt = fmt or detect_format(data, p)
    if fmt not in READ_FORMATS:
        raise ConfigError(f"unknown trace format {fmt!r}; valid formats: {', '.join(READ_FORMATS)}")
    meta: dict[str, Any] = {}
    side = sidecar_path(p)
    if side.exists():
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise TraceFormatError(f"{side}: sidecar is not valid JSON: {exc}") from None
    if fmt in ("timing", "pcap"):
        from lossbench.traces.timing import parse_timing_csv, read_pcap

        tt = parse_timing_csv(data, p) if fmt == "timing" else read_pcap(p, ssrc=ssrc, clock_rate=clock_rate)
        return LossTrace(tt.lost, float(slot_s or tt.slot_s),
                         meta={**meta, **{k: v for k, v in tt.meta.items() if k != "wraps16"}}, timing=tt)
    lost, file_slot = _PARSERS[fmt](data, p)
    slot = slot_s or file_slot or meta.get("slot_s") or DEFAULT_SLOT_S
    meta = {**meta, "source": str(p), "format": fmt}
    return LossTrace(lost, float(slot), meta=meta)


def _parse_text(data: bytes, p: Path) -> tuple[np.ndarray, None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{p}: byte offset {exc.start}: not a text file (invalid UTF-8)") from None
    vals: list[bool] = []
    for no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s == "0":
            vals.append(False)
        elif s == "1":
            vals.append(True)
        else:
            raise TraceFormatError(f"{p}: line {no}: expected 0 or 1, got {s[:40]!r}")
    if not vals:
        raise TraceFormatError(f"{p}: no 0/1 lines found (empty trace)")
    return np.array(vals, dtype=bool), None


def _parse_g192(data: bytes, p: Path) -> tuple[np.ndarray, None]:
    if len(data) % 2:
        raise TraceFormatError(
            f"{p}: byte offset {len(data) - 1}: odd file length ({len(data)} bytes); G.192 holds 16-bit words"
        )
    le = np.frombuffer(data, dtype="<u2")
    words = le if le[0] in (G192_GOOD, G192_BAD) else np.frombuffer(data, dtype=">u2")
    bad = np.flatnonzero((words != G192_GOOD) & (words != G192_BAD))
    if bad.size:
        i = int(bad[0])
        raise TraceFormatError(
            f"{p}: byte offset {2 * i}: unknown G.192 word 0x{int(words[i]):04X}; "
            f"expected 0x6B21 (good frame) or 0x6B20 (erased frame)"
        )
    return words == G192_BAD, None


def _parse_g191(data: bytes, p: Path) -> tuple[np.ndarray, None]:
    b = np.frombuffer(data, dtype=np.uint8)
    bad = np.flatnonzero((b != G191_GOOD) & (b != G191_BAD))
    if bad.size:
        i = int(bad[0])
        raise TraceFormatError(
            f"{p}: byte offset {i}: unknown G.191 byte 0x{int(b[i]):02X}; expected 0x21 (good) or 0x20 (erased)"
        )
    return b == G191_BAD, None


def _parse_csv(data: bytes, p: Path) -> tuple[np.ndarray, float | None]:
    rows, cols = csv_rows(data, p)
    hno, header = rows[0]
    if "lost" not in cols or not ({"seq", "time_s"} & set(cols)):
        raise TraceFormatError(f"{p}: line {hno}: expected a header 'seq,lost' or 'time_s,lost', got {','.join(header)!r}")
    il = cols.index("lost")
    key = "seq" if "seq" in cols else "time_s"
    ik = cols.index(key)
    lost: list[bool] = []
    keys: list[float] = []
    for no, r in rows[1:]:
        if len(r) <= max(il, ik):
            raise TraceFormatError(f"{p}: line {no}: expected {len(cols)} fields, got {len(r)}")
        v = r[il].strip().lower()
        if v in ("0", "false"):
            lost.append(False)
        elif v in ("1", "true"):
            lost.append(True)
        else:
            raise TraceFormatError(f"{p}: line {no}: 'lost' must be 0 or 1, got {r[il].strip()[:40]!r}")
        try:
            keys.append(float(r[ik]))
        except ValueError:
            raise TraceFormatError(f"{p}: line {no}: {key} must be a number, got {r[ik].strip()[:40]!r}") from None
    if not lost:
        raise TraceFormatError(f"{p}: the CSV file has a header but no rows (empty trace)")
    k = np.array(keys)
    d = np.diff(k)
    lines = [no for no, _ in rows[1:]]
    if key == "seq":
        bad = np.flatnonzero(d != 1)
        if bad.size:
            i = int(bad[0]) + 1
            raise TraceFormatError(f"{p}: line {lines[i]}: seq {keys[i]:g} does not follow {keys[i - 1]:g}")
        return np.array(lost), None
    if d.size == 0:
        return np.array(lost), None
    slot = float(d[0])  # the first step sets the slot; later steps must match it
    bad = np.flatnonzero(np.abs(d - slot) > 1e-6 * max(1.0, slot) + 1e-9)
    if slot <= 0 or bad.size:
        i = int(bad[0]) + 1 if bad.size else 1
        raise TraceFormatError(f"{p}: line {lines[i]}: time_s must advance by a constant slot ({slot:g} s)")
    return np.array(lost), slot


def _parse_npy(data: bytes, p: Path) -> tuple[np.ndarray, None]:
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise TraceFormatError(f"{p}: not a readable .npy array: {exc}") from None
    if a.ndim != 1:
        raise TraceFormatError(f"{p}: expected a 1-D array, got shape {a.shape}")
    if a.size == 0:
        raise TraceFormatError(f"{p}: the array is empty")
    if a.dtype != np.bool_:
        bad = np.flatnonzero(~np.isin(a, (0, 1)))
        if bad.size:
            raise TraceFormatError(f"{p}: element {int(bad[0])}: expected 0 or 1, got {a[bad[0]]!r}")
    return a.astype(bool), None


_PARSERS = {"text": _parse_text, "g192": _parse_g192, "g191": _parse_g191, "csv": _parse_csv, "npy": _parse_npy}


def encode_trace(trace: LossTrace, fmt: str, time_column: bool = False) -> bytes:
    """The bytes of ``trace`` in format ``fmt``."""
    lost = trace.lost
    if fmt == "text":
        return ("\n".join("1" if x else "0" for x in lost.tolist()) + "\n").encode()
    if fmt == "g192":
        return np.where(lost, G192_BAD, G192_GOOD).astype("<u2").tobytes()
    if fmt == "g191":
        return np.where(lost, G191_BAD, G191_GOOD).astype(np.uint8).tobytes()
    if fmt == "csv":
        out = io.StringIO()
        if time_column:
            out.write("time_s,lost\n")
            for i, x in enumerate(lost.tolist()):
                out.write(f"{i * trace.slot_s:.6f},{int(x)}\n")
        else:
            out.write("seq,lost\n")
            for i, x in enumerate(lost.tolist()):
                out.write(f"{i},{int(x)}\n")
        return out.getvalue().encode()
    if fmt == "timing":
        if trace.timing is None:
            raise ConfigError("a 'timing' trace needs send and arrival times; this trace has only its loss pattern")
        return trace.timing.to_csv()
    if fmt == "pcap":
        raise ConfigError("lossbench reads pcap captures but does not write them; write 'timing' (CSV) instead")
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, lost.astype(np.uint8), allow_pickle=False)
        return buf.getvalue()
    raise ConfigError(f"unknown trace format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def write_trace(
    trace: LossTrace,
    path: str | Path,
    fmt: str | None = None,
    sidecar: bool = False,
    time_column: bool = False,
) -> Path:
    """Write ``trace`` to ``path`` (format from the extension unless given).

    Args:
        sidecar: also write ``<path>.json`` with the slot duration and
            ``trace.meta`` (generating model, parameters, seed).
        time_column: for CSV, write ``time_s,lost`` instead of ``seq,lost``.
    """
    p = Path(path)
    fmt = fmt or format_for_path(p)
    if len(trace) == 0:
        raise ConfigError("refusing to write an empty trace")
    data = encode_trace(trace, fmt, time_column=time_column)
    write_atomic(p, data, mkdir=True)
    if sidecar:
        meta = {k: v for k, v in trace.meta.items() if k not in ("source", "format")}
        meta = {"slot_s": trace.slot_s, "packets": len(trace), **meta}
        with writing(sidecar_path(p)):
            sidecar_path(p).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return p
