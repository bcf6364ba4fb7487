"""One live run: a real client through the relay, its audio aligned and scored, and the offline twin beside it.

``DIR/`` gets ``results.parquet`` (one live row per repeat, with a sweep's columns plus ``live_*``, ``client_*``
and ``twin_*`` columns, and the twin's own rows, ``live_role = "twin"``), ``received.wav`` (what the client played,
at its rate), ``aligned.wav`` (on the clip's timeline, as scored), ``sent.wav`` (the clip as sent), ``timing.csv``,
``capture.pcapng``, ``twin/`` (the twin's sweep) and ``spec.toml``; repeats after the first put theirs in
``DIR/repeat-N/``.

**The twin.** lossbench replays the run's ``timing.csv`` (each packet's loss and one-way delay as the relay
applied them) through its own model of the client's codec and receiver: Opus 1.5.2 with the client's bitrate, FEC
and PLC, behind the buffer that matches the client's (GStreamer: a fixed buffer of its jitter-buffer latency) and
behind the NetEq-style ``tsm`` buffer. Live minus twin is what the client's own receiver adds or loses on exactly
the network it saw.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.errors import ConfigError, LossbenchError
from lossbench.live.relay import LiveChannel, LiveError

#: the rates a live clip may have (every client resamples to its codec's rate; these are the rates the metrics
#: and the twin's Opus take)
CLIP_RATES = (8000, 16000, 24000, 32000, 48000)
DEFAULT_METRICS = ("pesq_wb", "stoi", "plcmos")


def read_clip(path: str | Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"live clip {str(p)!r} does not exist or is not a file")
    try:
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise ConfigError(f"live clip {p}: not readable as audio: {exc}") from None
    if int(sr) not in CLIP_RATES:
        raise ConfigError(f"live clip {p} is at {sr} Hz; live mode takes {', '.join(map(str, CLIP_RATES))} Hz "
                          f"(resample it, e.g. sox in.wav -r 16000 out.wav)")
    if x.shape[1] > 2:
        raise ConfigError(f"live clip {p} has {x.shape[1]} channels; live mode takes mono or stereo (mixed down)")
    dur = x.shape[0] / sr
    if not 1.0 <= dur <= max_seconds - 10:
        raise ConfigError(f"live clip {p} lasts {dur:.2f} s; live mode takes 1 s to {max_seconds - 10:g} s "
                          f"(the channel is drawn for {max_seconds:g} s: --max-seconds)")
    return x.mean(axis=1), int(sr)


def _resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    if from_hz == to_hz:
        return x
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_hz, to_hz)
    return resample_poly(x, to_hz // g, from_hz // g).astype(np.float32)


def _loss_param(spec: str) -> float:
    from lossbench.specs import split_spec

    try:
        _, params = split_spec(spec)
    except LossbenchError:
        return math.nan
    v = params.get("loss_rate", params.get("p"))
    return float(v) if isinstance(v, (int, float)) else 0.0 if spec == "none" else math.nan


def clip_first_packet(run: Any, base_ms: float, relay: Any, packet_ms: float) -> int:
    """The index of the packet that carried the clip's first sample: 0 where the sender started with the clip;
    where it sent a lead-in first (Chromium), found from the client's map of recorded positions to the RTP
    timestamps playing out (``run.rtp_map``) at the clip's start in the recording (``base_ms``), against the RTP
    timestamp of the first packet the relay saw. Good to about a packet (the map's granularity is 10 ms, and the
    output path's latency is not in it). A client that knows the index itself (``run.clip_first_index``) says
    so."""
    if run.clip_first_index is not None:
        return int(run.clip_first_index)
    if not run.rtp_map:
        return 0
    ts0 = relay.first_timestamp()
    if ts0 is None:
        return 0
    rate = run.sample_rate_hz
    m = np.asarray(run.rtp_map, float)
    pos = base_ms / 1000.0 * rate
    near = np.abs(m[:, 0] - pos) < 0.5 * rate
    use = m[near] if near.any() else m
    ticks = 48000.0 / rate  # WebRTC's Opus clock
    d = float(np.median(use[:, 1] - use[:, 0] * ticks))
    ts = int(round(pos * ticks + d)) % (1 << 32)
    return int(round(((ts - ts0) % (1 << 32)) / (48.0 * packet_ms)))


def run_twin(codec: str, concealment: str, playouts: list[str], clip_wav: Path, clip_id: str, timing: Path,
             metrics: list[str], out: Path) -> list[dict[str, Any]]:
    """The twin's rows: ``codec`` with ``concealment`` on ``timing`` behind each of ``playouts``."""
    import shutil

    import pandas as pd

    from lossbench.benchmarks.spec import ChannelEntry, CodecEntry, SweepSpec
    from lossbench.benchmarks.sweep import run_sweep

    if out.exists():  # a twin of an earlier run in the same folder must not be resumed as if it were this one's
        shutil.rmtree(out)
    corpus = out / "clip"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip_wav, corpus / f"{clip_id}.wav")
    spec = SweepSpec(codecs=[CodecEntry(codec, f"twin: {codec}", [concealment])],
                     channels=[ChannelEntry(trace=str(timing), label="twin", playout=p) for p in playouts],
                     name="live-twin", corpus=str(corpus), metrics=list(metrics), examples=0, workers=1)
    res = run_sweep(spec, out, progress=False)
    if res.results is None:
        raise LiveError(f"the twin's sweep in {out} gave no results")
    return list(pd.read_parquet(res.results).to_dict("records"))


