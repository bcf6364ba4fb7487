"""Running one job: encode once, transmit once per (channel, seed), decode
once per concealment, score, and return one row per task.

The stages, each a function of its own: :func:`_prepare` (the codec and the
clips), :func:`_encode`, :func:`_transmit` (one channel and seed),
:func:`_decode_all` (every concealment of one reception), :func:`_render`
(a time-warping buffer's output, aligned back for intrusive metrics),
:func:`_score` (metrics and the E-model), :func:`_timeseries` and
:func:`_export` (a kept example). Each writes the columns that
:mod:`lossbench.benchmarks.columns` declares for it.

A failure is recorded in the rows it affects (``status="error"`` and the
message in ``error``); it never propagates, so a sweep always finishes and
keeps what it finished. Decoded audio is dropped once scored, except for
the clips whose examples the report plays.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossbench.benchmarks.columns import PLAYOUT, stage_row
from lossbench.benchmarks.plan import ChannelInstance, Job, channel_rng
from lossbench.concurrency import BoundedCache
from lossbench.core import Clip, EncodedStream, PacketKind, Reception
from lossbench.errors import ConfigError, LossbenchError
from lossbench.files import safe_name

if TYPE_CHECKING:
    from lossbench.codecs.base import Codec, DecodeResult
    from lossbench.playout.plan import PlayoutPlan

#: codec objects by spec, per process (codecs keep no per-stream state, so tasks and threads share them); bounded
_CODEC_CACHE: BoundedCache[str, Codec] = BoundedCache(16)
#: meta keys whose value the harness takes for one of its own columns (a codec's measured FEC rate)
_FED_COLUMNS = ("fec_kbps",)
_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating)


def facts(owner: str, d: dict[str, Any], skip: frozenset[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Every scalar of a stream's meta or a decode's info, as result columns (numpy scalars made Python's).

    A name the harness writes itself is a ConfigError naming it: a codec fact never overwrites a column.
    """
    from lossbench.codecs.base import STRUCTURAL_META, check_fact_names

    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()
           if k not in STRUCTURAL_META and k not in skip and isinstance(v, _SCALARS)}
    check_fact_names(owner, out)
    return out


def _codec(spec: str) -> Codec:
    """One codec object per spec and process: codecs keep no per-stream state, so tasks (and the threads of
    a Dask worker) share it."""
    from lossbench.codecs import make_codec

    return _CODEC_CACHE.get_or_make(spec, lambda: make_codec(spec))



