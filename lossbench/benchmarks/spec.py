"""Sweep specifications: from CLI flags or a TOML file, validated.

A sweep is the product clips x codec configs x concealments x channel
configs x seeds. TOML form (every key optional but ``codec`` and ``channel``)::

    name = "my-sweep"
    corpus = "default"            # or "fullband" (48 kHz music and speech), or a directory (wav/flac/ogg, LibriSpeech layout)
    clip_where = {kind = "music"} # optional: only the clips whose manifest facts match
    min_clip_s = 20               # optional: only the clips at least this long (s), e.g. for time-varying channels
    clips = 12                    # evenly spaced over the corpus; omit for all
    transcripts = "texts.tsv"     # optional: '<clip id><TAB><text>' lines, the WER metric's reference texts
    metric_resampling = true      # a metric at a fixed rate scores a resampled copy (false: an error row)
    stereo = false                # true: two-channel clips stay stereo for codecs that code two channels
    seeds = 1
    seed = 0                      # base seed of every random choice
    metrics = ["pesq_wb", "stoi", "plcmos"]
    concealments = ["native", "waveform-substitution"]   # "native": each codec's own
    examples = 1                  # clips whose decoded audio is kept for the report
    packet_ms = 20                # optional: every codec must send packets of this much audio (equal footing)

    [[codec]]
    spec = "opus:bitrate=24000,fec=1"
    label = "Opus 24k FEC"        # optional
    concealments = ["opus-fec"]   # optional, overrides the global list for this codec

    [[channel]]
    model = "bernoulli"
    loss = [0.0, 0.1, 0.2]        # one channel per value (the model's loss_rate)
    delay = "40ms"                # optional network: delay, jitter, playout
    jitter = "normal:10ms"        # each of the three may be a list: one more axis of the sweep
    playout = ["fixed:40ms", "fixed:80ms", "adaptive", "tsm", "speex"]

    [[channel]]
    model = "markov3"             # extra keys are model parameters

    [[channel]]
    trace = "lossbench/traces/library/wlan"   # a file or a directory of traces ("library:wlan": a bundled set)
    traces = 10                               # optional: the directory's first 10 files
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError, choices

NET_KEYS = ("delay", "jitter", "playout")
TOP_KEYS = ("name", "corpus", "clips", "seeds", "seed", "metrics", "concealments", "examples", "codec", "channel",
            "workers", "scheduler", "out", "metric_resampling", "clip_where", "transcripts", "stereo", "packet_ms",
            "min_clip_s")


@dataclass
class CodecEntry:
    spec: str
    label: str | None = None
    concealments: list[str] | None = None


@dataclass
class ChannelEntry:
    """One [[channel]] block: a loss model (optionally swept) or traces, plus network settings."""

    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    loss: list[float] | None = None
    trace: str | None = None
    traces: int | None = None  # with a trace directory: use its first N files (sorted by name)
    label: str | None = None
    delay: str | None = None
    jitter: str | None = None
    playout: str | None = None


@dataclass
class SweepSpec:
    codecs: list[CodecEntry]
    channels: list[ChannelEntry]
    name: str = "sweep"
    corpus: str | None = None
    clips: int | None = None
    seeds: int = 1
    seed: int = 0
    metrics: list[str] = field(default_factory=lambda: ["pesq_wb", "stoi", "si_snr", "mfcc_dist", "plcmos"])
    concealments: list[str] = field(default_factory=lambda: ["native"])
    examples: int = 1
    workers: int | None = None
    scheduler: str | None = None
    out: str | None = None
    #: a metric at a fixed rate (PESQ-WB at 16 kHz) scores a resampled copy of audio at another rate (the row's
    #: ``metrics_resampled`` names it); false: such a pair is an error row instead
    metric_resampling: bool = True
    #: load two-channel clips as stereo: a codec that codes two channels (opus:channels=2) gets them as they are,
    #: every other codec their mean; metrics score the mean of both sides (ViSQOL itself mixes stereo to mono)
    stereo: bool = False
    #: keep only the clips whose manifest facts equal these (``{kind = "music"}``), before ``clips`` picks
    clip_where: dict[str, Any] = field(default_factory=dict)
    #: a transcript file (``<clip id><TAB><text>`` per line) whose texts the WER metric scores against
    transcripts: str | None = None
    #: the audio every codec's packets must carry, in ms (None: any): a loss rate removes that much audio per
    #: lost packet, so systems compared at one rate are compared on equal footing; the planner refuses a codec
    #: whose packets differ
    packet_ms: float | None = None
    #: keep only the clips at least this long, in s (from the files' headers), before ``clips`` picks
    min_clip_s: float | None = None

    def validate(self) -> SweepSpec:
        if not self.codecs:
            raise ConfigError("a sweep needs at least one codec (--codec or [[codec]])")
        if not self.channels:
            raise ConfigError("a sweep needs at least one channel (--channel, --trace or [[channel]])")
        for k in ("seeds",):
            v = getattr(self, k)
            if int(v) != v or v < 1:
                raise ConfigError(f"{k} must be an integer >= 1, got {v!r}")
        if self.clips is not None and (int(self.clips) != self.clips or self.clips < 1):
            raise ConfigError(f"clips must be an integer >= 1, got {self.clips!r}")
        if self.workers is not None and (int(self.workers) != self.workers or self.workers < 1):
            raise ConfigError(f"workers must be an integer >= 1, got {self.workers!r}")
        if int(self.examples) != self.examples or self.examples < 0:
            raise ConfigError(f"examples must be an integer >= 0, got {self.examples!r}")
        if self.packet_ms is not None and (isinstance(self.packet_ms, bool) or not isinstance(self.packet_ms, (int, float))
                                           or not 0 < self.packet_ms < 10_000):
            raise ConfigError(f"packet_ms must be a number of milliseconds > 0 (the audio per packet, e.g. 20), "
                              f"got {self.packet_ms!r}")
        if self.min_clip_s is not None and (isinstance(self.min_clip_s, bool)
                                            or not isinstance(self.min_clip_s, (int, float)) or self.min_clip_s <= 0):
            raise ConfigError(f"min_clip_s must be a number of seconds > 0 (the shortest clip kept), "
                              f"got {self.min_clip_s!r}")
        from lossbench.metrics import check_metric_names

        check_metric_names(self.metrics)
        for ch in self.channels:
            if (ch.model is None) == (ch.trace is None):
                raise ConfigError("each channel needs exactly one of 'model' or 'trace'")
            if ch.loss is not None:
                if ch.model is None:
                    raise ConfigError("'loss' sweeps a model's loss_rate; a trace channel cannot take it")
                for v in ch.loss:
                    if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                        raise ConfigError(f"channel {ch.model!r}: loss values must be numbers in [0, 1], got {v!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if k in ("codecs", "channels"):
                continue
            if (k == "clip_where" and not v) or (k == "metric_resampling" and v) or (k == "stereo" and not v):
                continue  # the defaults: a spec that does not use them reads as before they existed
            if v is not None:
                d[k] = v
        d["codec"] = [{k: v for k, v in asdict(c).items() if v is not None} for c in self.codecs]
        chans = []
        for c in self.channels:
            e = {k: v for k, v in asdict(c).items() if v is not None and k != "params"}
            e.update(c.params)
            chans.append(e)
        d["channel"] = chans
        return d


def _bad_key(where: str, key: str, allowed: tuple[str, ...] | list[str]) -> ConfigError:
    return ConfigError(f"{where}: unknown key {key!r}; valid keys: {choices(allowed)}")


def spec_from_dict(d: dict[str, Any], where: str = "spec") -> SweepSpec:
    d = {k: v for k, v in d.items() if v is not None}
    for k in d:
        if k not in TOP_KEYS:
            raise _bad_key(where, k, TOP_KEYS)
    codecs = []
    for i, c in enumerate(_as_list(d.get("codec", []), f"{where}: codec")):
        if isinstance(c, str):
            c = {"spec": c}
        if not isinstance(c, dict) or "spec" not in c:
            raise ConfigError(f"{where}: codec[{i}] needs a 'spec' string like \"opus:bitrate=16000\"")
        for k in c:
            if k not in ("spec", "label", "concealments"):
                raise _bad_key(f"{where}: codec[{i}]", k, ("spec", "label", "concealments"))
        concs = _opt_str_list(c.get("concealments"), f"codec[{i}].concealments")
        codecs.append(CodecEntry(str(c["spec"]), c.get("label"), concs))
    chans = []
    for i, c in enumerate(_as_list(d.get("channel", []), f"{where}: channel")):
        if isinstance(c, str):
            c = {"model": c}
        if not isinstance(c, dict):
            raise ConfigError(f"{where}: channel[{i}] must be a table")
        c = dict(c)
        e = ChannelEntry(
            model=c.pop("model", None), trace=c.pop("trace", None), label=c.pop("label", None),
            delay=c.pop("delay", None), jitter=c.pop("jitter", None), playout=c.pop("playout", None),
        )
        loss = c.pop("loss", None)
        if loss is not None:
            e.loss = [float(x) for x in _as_list(loss, f"{where}: channel[{i}].loss")]
        if e.trace is not None and "traces" in c:
            n = c.pop("traces")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"{where}: channel[{i}].traces must be an integer >= 1, got {n!r}")
            e.traces = n
        if e.trace is not None and c:
            raise _bad_key(f"{where}: channel[{i}] (trace)", next(iter(c)), ("trace", "traces", "label", *NET_KEYS))
        e.params = c
        # a list of delays, jitters or playout buffers is one more axis: one channel entry per combination
        axes = [(k, _as_list(getattr(e, k), f"{where}: channel[{i}].{k}")) for k in NET_KEYS
                if isinstance(getattr(e, k), list)]
        for k, vals in axes:
            if not vals or not all(isinstance(v, str) for v in vals):
                raise ConfigError(f"{where}: channel[{i}].{k} must be a string or a non-empty list of strings, "
                                  f"got {getattr(e, k)!r}")
        for k in NET_KEYS:
            v = getattr(e, k)
            if v is not None and not isinstance(v, (str, list)):
                raise ConfigError(f"{where}: channel[{i}].{k} must be a string or a list of strings, got {v!r}")
        combos: list[dict[str, Any]] = [{}]
        for k, vals in axes:
            combos = [{**c, k: v} for c in combos for v in vals]
        for combo in combos:
            chans.append(replace(e, **combo) if combo else e)
    kw: dict[str, Any] = {}
    for k in ("name", "corpus", "scheduler", "out", "transcripts"):
        if k in d:
            kw[k] = str(d[k])
    for k in ("clips", "seeds", "seed", "examples", "workers"):
        if k in d:
            if not isinstance(d[k], int):
                raise ConfigError(f"{where}: {k} must be an integer, got {d[k]!r}")
            kw[k] = d[k]
    for k in ("packet_ms", "min_clip_s"):
        if k in d:
            kw[k] = d[k]
    if "clip_where" in d:
        w = d["clip_where"]
        if not isinstance(w, dict) or not all(isinstance(v, (str, int, float, bool)) for v in w.values()):
            raise ConfigError(f"{where}: clip_where must be a table of manifest facts, like {{kind = \"music\"}}, "
                              f"got {w!r}")
        kw["clip_where"] = dict(w)
    if "stereo" in d:
        if not isinstance(d["stereo"], bool):
            raise ConfigError(f"{where}: stereo must be true or false, got {d['stereo']!r}")
        kw["stereo"] = d["stereo"]
    if "metric_resampling" in d:
        if not isinstance(d["metric_resampling"], bool):
            raise ConfigError(f"{where}: metric_resampling must be true or false, got {d['metric_resampling']!r}")
        kw["metric_resampling"] = d["metric_resampling"]
    if "metrics" in d:
        kw["metrics"] = _opt_str_list(d["metrics"], "metrics")
    if "concealments" in d:
        kw["concealments"] = _opt_str_list(d["concealments"], "concealments")
    return SweepSpec(codecs, chans, **kw).validate()


def _as_list(v: Any, where: str) -> list[Any]:
    if isinstance(v, list):
        return v
    if isinstance(v, (str, dict, int, float)):
        return [v]
    raise ConfigError(f"{where}: expected a list, got {v!r}")


def _opt_str_list(v: Any, where: str) -> list[str] | None:
    if v is None:
        return None
    v = _as_list(v, where)
    if not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: expected a list of names, got {v!r}")
    return [str(x) for x in v]


def load_spec(path: str | Path) -> SweepSpec:
    from lossbench.files import read_toml

    p = Path(path)
    d = read_toml(p, "spec file")
    spec = spec_from_dict(d, where=str(p))
    if spec.name == "sweep":
        spec.name = p.stem
    return spec


def channel_entries_from_cli(channels: list[str], loss: list[float] | None, traces: list[str],
                             net: dict[str, Any]) -> list[ChannelEntry]:
    """``--channel`` / ``--loss`` / ``--trace`` flags to channel entries.

    ``--loss`` sweeps the loss_rate of every ``--channel`` given without
    parameters whose model builds from a loss rate alone (``netsim.spec.rate_models``: bernoulli, gilbert,
    gilbert-elliott, markov3, lossgen, ...); other channels appear once with their own parameters.
    """
    from lossbench.netsim.spec import LOSS_MODELS, rate_models
    from lossbench.specs import split_spec

    sweepable = rate_models()

    out = []
    for c in channels:
        name, params = split_spec(c)
        e = ChannelEntry(model=name, params=params, **net)
        if loss is not None and not params and name in LOSS_MODELS and LOSS_MODELS.canonical(name) in sweepable:
            e.loss = list(loss)
        out.append(e)
    for t in traces:
        out.append(ChannelEntry(trace=t, **net))
    if loss is not None and not any(e.loss for e in out):
        raise ConfigError("--loss was given but no --channel takes it; sweepable models without parameters: "
                          + ", ".join(sweepable))
    return out
