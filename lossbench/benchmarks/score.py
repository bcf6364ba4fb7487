"""``lossbench score REF_DIR DEG_DIR``: score decoded files a user already has, like a sweep's rows.

Files pair by their path under each folder without the extension (``a/b.wav`` in DEG_DIR against ``a/b.flac`` in
REF_DIR). Every pair is scored with the metrics of the table and becomes one row of ``results.parquet`` in the
output folder, with the columns a sweep writes (the system is DEG_DIR's name or ``label``, the codec ``files``, the
channel ``files``), so that ``lossbench report`` and ``lossbench claims`` read it as they read a sweep.

Nothing is scored against the wrong reference: a degraded file with no reference of its name, a reference with no
degraded file, an unreadable file, two files at different rates, or lengths that differ by more than
``max_length_diff_ms`` (default 0: none; within it the longer is cut) is an error row that says so in one line.

With ``mask_dir``, each pair's loss file (``<name>.txt``: one 0 or 1 per frame, the Deep PLC Challenge's format;
or any trace format lossbench reads) adds the loss statistics of the row (``network_loss``, ``mean_burst``,
``longest_burst``, ``p_loss_given_loss``) and its loss rate as ``loss_param``, the x axis of the report's loss
plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.audio import AUDIO_EXTENSIONS
from lossbench.errors import ConfigError, LossbenchError

CODEC = "files"
CHANNEL = "files"


def audio_files(folder: Path) -> dict[str, Path]:
    """Audio files under ``folder`` by their relative path without extension; two of one name are an error."""
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
            key = p.relative_to(folder).with_suffix("").as_posix()
            if key in out:
                raise ConfigError(f"{folder}: two files are named {key!r} ({out[key].name} and {p.name}); "
                                  f"pairing by name needs one")
            out[key] = p
    return out


def _mask_for(mask_dir: Path, key: str) -> Path | None:
    for ext in (".txt", ".csv", ".json", ".bin", ".pcap"):
        p = mask_dir / f"{key}{ext}"
        if p.exists():
            return p
    return None


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise LossbenchError(f"{path}: not readable as audio: {exc}") from None
    return (x[:, 0] if x.shape[1] == 1 else x), int(sr)


def _row(key: str, label: str, deg_dir: Path, loss: float = float("nan")) -> dict[str, Any]:
    return {"task": f"{key}|{label}", "clip": key, "codec": CODEC, "codec_config": str(deg_dir), "system": label,
            "concealment": "as given", "channel": CHANNEL, "channel_key": CHANNEL, "channel_kind": CHANNEL,
            "loss_param": loss, "seed": 0, "status": "ok", "error": None}


def score_pair(key: str, ref: Path, deg: Path, metrics: list[str], base: dict[str, Any],
               max_length_diff_ms: float = 0.0) -> dict[str, Any]:
    """One pair's row: the metrics, or an error row naming the file and what is wrong."""
    from lossbench.metrics import compute_metrics

    row = dict(base)
    try:
        x, sr_d = _read(deg)
        r, sr_r = _read(ref)
        if sr_d != sr_r:
            raise LossbenchError(f"{deg} is at {sr_d} Hz but its reference {ref} at {sr_r} Hz; resample one of "
                                 f"them (nothing is scored across rates)")
        diff_ms = abs(len(x) - len(r)) * 1000.0 / sr_r
        if diff_ms > max_length_diff_ms + 1e-9:
            raise LossbenchError(f"{deg} has {len(x)} samples but its reference {ref} {len(r)} ({diff_ms:.1f} ms "
                                 f"apart; allowed: {max_length_diff_ms:g} ms, --max-length-diff-ms)")
        n = min(len(x), len(r))
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        vals = compute_metrics(x[:n], r[:n], sr_r, metrics, times)
        row.update(vals)
        row.update(duration_s=n / sr_r, score_rate_hz=sr_r, metrics_time_s=time.perf_counter() - t0,
                   metric_times={k: round(v, 6) for k, v in times.items()} or None)
    except LossbenchError as exc:
        row.update(status="error", error=str(exc))
    return row


def score_folders(ref_dir: str | Path, deg_dir: str | Path, out: str | Path, metrics: list[str],
                  label: str | None = None, mask_dir: str | Path | None = None, max_length_diff_ms: float = 0.0,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Score every pair of ``deg_dir`` against ``ref_dir`` into ``out/results.parquet``; returns its path."""
    from lossbench.metrics import check_metric_names

    check_metric_names(metrics)
    ref_dir, deg_dir = Path(ref_dir), Path(deg_dir)
    for d, what in ((ref_dir, "reference"), (deg_dir, "degraded")):
        if not d.is_dir():
            raise ConfigError(f"{what} folder {str(d)!r} does not exist or is not a folder")
    masks = Path(mask_dir) if mask_dir is not None else None
    if masks is not None and not masks.is_dir():
        raise ConfigError(f"mask folder {str(masks)!r} does not exist or is not a folder")
    refs, degs = audio_files(ref_dir), audio_files(deg_dir)
    if not degs:
        raise ConfigError(f"degraded folder {str(deg_dir)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    name = label or deg_dir.resolve().name
    rows: list[dict[str, Any]] = []
    keys = sorted(set(refs) | set(degs))
    for i, key in enumerate(keys):
        base = _row(key, name, deg_dir)
        if key not in refs:
            rows.append(base | {"status": "error", "error": f"{degs[key]}: no reference named {key!r} in {ref_dir}"})
        elif key not in degs:
            rows.append(base | {"status": "error", "error": f"{refs[key]}: no degraded file named {key!r} in {deg_dir}"})
        else:
            if masks is not None:
                try:
                    base.update(_mask_columns(masks, key))
                except LossbenchError as exc:
                    rows.append(base | {"status": "error", "error": str(exc)})
                    continue
            rows.append(score_pair(key, refs[key], degs[key], metrics, base, max_length_diff_ms))
        if progress is not None:
            progress(i + 1, len(keys))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_spec(out, ref_dir, deg_dir, metrics, name, masks, max_length_diff_ms)
    path = out / "results.parquet"
    from lossbench.errors import writing
    from lossbench.files import atomic

    with writing(path), atomic(path) as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
    return path


def _mask_columns(masks: Path, key: str) -> dict[str, Any]:
    from lossbench.traces.formats import read_trace
    from lossbench.traces.stats import trace_stats

    p = _mask_for(masks, key)
    if p is None:
        raise LossbenchError(f"no loss file for {key!r} in {masks} (expected {key}.txt: one 0 or 1 per frame)")
    st = trace_stats(read_trace(p))
    return {"loss_param": round(st.loss_rate, 4), "network_loss": st.loss_rate, "mean_burst": st.mean_burst,
            "longest_burst": st.longest_burst, "p_loss_given_loss": st.p_loss_given_loss,
            "channel_key": f"{CHANNEL}:{key}"}


def _write_spec(out: Path, ref_dir: Path, deg_dir: Path, metrics: list[str], label: str, masks: Path | None,
                max_length_diff_ms: float) -> None:
    import tomli_w

    d: dict[str, Any] = {"command": "lossbench score", "reference": str(ref_dir), "degraded": str(deg_dir),
                         "label": label, "metrics": metrics, "max_length_diff_ms": max_length_diff_ms}
    if masks is not None:
        d["masks"] = str(masks)
    (out / "spec.toml").write_text("# written by lossbench score\n" + tomli_w.dumps(d))