def run_job(job: Job, skip: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
    """All rows of ``job`` not in ``skip`` (finished task keys), computed under the one set of numeric settings
    that every executor and ``lossbench rerun`` share (:func:`~lossbench.codecs.neural.threads.single_thread`)."""
    from lossbench.codecs.neural.threads import single_thread

    with single_thread():
        return _run_job(job, skip)


def _task_row(job: Job, conc: str, ch: ChannelInstance, seed: int, status: str = "ok",
              error: str | None = None) -> dict[str, Any]:
    return stage_row("task", task=job.task_key(conc, ch, seed), clip=job.clip.id, codec=job.codec_name,
                     codec_config=job.codec_spec, system=job.codec_label, concealment=conc, channel=ch.label,
                     channel_key=ch.key, channel_kind=ch.kind, loss_param=ch.loss_param, delay=ch.delay or "",
                     jitter=ch.jitter or "", playout=ch.playout or "none", seed=seed, status=status, error=error)


def _error_rows(job: Job, msg: str, only: set[str] | None = None) -> list[dict[str, Any]]:
    return [_task_row(job, c, ch, s, "error", msg) for ch in job.channels for s in job.seeds for c in job.concealments
            if only is None or job.task_key(c, ch, s) in only]


def _failed(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """``row`` marked failed by ``exc``, with where it failed."""
    return {**row, "status": "error", "error": f"{type(exc).__name__}: {exc}",
            **stage_row("failure", traceback="".join(traceback.format_exception(exc, limit=3)))}


def _codec_delay_ms(codec: Codec, stream: EncodedStream) -> tuple[float, float]:
    """(the codec's algorithmic delay, its packetisation beyond one frame), in ms (see :func:`_delay_columns`).
    A codec that reports its own ``latency_ms`` (SoundSpring, from its send schedule) counts its packetisation
    in it: a frame's start to its packet's send, plus the decoder's look-ahead."""
    frame_ms = 1000.0 * stream.frame_duration_s
    algo = stream.meta.get("latency_ms")
    if algo is not None:
        return float(algo), 0.0
    return frame_ms + 1000.0 * codec.delay_samples / codec.sample_rate_hz, 1000.0 * codec.packet_duration_s - frame_ms


def _delay_columns(send: np.ndarray, rec: Reception, algo_ms: float, packing_ms: float) -> dict[str, Any]:
    """The delay a listener lives with, in ms: network delay (arrival - send) of the packets that arrived, the
    playout delay (deadline - send) where a playout buffer set deadlines, and the mouth-to-ear delay.

    mouth_to_ear_ms = the codec's algorithmic delay (one frame plus its look-ahead ``delay_samples``; or its own
    ``latency_ms`` where it reports one, as SoundSpring does from its send schedule) + the packetisation beyond
    one frame (the packet's duration less one frame) + the mean playout delay (send to playout deadline: the
    network's delay and the buffer's). Every repair that waits for a later packet (RED, XOR, LBRR, DRED,
    Glaris's copies of z, SoundSpring's next block) waits inside that playout delay: a frame uses a packet only
    if it arrived by the frame's playout time, so a scheme that needs a longer wait needs a longer buffer, and
    its rows show it. Without a playout buffer (a reception with infinite deadlines, which a sweep never makes)
    the mean network delay stands in.
    """
    out: dict[str, Any] = {}
    arrived = rec.arrived
    net = (rec.arrival_time_s[arrived] - send[arrived]) * 1000.0
    finite = np.isfinite(rec.playout_deadline_s)
    play = (rec.playout_deadline_s[finite] - send[finite]) * 1000.0
    for name, v in (("network_delay", net), ("playout_delay", play)):
        out[f"{name}_mean_ms"] = float(v.mean()) if v.size else float("nan")
        out[f"{name}_p95_ms"] = float(np.percentile(v, 95)) if v.size else float("nan")
        out[f"{name}_max_ms"] = float(v.max()) if v.size else float("nan")
    # the per-packet distribution, as 21 quantiles (0, 5, ..., 100 %): the report's delay CDF per buffer
    out["playout_delay_quantiles_ms"] = (np.round(np.percentile(play, np.arange(0, 101, 5)), 2).tolist()
                                         if play.size else None)
    buffer = out["playout_delay_mean_ms"] if play.size else out["network_delay_mean_ms"]
    out["algorithmic_delay_ms"] = algo_ms
    out["mouth_to_ear_ms"] = algo_ms + packing_ms + (buffer if np.isfinite(buffer) else 0.0)
    return stage_row("delay", **out)


def _playout_columns(plan: PlayoutPlan | None) -> dict[str, Any]:
    """A time-warping buffer's NetEq-style rates (``playout_expand_rate`` ...; see
    :meth:`~lossbench.playout.plan.PlayoutPlan.rates`) and its output length; NaN for the other buffers."""
    if plan is None:
        return stage_row("playout", **{c: float("nan") for c in PLAYOUT})
    return stage_row("playout", **{f"playout_{k}": v for k, v in plan.rates().items()}, playout_output_s=plan.output_s)


def _metrics_for(metrics: list[str], codec: Codec, resampling: bool) -> list[str]:
    """The job's metrics, plus PESQ-NB where it applies: a narrowband (8 kHz) codec scored with PESQ-WB, when
    metrics may score resampled copies (PESQ-NB scores an 8 kHz copy of the reference)."""
    if resampling and codec.sample_rate_hz == 8000 and "pesq_wb" in metrics and "pesq_nb" not in metrics:
        return [*metrics, "pesq_nb"]
    return list(metrics)


def _at_rate(clip: Clip, sample_rate_hz: int) -> Clip:
    """``clip`` itself at its rate, else a resampled copy (soxr, very high quality)."""
    if clip.sample_rate_hz == sample_rate_hz:
        return clip
    from lossbench.audio import resample

    return Clip(clip.id, resample(clip.samples, clip.sample_rate_hz, sample_rate_hz), sample_rate_hz,
                meta={**clip.meta, "resampled": True})


def _both_channels(clip: Clip) -> Clip:
    """A mono clip as a stereo pair of identical channels."""
    return Clip(clip.id, np.stack([clip.samples, clip.samples], axis=1), clip.sample_rate_hz, meta=clip.meta)


def _back_to(audio: np.ndarray, from_hz: int, to_hz: int, n: int) -> np.ndarray:
    """Decoded audio at the reference's rate and length (unchanged when the rates agree)."""
    if from_hz == to_hz:
        return audio
    from lossbench.audio import resample

    y = resample(audio, from_hz, to_hz)[:n]
    return np.pad(y, [(0, n - y.shape[0])] + [(0, 0)] * (y.ndim - 1)) if y.shape[0] < n else y


def _decode_all(codec: Codec, stream: EncodedStream, rec: Reception,
                concs: list[str]) -> dict[str, tuple[DecodeResult | Exception, float]]:
    """concealment -> (DecodeResult or the exception it raised, decode seconds). One ``decode_many`` call
    (shared stages run once; its time is split evenly); if it fails, each concealment alone, so that one
    failing concealment fails only its own rows."""
    if not concs:
        return {}
    t0 = time.perf_counter()
    try:
        results = codec.decode_many(stream, rec, concs)
        dt = (time.perf_counter() - t0) / len(concs)
        return {c: (r, dt) for c, r in zip(concs, results)}
    except Exception:
        pass
    out: dict[str, tuple[DecodeResult | Exception, float]] = {}
    for c in concs:
        t0 = time.perf_counter()
        try:
            out[c] = (codec.decode(stream, rec, c), time.perf_counter() - t0)
        except Exception as exc:
            out[c] = (exc, time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------------------------------ the stages


@dataclass
class Setup:
    """What a job knows before it encodes: the codec, the reference and the clip the codec gets, the metrics."""

    codec: Codec
    ref: Clip  # the clip at its own rate: what every metric scores against
    clip: Clip  # what the codec encodes: the reference mixed down or up to its channels, at its rate
    metrics: list[str]

    @property
    def score_rate_hz(self) -> int:
        return self.ref.sample_rate_hz


@dataclass
class Sent:
    """The encoded stream and what the harness reads off it once."""

    stream: EncodedStream
    columns: dict[str, Any]  # the stream's columns and the codec's facts of this encoding
    send_s: np.ndarray
    algo_ms: float
    packing_ms: float


@dataclass
class Received:
    """One (channel, seed): the reception and its columns."""

    ch: ChannelInstance
    seed: int
    rec: Reception
    columns: dict[str, Any]
    burst_r: float  # G.107's BurstR of the effective loss pattern


def _prepare(job: Job) -> Setup:
    """The codec and the clips. The reference is the clip at its own rate; a codec at another rate gets a resampled
    copy and its output is resampled back, so that a band limit counts (an 8 kHz codec scored against 48 kHz music).
    A stereo clip reaches a codec of one channel as its mean, a mono clip reaches a stereo codec in both channels."""
    codec = _codec(job.codec_spec)
    ref = job.clip.load(stereo=job.stereo)
    src = ref.mono() if codec.channels == 1 else ref if ref.channels == 2 else _both_channels(ref)
    metrics = _metrics_for(job.metrics, codec, job.metric_resampling)
    if not job.metric_resampling:  # checked once here, so that scoring never resamples
        from lossbench.metrics import check_metric_rates

        check_metric_rates(metrics, ref.sample_rate_hz)
    return Setup(codec, ref, _at_rate(src, codec.sample_rate_hz), metrics)


class _EncodeFailed(Exception):
    """The codec's encoder raised (the message says what)."""


def _encode(job: Job, s: Setup) -> Sent:
    """Encode once; the stream's columns (bit rates measured from the payloads) and the codec's facts."""
    t0 = time.perf_counter()
    try:
        stream = s.codec.encode(s.clip)
    except Exception as exc:
        raise _EncodeFailed(f"encode failed: {type(exc).__name__}: {exc}") from exc
    t_enc = time.perf_counter() - t0
    dur = s.clip.duration_s
    fec_kbps = stream.meta.get("fec_kbps", 8.0 * stream.payload_bytes_of(PacketKind.REDUNDANCY) / dur / 1000.0)
    # the audio per primary packet, from the frames the stream's packets carry (parity packets aside; the median,
    # so that a short last packet does not count): a loss rate takes more audio per lost packet where packets are
    # longer
    frames = [len(p.frames) for p in stream.packets if p.kind == PacketKind.PRIMARY]
    cols = stage_row("stream", duration_s=dur, bitrate_kbps=stream.bitrate_kbps, payload_kbps=stream.payload_kbps,
                     header_kbps=stream.header_kbps, fec_kbps=fec_kbps, packets=stream.num_packets,
                     packet_ms=1000.0 * stream.frame_duration_s * float(np.median(frames)) if frames else float("nan"),
                     encode_rtf=t_enc / dur, clip_resampled=s.clip.sample_rate_hz != s.ref.sample_rate_hz,
                     codec_rate_hz=s.codec.sample_rate_hz, score_rate_hz=s.score_rate_hz,
                     clip_channels=s.ref.channels, codec_channels=s.codec.channels)
    cols.update(facts(s.codec.name, stream.meta, _FED_COLUMNS))  # e.g. what the packets really carry
    algo_ms, packing_ms = _codec_delay_ms(s.codec, stream)
    return Sent(stream, cols, stream.send_times_s(), algo_ms, packing_ms)


def _transmit(job: Job, s: Setup, sent: Sent, ch: ChannelInstance, seed: int) -> Received:
    """One (channel, seed): the reception, its delay and loss columns, the playout buffer's rates."""
    from lossbench.playout.emodel import burst_ratio
    from lossbench.traces.stats import trace_stats

    t0 = time.perf_counter()
    rec = ch.build().transmit(sent.stream, channel_rng(job.base_seed, ch.rng_key, s.clip.id, seed),
                              audio=s.clip.mono().samples)
    t_ch = time.perf_counter() - t0
    st = trace_stats(~rec.usable)
    cols = {**_delay_columns(sent.send_s, rec, sent.algo_ms, sent.packing_ms),
            **stage_row("loss", network_loss=rec.network_loss_rate, late_rate=rec.late_rate,
                        effective_loss=rec.effective_loss_rate, mean_burst=st.mean_burst,
                        longest_burst=st.longest_burst, p_loss_given_loss=st.p_loss_given_loss, channel_time_s=t_ch),
            **_playout_columns(rec.playout_plan)}
    return Received(ch, seed, rec, cols, burst_ratio(st.mean_burst, st.loss_rate))


def _render(s: Setup, r: Received, res: DecodeResult) -> tuple[np.ndarray, np.ndarray | None]:
    """(the decoded audio aligned to the reference, at its rate and length; what the listener heard, where a
    time-warping buffer made it differ)."""
    plan, sr, codec_sr = r.rec.playout_plan, s.score_rate_hz, s.codec.sample_rate_hz
    if plan is None:
        return _back_to(res.audio, codec_sr, sr, s.ref.num_samples), None
    if res.audio.ndim > 1:
        raise ConfigError(f"playout {r.ch.playout!r} time-scales one channel; a stereo codec needs a fixed, adaptive "
                          "or no playout buffer")
    from lossbench.playout.plan import align, render

    warped, rmap = render(res.audio, plan, codec_sr, return_map=True)
    aligned = align(warped, plan, codec_sr, res.audio.size, rmap)
    heard = _back_to(warped, codec_sr, sr, int(round(warped.size * sr / codec_sr)))
    return _back_to(aligned, codec_sr, sr, s.ref.num_samples), heard


def _score(s: Setup, r: Received, conc: str, audio: np.ndarray, heard: np.ndarray | None,
           scored: dict[bytes, dict[str, Any]]) -> dict[str, Any]:
    """The metrics (identical audio, as when nothing was lost, scored once per reception: ``scored``) and the
    E-model of the row."""
    from lossbench.metrics import compute_metrics
    from lossbench.playout.emodel import emodel_row

    t0 = time.perf_counter()
    digest = hashlib.sha1(audio.tobytes() + (b"" if heard is None else heard.tobytes())).digest()
    times: dict[str, float] = {}
    if digest not in scored:
        ctx = {"transcript": s.ref.meta.get("text"), "language": s.ref.meta.get("language"),
               "kind": s.ref.meta.get("kind")}
        scored[digest] = compute_metrics(audio, s.ref.samples, s.score_rate_hz, s.metrics, times, ctx, heard=heard)
    values = dict(scored[digest])
    downmixed, resampled = values.pop("metrics_downmixed"), values.pop("metrics_resampled")
    em = emodel_row(s.codec.emodel_key, conc, r.columns["mouth_to_ear_ms"], r.columns["effective_loss"], r.burst_r)
    return {**values, **stage_row("score", metrics_resampled=resampled, metrics_downmixed=downmixed, **em,
                                  metrics_time_s=time.perf_counter() - t0,
                                  metric_times={k: round(v, 6) for k, v in times.items()} or None)}


def _timeseries(job: Job, s: Setup, sent: Sent, r: Received, audio: np.ndarray) -> dict[str, Any]:
    """Quality over time on a time-varying channel: PESQ-WB (else the first metric) over 2.5 s windows every
    0.25 s, when packets were lost, and the worst window's value."""
    from lossbench.metrics import windowed

    name = "pesq_wb" if "pesq_wb" in job.metrics else job.metrics[0]
    t, v = windowed(name, audio, s.ref.samples, s.score_rate_hz, 2.5, 0.25)
    lost_t = (np.flatnonzero(~r.rec.usable) * sent.stream.frame_duration_s).round(3).tolist()
    ok = v[~np.isnan(v)]
    return stage_row("timeseries", timeseries={"metric": name, "t": t.round(3).tolist(),
                                               "v": [None if np.isnan(x) else round(float(x), 4) for x in v],
                                               "lost_t": lost_t},
                     window_min=round(float(ok.min()), 4) if ok.size else None)


def _export(job: Job, s: Setup, sent: Sent, r: Received, conc: str, audio: np.ndarray,
            heard: np.ndarray | None) -> dict[str, Any]:
    """A kept example: the audio as heard, the frames heard concealed (those of lost and late packets), and a
    time-warping buffer's per-chunk action log."""
    from lossbench.audio import save_audio

    f = Path(job.run_dir) / "audio" / safe_name(f"{s.clip.id}__{job.codec_spec}__{conc}__{r.ch.key}")
    path = save_audio(f.with_name(f.name + ".wav"), audio if heard is None else heard, s.score_rate_hz)
    lost: list[int] = []
    late: list[int] = []
    for pk, arrived, is_late in zip(sent.stream.packets, r.rec.arrived, r.rec.late):
        if not arrived:
            lost += list(pk.frames)
        elif is_late:
            late += list(pk.frames)
    plan = r.rec.playout_plan
    return stage_row("export", audio_file=str(path.relative_to(job.run_dir)),
                     packet_marks={"frame_s": sent.stream.frame_duration_s, "lost": lost, "late": late},
                     playout_log=plan.log() if plan is not None else None)


def _row(job: Job, s: Setup, sent: Sent, r: Received, conc: str, decoded: tuple[DecodeResult | Exception, float],
         scored: dict[bytes, dict[str, Any]]) -> dict[str, Any]:
    """One task's row: decode, render, score, and (where asked) the time series and the example."""
    row = {**_task_row(job, conc, r.ch, r.seed), **sent.columns, **r.columns}
    try:
        res, t_dec = decoded
        if isinstance(res, Exception):
            raise res
        row.update(stage_row("decode", decode_rtf=t_dec / s.clip.duration_s, frames_concealed=int(res.missing.sum()),
                             frames_recovered=int(res.recovered.sum()), corrupt_packets=res.corrupt_packets))
        row.update(facts(s.codec.name, res.info))
        audio, heard = _render(s, r, res)
        row.update(_score(s, r, conc, audio, heard, scored))
        if r.ch.time_varying:
            row.update(_timeseries(job, s, sent, r, audio))
        if job.keep_audio and r.seed == 0:
            row.update(_export(job, s, sent, r, conc, audio, heard))
    except Exception as exc:
        return _failed(row, exc)
    return row


def _run_job(job: Job, skip: frozenset[str] | set[str]) -> list[dict[str, Any]]:
    todo = set(job.task_keys()) - set(skip)
    if not todo:
        return []
    try:
        s = _prepare(job)
    except LossbenchError as exc:
        return _error_rows(job, str(exc), todo)
    except Exception as exc:  # an unexpected failure still must not stop the sweep
        return _error_rows(job, f"{type(exc).__name__}: {exc}", todo)
    try:
        sent = _encode(job, s)
    except (_EncodeFailed, LossbenchError) as exc:  # the encoder failed; a codec fact named like a harness column
        return _error_rows(job, str(exc), todo)
    except Exception as exc:
        return _error_rows(job, f"{type(exc).__name__}: {exc}", todo)
    if job.keep_audio and job.keep_ref:
        from lossbench.audio import save_audio

        save_audio(Path(job.run_dir) / "audio" / f"ref__{safe_name(s.ref.id)}_{s.score_rate_hz}.wav", s.ref.samples,
                   s.score_rate_hz)
    rows: list[dict[str, Any]] = []
    for ch in job.channels:
        for seed in job.seeds:
            concs = [c for c in job.concealments if job.task_key(c, ch, seed) in todo]
            if not concs:
                continue
            try:
                r = _transmit(job, s, sent, ch, seed)
            except Exception as exc:
                rows += [_task_row(job, c, ch, seed, "error", f"channel failed: {exc}") for c in concs]
                continue
            decoded = _decode_all(s.codec, sent.stream, r.rec, concs)
            scored: dict[bytes, dict[str, Any]] = {}  # identical audio (nothing lost) is scored once
            rows += [_row(job, s, sent, r, c, decoded[c], scored) for c in concs]
    return rows
