"""Running one job: encode once, transmit once per (channel, seed), decode
once per concealment, score, and return one row per task.

A failure is recorded in the rows it affects (``status="error"`` and the
message in ``error``); it never propagates, so a sweep always finishes and
keeps what it finished. Decoded audio is dropped once scored, except for
the clips whose examples the report plays.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.benchmarks.plan import ChannelInstance, Job, channel_rng
from lossbench.concurrency import BoundedCache
from lossbench.errors import ConfigError, LossbenchError

#: codec objects by spec, per process (codecs keep no per-stream state, so tasks and threads share them); bounded
_CODEC_CACHE: BoundedCache[str, Any] = BoundedCache(16)
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


def _codec(spec: str):
    """One codec object per spec and process: codecs keep no per-stream state, so tasks (and the threads of
    a Dask worker) share it."""
    from lossbench.codecs import make_codec

    return _CODEC_CACHE.get_or_make(spec, lambda: make_codec(spec))


def safe_name(s: str) -> str:
    """A file-name-safe form of ``s``; a long name is cut and ends in a hash of the whole, so that two
    names differing only past the cut (two loss levels of one channel) never share a file."""
    t = re.sub(r"[^A-Za-z0-9_.=-]+", "_", s)
    if len(t) <= 120:
        return t
    import hashlib

    return t[:107] + "_" + hashlib.sha256(s.encode()).hexdigest()[:12]


def _base_row(job: Job, conc: str, ch: ChannelInstance, seed: int) -> dict[str, Any]:
    return {
        "task": job.task_key(conc, ch, seed),
        "clip": job.clip.id,
        "codec": job.codec_spec.split(":")[0],
        "codec_config": job.codec_spec,
        "system": job.codec_label,
        "concealment": conc,
        "channel": ch.label,
        "channel_key": ch.key,
        "channel_kind": ch.kind,
        "loss_param": ch.loss_param,
        "delay": ch.delay or "",
        "jitter": ch.jitter or "",
        "playout": ch.playout or "none",
        "seed": seed,
        "status": "ok",
        "error": None,
    }


def _error_rows(job: Job, msg: str, only: set[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for ch in job.channels:
        for s in job.seeds:
            for c in job.concealments:
                r = _base_row(job, c, ch, s)
                if only is not None and r["task"] not in only:
                    continue
                r.update(status="error", error=msg)
                rows.append(r)
    return rows


def _codec_delay_ms(codec: Any, stream: Any) -> tuple[float, float]:
    """(the codec's algorithmic delay, its packetisation beyond one frame), in ms (see :func:`_delay_columns`)."""
    frame_ms = 1000.0 * stream.frame_duration_s
    algo = stream.meta.get("latency_ms")
    if algo is None:
        algo = frame_ms + 1000.0 * codec.delay_samples / codec.sample_rate_hz
    fpp = getattr(getattr(codec, "packetizer", None), "frames_per_packet", 1)
    return float(algo), (fpp - 1) * frame_ms


def _delay_columns(send: np.ndarray, rec: Any, algo_ms: float, packing_ms: float) -> dict[str, float]:
    """The delay a listener lives with, in ms: network delay (arrival - send) of the packets that arrived, the
    playout delay (deadline - send) where a playout buffer set deadlines, and the mouth-to-ear delay.

    mouth_to_ear_ms = the codec's algorithmic delay (its own ``latency_ms`` where it reports one, as
    SoundSpring does from its send schedule; else one frame plus its look-ahead ``delay_samples``) + the
    packetisation beyond one frame ((frames_per_packet - 1) frames) + the mean playout delay, or the mean network
    delay where no playout buffer is set. Packet FEC's repair wait (RED, XOR) is not in it.
    """
    out: dict[str, float] = {}
    arrived = rec.arrived
    net = (rec.arrival_time_s[arrived] - send[arrived]) * 1000.0
    finite = np.isfinite(rec.playout_deadline_s)
    play = (rec.playout_deadline_s[finite] - send[finite]) * 1000.0
    for name, v in (("network_delay", net), ("playout_delay", play)):
        out[f"{name}_mean_ms"] = float(v.mean()) if v.size else float("nan")
        out[f"{name}_p95_ms"] = float(np.percentile(v, 95)) if v.size else float("nan")
        out[f"{name}_max_ms"] = float(v.max()) if v.size else float("nan")
    # the per-packet distribution, as 21 quantiles (0, 5, ..., 100 %): the report's delay CDF per buffer
    out["playout_delay_quantiles_ms"] = (json.dumps(np.round(np.percentile(play, np.arange(0, 101, 5)), 2).tolist())
                                         if play.size else "")
    buffer = out["playout_delay_mean_ms"] if play.size else out["network_delay_mean_ms"]
    out["algorithmic_delay_ms"] = algo_ms
    out["mouth_to_ear_ms"] = algo_ms + packing_ms + (buffer if np.isfinite(buffer) else 0.0)
    return out


PLAYOUT_RATES = ("expand_rate", "hold_rate", "accelerate_rate", "preemptive_rate", "merge_rate", "drop_rate")


def _playout_columns(plan: Any) -> dict[str, Any]:
    """A time-warping buffer's NetEq-style rates (``playout_expand_rate`` ...; see
    :meth:`~lossbench.playout.plan.PlayoutPlan.rates`) and its output length; NaN for the other buffers."""
    if plan is None:
        return {f"playout_{k}": float("nan") for k in PLAYOUT_RATES} | {"playout_output_s": float("nan")}
    return {f"playout_{k}": v for k, v in plan.rates().items()} | {"playout_output_s": plan.output_s}


def _metrics_for(metrics: list[str], codec: Any, resampling: bool) -> list[str]:
    """The job's metrics, plus PESQ-NB where it applies: a narrowband (8 kHz) codec scored with PESQ-WB, when
    metrics may score resampled copies (PESQ-NB scores an 8 kHz copy of the reference)."""
    if resampling and codec.sample_rate_hz == 8000 and "pesq_wb" in metrics and "pesq_nb" not in metrics:
        return [*metrics, "pesq_nb"]
    return list(metrics)


def _at_rate(clip: Any, sample_rate_hz: int) -> Any:
    """``clip`` itself at its rate, else a resampled copy (soxr, very high quality)."""
    if clip.sample_rate_hz == sample_rate_hz:
        return clip
    from lossbench.audio import resample
    from lossbench.core import Clip

    return Clip(clip.id, resample(clip.samples, clip.sample_rate_hz, sample_rate_hz), sample_rate_hz,
                meta={**clip.meta, "resampled": True})


def _both_channels(clip: Any) -> Any:
    """A mono clip as a stereo pair of identical channels."""
    from lossbench.core import Clip

    return Clip(clip.id, np.stack([clip.samples, clip.samples], axis=1), clip.sample_rate_hz, meta=clip.meta)


def _back_to(audio: np.ndarray, from_hz: int, to_hz: int, n: int) -> np.ndarray:
    """Decoded audio at the reference's rate and length (unchanged when the rates agree)."""
    if from_hz == to_hz:
        return audio
    from lossbench.audio import resample

    y = resample(audio, from_hz, to_hz)[:n]
    return np.pad(y, [(0, n - y.shape[0])] + [(0, 0)] * (y.ndim - 1)) if y.shape[0] < n else y


def _decode_all(codec, stream, rec, concs: list[str]) -> dict[str, tuple[Any, float]]:
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
    out: dict[str, tuple[Any, float]] = {}
    for c in concs:
        t0 = time.perf_counter()
        try:
            out[c] = (codec.decode(stream, rec, c), time.perf_counter() - t0)
        except Exception as exc:
            out[c] = (exc, time.perf_counter() - t0)
    return out


def run_job(job: Job, skip: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
    """All rows of ``job`` not in ``skip`` (finished task keys), computed under the one set of numeric settings
    that every executor and ``lossbench rerun`` share (:func:`~lossbench.codecs.neural.threads.single_thread`)."""
    from lossbench.codecs.neural.threads import single_thread

    with single_thread():
        return _run_job(job, skip)


def _run_job(job: Job, skip: frozenset[str] | set[str]) -> list[dict[str, Any]]:
    todo = set(job.task_keys()) - set(skip)
    if not todo:
        return []
    from lossbench.core import PacketKind
    from lossbench.metrics import compute_metrics, windowed
    from lossbench.playout.emodel import burst_ratio, emodel_row, g113_key
    from lossbench.traces.stats import trace_stats

    try:
        codec = _codec(job.codec_spec)
        # the reference is the clip at its own rate; a codec at another rate gets a resampled copy and its output
        # is resampled back, so that a band limit counts (an 8 kHz codec scored against 48 kHz music)
        ref = job.clip.load(stereo=job.stereo)
        # channels: a stereo clip reaches a codec of one channel as its mean; a mono clip reaches a stereo codec
        # in both channels
        n_ch = getattr(codec, "channels", 1)  # a plug-in codec without the attribute codes one channel
        src = ref.mono() if n_ch == 1 else ref if ref.channels == 2 else _both_channels(ref)
        clip = _at_rate(src, codec.sample_rate_hz)
        sr = ref.sample_rate_hz
        metrics = _metrics_for(job.metrics, codec, job.metric_resampling)
        if not job.metric_resampling:  # checked once here, so compute_metrics below never resamples
            from lossbench.metrics import check_metric_rates

            check_metric_rates(metrics, sr)
    except LossbenchError as exc:
        return _error_rows(job, str(exc), todo)
    except Exception as exc:  # an unexpected failure still must not stop the sweep
        return _error_rows(job, f"{type(exc).__name__}: {exc}", todo)
    try:
        t0 = time.perf_counter()
        stream = codec.encode(clip)
        t_enc = time.perf_counter() - t0
    except Exception as exc:
        return _error_rows(job, f"encode failed: {type(exc).__name__}: {exc}", todo)
    dur = clip.duration_s
    fec_kbps = stream.meta.get("fec_kbps", 8.0 * stream.payload_bytes_of(PacketKind.REDUNDANCY) / dur / 1000.0)
    stream_cols = {
        "duration_s": dur,
        "bitrate_kbps": stream.bitrate_kbps,
        "payload_kbps": stream.payload_kbps,
        "header_kbps": stream.header_kbps,
        "fec_kbps": fec_kbps,
        "packets": stream.num_packets,
        "encode_rtf": t_enc / dur,
        "clip_resampled": clip is not ref,
        "codec_rate_hz": codec.sample_rate_hz,
        "score_rate_hz": sr,
        "clip_channels": ref.channels,
        "codec_channels": getattr(codec, "channels", 1),
    }
    try:
        stream_cols.update(facts(codec.name, stream.meta, _FED_COLUMNS))  # e.g. what the packets really carry
    except LossbenchError as exc:
        return _error_rows(job, str(exc), todo)
    audio_dir = Path(job.run_dir) / "audio"
    if job.keep_audio and job.keep_ref:
        from lossbench.audio import save_audio

        save_audio(audio_dir / f"ref__{safe_name(ref.id)}_{sr}.wav", ref.samples, sr)
    rows: list[dict[str, Any]] = []
    send = stream.send_times_s()
    algo_ms, packing_ms = _codec_delay_ms(codec, stream)
    g113 = g113_key(codec)
    for ch in job.channels:
        for seed in job.seeds:
            keys = {job.task_key(c, ch, seed) for c in job.concealments}
            if not keys & todo:
                continue
            try:
                t0 = time.perf_counter()
                rec = ch.build().transmit(stream, channel_rng(job.base_seed, ch.key, clip.id, seed),
                                          audio=clip.mono().samples)
                t_ch = time.perf_counter() - t0
            except Exception as exc:
                rows += [dict(_base_row(job, c, ch, seed), status="error", error=f"channel failed: {exc}")
                         for c in job.concealments if job.task_key(c, ch, seed) in todo]
                continue
            st = trace_stats(~rec.usable)
            ch_cols = {**_delay_columns(send, rec, algo_ms, packing_ms),
                "network_loss": rec.network_loss_rate,
                "late_rate": rec.late_rate,
                "effective_loss": rec.effective_loss_rate,
                "mean_burst": st.mean_burst,
                "longest_burst": st.longest_burst,
                "p_loss_given_loss": st.p_loss_given_loss,
                "channel_time_s": t_ch,
            }
            plan = rec.meta.get("playout_plan")
            ch_cols.update(_playout_columns(plan))
            concs = [c for c in job.concealments if job.task_key(c, ch, seed) in todo]
            burst_r = burst_ratio(st.mean_burst, st.loss_rate)
            decoded = _decode_all(codec, stream, rec, concs)
            scored: dict[bytes, dict] = {}  # identical audio (nothing lost) is scored once
            for conc in concs:
                row = {**_base_row(job, conc, ch, seed), **stream_cols, **ch_cols}
                try:
                    res, t_dec = decoded[conc]
                    if isinstance(res, Exception):
                        raise res
                    row.update(decode_rtf=t_dec / dur, frames_concealed=int(res.missing.sum()),
                               frames_recovered=int(res.recovered.sum()), corrupt_packets=res.corrupt_packets,
                               **facts(codec.name, res.info))
                    t0 = time.perf_counter()
                    heard = None  # a time-warping buffer: what the listener hears, apart from the aligned audio
                    if plan is not None and res.audio.ndim > 1:
                        raise ConfigError(f"playout {ch.playout!r} time-scales one channel; a stereo codec needs "
                                          "a fixed, adaptive or no playout buffer")
                    if plan is not None:
                        from lossbench.playout.plan import align, render

                        warped, rmap = render(res.audio, plan, codec.sample_rate_hz, return_map=True)
                        aligned = align(warped, plan, codec.sample_rate_hz, res.audio.size, rmap)
                        heard = _back_to(warped, codec.sample_rate_hz, sr, int(round(warped.size * sr
                                                                                      / codec.sample_rate_hz)))
                        audio = _back_to(aligned, codec.sample_rate_hz, sr, ref.num_samples)
                    else:
                        audio = _back_to(res.audio, codec.sample_rate_hz, sr, ref.num_samples)
                    digest = hashlib.sha1(audio.tobytes() + (b"" if heard is None else heard.tobytes())).digest()
                    mt: dict[str, float] = {}
                    if digest not in scored:
                        scored[digest] = compute_metrics(audio, ref.samples, sr, metrics, mt,
                                                         {"transcript": ref.meta.get("text"),
                                                          "language": ref.meta.get("language"),
                                                          "kind": ref.meta.get("kind")}, heard=heard)
                    row.update(scored[digest])
                    row.update(emodel_row(g113, conc, ch_cols["mouth_to_ear_ms"], ch_cols["effective_loss"],
                                          burst_r))
                    row["metrics_time_s"] = time.perf_counter() - t0
                    row["metric_times"] = json.dumps({k: round(v, 6) for k, v in mt.items()})
                    if ch.time_varying:
                        mname = "pesq_wb" if "pesq_wb" in job.metrics else job.metrics[0]
                        tt, vv = windowed(mname, audio, ref.samples, sr, 2.5, 0.25)
                        lost_t = (np.flatnonzero(~rec.usable) * stream.frame_duration_s).round(3).tolist()
                        row["timeseries"] = json.dumps({"metric": mname, "t": tt.round(3).tolist(),
                                                        "v": [None if np.isnan(x) else round(float(x), 4) for x in vv],
                                                        "lost_t": lost_t})
                    if job.keep_audio and seed == 0:
                        from lossbench.audio import save_audio

                        f = audio_dir / safe_name(f"{clip.id}__{job.codec_spec}__{conc}__{ch.key}")
                        row["audio_file"] = str(save_audio(f.with_name(f.name + ".wav"), audio if heard is None else heard,
                                                           sr).relative_to(job.run_dir))
                        # which frames (of frame_s each) the listener hears concealed: lost and late packets' frames
                        marks = {"frame_s": stream.frame_duration_s, "lost": [], "late": []}
                        for pk, arrived, late in zip(stream.packets, rec.arrived, rec.late):
                            if not arrived or late:
                                marks["lost" if not arrived else "late"] += list(pk.frames)
                        row["packet_marks"] = json.dumps(marks)
                        if plan is not None:  # a time-warping buffer's per-chunk action log, with the audio
                            row["playout_log"] = json.dumps(plan.log())
                except Exception as exc:
                    row.update(status="error", error=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc(limit=3))
                rows.append(row)
    return rows
