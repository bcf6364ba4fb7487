"""The columns the harness writes into every result row, stage by stage.

``lossbench.benchmarks.run`` builds each stage's part of a row with :func:`stage_row`, which refuses a dictionary
whose keys are not exactly the stage's declared columns; :data:`RESERVED_COLUMNS` is the union of the stages, so
it is derived from the code that writes the rows and cannot drift from it. A codec fact of one of these names is
refused (:func:`lossbench.codecs.base.check_fact_names`). This module imports nothing heavy: the codec package and
the reports read it.
"""

from __future__ import annotations

from typing import Any

#: what the task is (every row, error rows included)
TASK = ("task", "clip", "codec", "codec_config", "system", "concealment", "channel", "channel_key", "channel_kind",
        "loss_param", "delay", "jitter", "playout", "seed", "status", "error")
#: a row that failed also says where (the last frames of the traceback)
FAILURE = ("traceback",)
#: the encoded stream (once per job)
STREAM = ("duration_s", "bitrate_kbps", "payload_kbps", "header_kbps", "fec_kbps", "packets", "packet_ms", "encode_rtf",
          "clip_resampled", "codec_rate_hz", "score_rate_hz", "clip_channels", "codec_channels")
#: the reception of one (channel, seed): delay, loss statistics, the playout buffer's actions
DELAY = ("network_delay_mean_ms", "network_delay_p95_ms", "network_delay_max_ms", "playout_delay_mean_ms",
         "playout_delay_p95_ms", "playout_delay_max_ms", "playout_delay_quantiles_ms", "algorithmic_delay_ms",
         "mouth_to_ear_ms")
LOSS = ("network_loss", "late_rate", "effective_loss", "mean_burst", "longest_burst", "p_loss_given_loss",
        "channel_time_s")
PLAYOUT_RATES = ("expand_rate", "hold_rate", "accelerate_rate", "preemptive_rate", "merge_rate", "drop_rate")
PLAYOUT = tuple(f"playout_{k}" for k in PLAYOUT_RATES) + ("playout_output_s",)
#: one decode
DECODE = ("decode_rtf", "frames_concealed", "frames_recovered", "corrupt_packets")
#: scoring (the metric columns themselves come from the metric table)
SCORE = ("metrics_resampled", "metrics_downmixed", "emodel_r", "emodel_mos", "emodel_note", "metrics_time_s",
         "metric_times")
#: quality over time, on a time-varying channel: the series, and its worst window (the paper's "minimum real-time
#: score", a column a claim can pair)
TIMESERIES = ("timeseries", "window_min")
#: a kept example: its audio file, the frames heard concealed, a time-warping buffer's action log
EXPORT = ("audio_file", "packet_marks", "playout_log")

STAGES: dict[str, tuple[str, ...]] = {"task": TASK, "failure": FAILURE, "stream": STREAM, "delay": DELAY,
                                      "loss": LOSS, "playout": PLAYOUT, "decode": DECODE, "score": SCORE,
                                      "timeseries": TIMESERIES, "export": EXPORT}

#: every column the harness writes: a codec fact of one of these names would overwrite one
RESERVED_COLUMNS = frozenset(c for cols in STAGES.values() for c in cols)

#: columns holding structured values (Parquet lists and structs, not JSON text): what each holds
STRUCTURED = {
    "playout_delay_quantiles_ms": "list: the playout delay's 0, 5, ..., 100 % quantiles over the packets, in ms",
    "metric_times": "struct: each metric's wall time, in s",
    "timeseries": "struct: metric, t (window ends, s), v (values, null where the metric failed), lost_t (s)",
    "packet_marks": "struct: frame_s, lost and late (the frame indices heard concealed)",
    "playout_log": "list of structs: a time-warping buffer's chunks (t_s, action, out_ms, media_frames, "
                   "target_ms, level_ms)",
}


def stage_row(stage: str, **values: Any) -> dict[str, Any]:
    """``values`` as the columns of ``stage``; a key the stage does not declare, or a declared one missing, is a
    programming error of the harness (a ValueError naming it)."""
    cols = STAGES[stage]
    extra, missing = sorted(set(values) - set(cols)), [c for c in cols if c not in values]
    if extra or missing:
        raise ValueError(f"stage {stage!r}: undeclared columns {extra}, missing {missing}; declare them in "
                         f"lossbench/benchmarks/columns.py")
    return {c: values[c] for c in cols}