def live_run(client: str, clip: str | Path, channel: LiveChannel, out: str | Path,
             metrics: list[str] | tuple[str, ...] = DEFAULT_METRICS, repeats: int = 1, twin: bool = True,
             lateness_limit_ms: float = 5.0, drops_limit: int = 0, log: Any = None) -> Path:
    """Run ``client`` on ``clip`` through ``channel`` ``repeats`` times; returns ``out/results.parquet``."""
    import pandas as pd
    import soundfile as sf

    from lossbench.errors import writing
    from lossbench.files import atomic
    from lossbench.live.align import align
    from lossbench.live.clients import RelaySettings, make_client
    from lossbench.metrics import check_metric_names, compute_metrics

    say = log or (lambda _msg: None)
    if not 1 <= int(repeats) <= 100:
        raise ConfigError(f"repeats must lie in 1..100, got {repeats!r}")
    metrics = list(check_metric_names(list(metrics)))
    cl = make_client(client)
    cl.check()
    ref, sr = read_clip(clip, channel.max_seconds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sent = out / "sent.wav"
    sf.write(str(sent), ref, sr, subtype="PCM_16")
    clip_id = Path(clip).stem
    dur = ref.size / sr
    rows: list[dict[str, Any]] = []
    for r in range(int(repeats)):
        d = out if r == 0 else out / f"repeat-{r}"
        d.mkdir(parents=True, exist_ok=True)
        relays = RelaySettings(channel, lateness_limit_ms, drops_limit)
        say(f"live run {r + 1}/{repeats}: {cl.name} on {clip_id} ({dur:.1f} s) through {channel.label}")
        t0 = time.monotonic()
        run = cl.run(sent, relays, d, dur)
        wall = time.monotonic() - t0
        if r == 0:  # after the first run: a client's twin may depend on what the run settled (pjsua's ptime)
            t_codec, t_conc, t_match = cl.twin()
            playouts = [t_match] + (["tsm"] if t_match != "tsm" else [])
        if not relays.used:
            raise LiveError(f"live client {cl.name}: ran no relay")
        relay = relays.used[-1]
        relay.write_timing(d / "timing.csv")
        relay.write_pcapng(d / "capture.pcapng")
        sf.write(str(d / "received.wav"), run.audio, run.sample_rate_hz, subtype="PCM_16")
        audio = _resample(run.audio, run.sample_rate_hz, sr)
        offset = None if run.offset_samples is None else int(round(run.offset_samples * sr / run.sample_rate_hz))
        al = align(audio, ref, sr, offset, search_s=run.search_s)
        sf.write(str(d / "aligned.wav"), al.audio, sr, subtype="PCM_16")
        # the packets that carried the clip: what the clip-level loss and the twin see
        tt = relay.timing_trace()
        k0 = clip_first_packet(run, al.lag_ms - al.offset_ms, relay, channel.packet_ms)
        if not 0 <= k0 < len(tt):
            raise LiveError(f"live client {cl.name}: the clip's first packet came out as {k0}, outside the "
                            f"{len(tt)} packets the relay saw")
        n_clip = int(math.ceil(dur * 1000 / channel.packet_ms))
        twin_timing = d / "timing.csv"
        if k0:
            from lossbench.traces.timing import TimingTrace

            twin_timing = d / "twin_timing.csv"
            twin_timing.write_bytes(TimingTrace(tt.send_s[k0:], tt.arrival_s[k0:], dict(tt.meta)).to_csv())
        times: dict[str, float] = {}
        tm = time.perf_counter()
        vals = compute_metrics(al.audio.astype(np.float32), ref, sr, metrics, times)
        row: dict[str, Any] = {
            "task": f"{clip_id}|live:{client}|{channel.label}|{channel.seed}|{r}", "clip": clip_id,
            "codec": f"live:{cl.name}", "codec_config": client, "system": getattr(cl, "label", client),
            "concealment": "client", "channel": channel.loss.split(":")[0], "channel_key": channel.label,
            "channel_kind": "live", "loss_param": _loss_param(channel.loss), "delay": channel.delay,
            "jitter": channel.jitter, "playout": "live", "seed": channel.seed, "status": "ok", "error": None,
            "duration_s": dur, "score_rate_hz": sr, "live_role": "live", "live_repeat": r, "live_wall_s": wall,
            "metrics_time_s": time.perf_counter() - tm, **relay.summary(), **run.columns, **al.columns(), **vals}
        row["live_loss_stream"] = row["live_loss"]
        row["live_loss"] = float(tt.lost[k0:k0 + n_clip].mean())
        row["live_clip_first_packet"] = k0
        clip_pkts = [x for x in relay.media(0) if k0 <= x.index < k0 + n_clip]
        if clip_pkts:  # on the wire: the UDP payloads plus 28 bytes of IPv4 and UDP headers
            row["bitrate_kbps"] = sum(x.size + 28 for x in clip_pkts) * 8 / (len(clip_pkts) * channel.packet_ms)
        row["effective_loss"] = row["live_loss"]
        if twin:
            say(f"  twin: {t_codec} / {t_conc} on timing.csv behind {', '.join(playouts)}")
            trows = run_twin(t_codec, t_conc, playouts, sent, clip_id, twin_timing, metrics, d / "twin")
            for tr in trows:
                own = {k: tr.get(k) for k in ("channel", "channel_key", "loss_param")}
                tr.update(live_role="twin", live_repeat=r, twin_channel_key=own["channel_key"],
                          twin_playout=tr.get("playout"), playout="live", channel=row["channel"], channel_key=row["channel_key"],
                          loss_param=row["loss_param"], seed=channel.seed, clip=clip_id,
                          system=f"twin: {t_codec} + {tr.get('playout')}")
                rows.append(tr)
            match = [tr for tr in trows if tr.get("twin_playout") == t_match]
            if match and match[0].get("status") == "ok":
                for m in metrics:
                    for col in [c for c in match[0] if c == m or c.startswith(m + "_")]:
                        if isinstance(match[0][col], (int, float)):
                            row[f"twin_{col}"] = match[0][col]
                row["twin_system"] = match[0]["system"]
            elif match:
                row["twin_error"] = match[0].get("error")
        rows.append(row)
    live_rows = [x for x in rows if x.get("live_role") == "live"]
    for m in metrics:
        v = np.array([x[m] for x in live_rows if isinstance(x.get(m), (int, float))], float)
        v = v[np.isfinite(v)]
        for x in live_rows:
            x[f"live_spread_{m}"] = float(v.max() - v.min()) if v.size else math.nan
            x[f"live_std_{m}"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
    path = out / "results.parquet"
    with writing(path), atomic(path) as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
    _write_spec(out, client, clip, channel, metrics, repeats, twin)
    return path


def _write_spec(out: Path, client: str, clip: str | Path, channel: LiveChannel, metrics: list[str], repeats: int,
                twin: bool) -> None:
    import tomli_w

    from lossbench.files import write_atomic

    d = {"name": "live", "client": client, "clip": str(clip), "channel": channel.loss, "delay": channel.delay or "",
         "jitter": channel.jitter or "none", "seed": channel.seed, "packet_ms": channel.packet_ms, "repeats": repeats,
         "twin": twin, "metrics": list(metrics)}
    write_atomic(out / "spec.toml", f"# lossbench live run: client {client}\n" + tomli_w.dumps(d))


__all__ = ["LiveError", "live_run", "read_clip", "run_twin"]
