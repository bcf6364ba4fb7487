"""The planner: a validated spec -> jobs of tasks.

A *task* is one row of the result table: (clip, codec config, concealment,
channel instance, seed). A *job* groups the tasks of one (clip, codec
config), so each clip is encoded once per codec config, each (stream,
channel, seed) is transmitted once, and each reception is decoded once per
concealment. Everything that can be wrong with a spec (unknown codec, bad
parameter, unsupported codec x concealment pair, missing corpus, unreadable
trace, unknown metric) is found here, before anything runs.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.benchmarks.spec import ChannelEntry, SweepSpec
from lossbench.corpus import ClipRef, scan_corpus
from lossbench.errors import ConfigError, LossbenchError, choices
from lossbench.extras import MissingExtra

#: channel instances per job at most: a (clip, codec) with more is split (each part encodes the clip again,
#: which costs far less than the decodes and scores of its channels), so that two workers stay busy to the end
JOB_CHANNELS = 8
#: tasks per job at most: a (clip, codec) with more is split over its seeds too (each part encodes the clip
#: again), so that a sweep of one clip and many seeds still gives every worker jobs to run
JOB_TASKS = 240
#: how much more a task of a codec with trained weights costs than a classic codec's, for job ordering
NEURAL_JOB_WEIGHT = 3
#: the playout buffer of a channel that names none (README, "The receiver clock"): every row keeps to a receiver
#: clock, so no row has an infinite deadline. 60 ms is three 20 ms packets: time for the repairs that ride one
#: packet later (Opus LBRR, RED, Glaris's copies of z) and for SoundSpring-S's next block (60 ms later), with no
#: network delay; FixedPlayout's own default
DEFAULT_PLAYOUT = "fixed:60ms"


@dataclass(frozen=True)
class ChannelInstance:
    """One concrete channel condition of a sweep."""

    key: str
    label: str
    loss_param: float
    #: what kind of channel: the loss model's registered name (bernoulli, markov3, lossgen, schedule, ...) or trace
    kind: str = "trace"
    model_spec: str | None = None
    trace_file: str | None = None
    delay: str | None = None
    jitter: str | None = None
    playout: str | None = None
    time_varying: bool = False
    #: the key without the playout buffer: what the channel's random draws are seeded from, so that every buffer
    #: setting of one network meets the same losses and delays (its comparisons are paired)
    net_key: str = ""

    @property
    def rng_key(self) -> str:
        return self.net_key or self.key

    def build(self):
        """The :class:`~lossbench.netsim.Channel` (built in the worker)."""
        from lossbench.netsim import Channel, Link, TraceReplay, make_loss_model
        from lossbench.netsim.spec import parse_jitter, parse_playout, parse_seconds
        from lossbench.traces.formats import read_trace

        tr = read_trace(self.trace_file) if self.trace_file else None
        timing = tr.timing if tr is not None else None  # a timing trace replays its delays too
        model = None if timing is not None else TraceReplay(tr) if tr is not None else make_loss_model(self.model_spec)
        link = Link(model, parse_seconds(self.delay) if self.delay else 0.0, parse_jitter(self.jitter), timing=timing)
        return Channel((link,), playout=parse_playout(self.playout))


@dataclass
class Job:
    clip: ClipRef
    clip_index: int
    codec_spec: str
    codec_label: str
    codec_name: str  # the codec's registered name (the ``codec`` column)
    concealments: list[str]
    channels: list[ChannelInstance]
    seeds: list[int]
    base_seed: int
    metrics: list[str]
    keep_audio: bool
    run_dir: str
    keep_ref: bool = True  # write the clip's reference audio (the first job of a clip and codec does)
    metric_resampling: bool = True  # see SweepSpec.metric_resampling
    stereo: bool = False  # see SweepSpec.stereo

    def task_key(self, concealment: str, ch: ChannelInstance, seed: int) -> str:
        return f"{self.clip.id}|{self.codec_spec}|{concealment}|{ch.key}|{seed}"

    def task_keys(self) -> list[str]:
        return [self.task_key(c, ch, s) for ch in self.channels for s in self.seeds for c in self.concealments]


@dataclass
class Plan:
    spec: SweepSpec
    jobs: list[Job]
    clips: list[ClipRef]
    channels: list[ChannelInstance]
    skipped_pairs: list[tuple[str, str]] = field(default_factory=list)
    models: dict[str, dict[str, str]] = field(default_factory=dict)  # codec spec -> {role: sha256[:16] of the file}

    @property
    def num_tasks(self) -> int:
        return sum(len(j.task_keys()) for j in self.jobs)


def channel_rng(base_seed: int, ch_key: str, clip_id: str, seed: int) -> np.random.Generator:
    """The generator of one (channel, clip, seed): codecs and concealments see the same draws."""
    return np.random.default_rng([int(base_seed), zlib.crc32(ch_key.encode()), zlib.crc32(clip_id.encode()), int(seed)])


def select_clips(refs: list[ClipRef], n: int | None) -> list[ClipRef]:
    """``n`` clips evenly spaced over the corpus (all when None)."""
    if n is None or n >= len(refs):
        return refs
    idx = sorted(set(np.linspace(0, len(refs) - 1, n).round().astype(int).tolist()))
    return [refs[i] for i in idx]


def _net_suffix(e: ChannelEntry, playout: bool = True) -> str:
    parts = [f"{k}={getattr(e, k)}" for k in ("delay", "jitter", "playout") if getattr(e, k) and (playout or k != "playout")]
    return ("|" + ",".join(parts)) if parts else ""


def _with_playout(e: ChannelEntry) -> ChannelEntry:
    """``e`` with its playout buffer: the one it names, else :data:`DEFAULT_PLAYOUT`; ``none`` is refused."""
    if e.playout is None:
        return replace(e, playout=DEFAULT_PLAYOUT)
    if str(e.playout).strip().lower() in ("", "none"):
        raise ConfigError(f"playout {e.playout!r}: every sweep row keeps to a receiver clock, so a channel needs a "
                          f"playout buffer; allowed: 'fixed:<delay>' ('fixed:0ms' plays each packet when it "
                          f"arrives), 'adaptive', 'tsm', 'speex', or nothing for the default {DEFAULT_PLAYOUT!r}")
    return e


def expand_channels(entries: list[ChannelEntry]) -> list[ChannelInstance]:
    from lossbench.netsim import Schedule, make_loss_model
    from lossbench.specs import split_spec
    from lossbench.traces.formats import EXTENSIONS, read_trace

    out: list[ChannelInstance] = []
    net = lambda e: {"delay": e.delay, "jitter": e.jitter, "playout": e.playout}  # noqa: E731  (a one-line helper)
    for e in map(_with_playout, entries):
        if e.trace is not None:
            p = Path(e.trace)
            if e.trace.startswith("library:"):  # a bundled trace set, wherever lossbench is installed
                from lossbench.traces.library import LIBRARY_DIR, library_sets

                name = e.trace.split(":", 1)[1]
                if name not in library_sets():
                    raise ConfigError(f"unknown bundled trace set {name!r}; valid: {', '.join(library_sets())}")
                p = LIBRARY_DIR / name
            if not p.exists():
                raise ConfigError(f"trace path {str(p)!r} does not exist")
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS) if p.is_dir() else [p]
            if not files:
                raise ConfigError(f"trace directory {str(p)!r} holds no trace files ({', '.join(sorted(EXTENSIONS))})")
            files = files[: e.traces] if e.traces else files
            label = e.label or (p.name if p.is_dir() else p.stem)
            for f in files:
                tr = read_trace(f)  # raises a TraceFormatError naming the file and line
                out.append(ChannelInstance(f"trace:{f}{_net_suffix(e)}", label, tr.loss_rate, "trace", trace_file=str(f),
                                           net_key=f"trace:{f}{_net_suffix(e, playout=False)}", **net(e)))
            continue
        assert e.model is not None
        params = dict(e.params)
        values: list[float | None] = list(e.loss) if e.loss else [None]
        for v in values:
            p2 = dict(params)
            if v is not None:
                p2["loss_rate"] = float(v)
            spec = e.model + (":" + ",".join(f"{k}={p2[k]}" for k in p2) if p2 else "")
            name, _ = split_spec(spec)
            model = make_loss_model(spec)
            st = model.stats()
            loss = float(v) if v is not None else (st.loss_rate if st else float("nan"))
            label = e.label or name.lower()
            out.append(ChannelInstance(spec + _net_suffix(e), label, loss, model.name, model_spec=spec,
                                       time_varying=isinstance(model, Schedule) or model.name == "nr",
                                       net_key=spec + _net_suffix(e, playout=False), **net(e)))
    keys = [c.key for c in out]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ConfigError(f"channel {sorted(dup)[0]!r} appears twice in the sweep")
    return out


def plan_sweep(spec: SweepSpec, run_dir: str | Path) -> Plan:
    from lossbench.codecs import make_codec
    from lossbench.concealment import CONCEALMENTS
    from lossbench.concealment.waveform import is_waveform

    spec.validate()
    refs = scan_corpus(spec.corpus)
    if spec.transcripts:
        from lossbench.corpus import with_transcripts

        refs = with_transcripts(refs, spec.transcripts)
    if spec.clip_where:
        kept = [r for r in refs if all(r.meta.get(k) == v for k, v in spec.clip_where.items())]
        if not kept:
            facts = sorted({k for r in refs for k in r.meta})
            raise ConfigError(f"clip_where {spec.clip_where!r} keeps none of the {len(refs)} clips of corpus "
                              f"{spec.corpus or 'default'!r}; their facts: {', '.join(facts) or 'none'}")
        refs = kept
    if spec.min_clip_s is not None:
        refs = _long_clips(refs, float(spec.min_clip_s), spec.corpus)
    clips = select_clips(refs, spec.clips)
    channels = expand_channels(spec.channels)
    from lossbench.netsim.network import FixedPlayout
    from lossbench.netsim.spec import parse_jitter, parse_playout, parse_seconds

    shortest: tuple[float, str] | None = None
    for delay, jitter, playout in sorted({(c.delay or "", c.jitter or "", c.playout or "") for c in channels}):
        # network settings are checked here, once per distinct combination, not mid-run
        if delay:
            parse_seconds(delay)
        parse_jitter(jitter or None)
        pl = parse_playout(playout or None)
        if isinstance(pl, FixedPlayout):
            shortest = shortest or _shortest_clip(clips)
            if shortest is not None and pl.delay_s >= shortest[0]:
                raise ConfigError(f"playout {playout!r}: a buffer of {pl.delay_s:g} s is as long as clip {shortest[1]!r} "
                                  f"({shortest[0]:.2f} s, the shortest of the sweep), so nothing of it would play in "
                                  f"time; allowed: 0 s up to less than {shortest[0]:.2f} s")
    codecs: list[tuple[str, str, str, list[str]]] = []
    skipped: list[tuple[str, str]] = []
    all_names: set[str] = set(CONCEALMENTS.names())
    built = []
    models: dict[str, dict[str, str]] = {}
    for ce in spec.codecs:
        try:
            cod = make_codec(ce.spec)
        except MissingExtra:
            raise  # names the codec and the extra already
        except LossbenchError as exc:
            raise ConfigError(f"codec {ce.spec!r}: {exc}") from None
        if spec.packet_ms is not None and abs(1000.0 * cod.packet_duration_s - spec.packet_ms) > 1e-6:
            raise ConfigError(f"codec {ce.spec!r} sends packets of {1000.0 * cod.packet_duration_s:g} ms, but the sweep "
                              f"compares at packet_ms = {spec.packet_ms:g}: give it packets of {spec.packet_ms:g} ms "
                              f"(frames_per_packet=N for a frame codec; stride/slices for soundspring) or leave "
                              f"packet_ms out")
        built.append((ce, cod))
        all_names |= set(cod.native_concealments)
    for name in spec.concealments:
        if name != "native" and name not in all_names and not is_waveform(name):
            raise ConfigError(f"unknown concealment {name!r}; valid for this sweep: {choices(all_names | {'native'})}")
    for ce, cod in built:
        if ce.concealments is not None:
            names = []
            for n in ce.concealments:
                if n == "native":
                    names += list(cod.native_concealments)
                    continue
                cod.check_concealment(n)  # strict: the user named this pair
                names.append(n)
        else:
            names = []
            for n in spec.concealments:
                if n == "native":
                    names += list(cod.native_concealments)
                elif n in cod.concealments:
                    names.append(n)
                else:
                    skipped.append((ce.spec, n))
        names = list(dict.fromkeys(names))
        if not names:
            raise ConfigError(f"codec {ce.spec!r} gets no concealment from {spec.concealments}; "
                              f"valid for it: {choices(cod.concealments)}")
        if not type(cod).__module__.startswith("lossbench."):  # a plug-in: probed for the receiver clock's rule
            _check_clock(cod, names, clips)
        codecs.append((cod.describe(), ce.label or cod.describe(), cod.name, names))
        if files := cod.model_files():
            models[cod.describe()] = {role: file_hash(path) for role, path in files.items()}
    jobs = [
        Job(clip=c, clip_index=i, codec_spec=cs, codec_label=cl, codec_name=cn, concealments=names,
            channels=channels[k : k + JOB_CHANNELS],
            seeds=seeds, base_seed=spec.seed, metrics=list(spec.metrics),
            keep_audio=i < spec.examples, run_dir=str(run_dir), keep_ref=k == 0 and seeds[0] == 0,
            metric_resampling=spec.metric_resampling, stereo=spec.stereo)
        for i, c in enumerate(clips)
        for cs, cl, cn, names in codecs
        for k in range(0, len(channels), JOB_CHANNELS)
        for seeds in seed_chunks(spec.seeds, len(names) * len(channels[k : k + JOB_CHANNELS]))
    ]
    # longest first (neural codecs cost several times a classic codec per task), so that no worker is left
    # with a long job while the others idle at the end of a sweep
    jobs.sort(key=lambda j: -len(j.task_keys()) * (NEURAL_JOB_WEIGHT if j.codec_spec in models else 1))
    return Plan(spec, jobs, clips, channels, skipped, models)


def _check_clock(cod: Any, concealments: list[str], clips: list[ClipRef]) -> None:
    """A ConfigError naming the plug-in codec and concealment whose decode uses packets that arrive after a frame's
    playout time (:func:`~lossbench.codecs.causality.clock_violation`, on 3 s of the sweep's first clip)."""
    from lossbench.codecs.causality import clock_violation
    from lossbench.core import Clip

    if not clips:
        return
    c = clips[0].load(cod.sample_rate_hz)
    x = c.mono().samples[: 3 * cod.sample_rate_hz]
    probe = Clip(c.id, x if cod.channels == 1 else np.stack([x, x], axis=1), c.sample_rate_hz, c.meta)
    for conc in concealments:
        why = clock_violation(cod, conc, probe)
        if why is not None:
            raise ConfigError(f"codec {cod.describe()!r} with concealment {conc!r} does not keep to the receiver clock "
                              f"(a frame may use only the packets that arrived by its playout time): {why}. It would "
                              f"be scored with packets a real receiver could not have used in time, so it is refused")


def _long_clips(refs: list[ClipRef], min_s: float, corpus: str | None) -> list[ClipRef]:
    """The clips at least ``min_s`` long, by their files' headers (a clip whose header cannot be read is kept: its
    own error comes as rows)."""
    kept, longest = [], 0.0
    for r in refs:
        d = _header_duration(r)
        if d is None:
            kept.append(r)
            continue
        longest = max(longest, d)
        if d >= min_s:
            kept.append(r)
    if not kept:
        raise ConfigError(f"min_clip_s = {min_s:g} keeps none of the {len(refs)} clips of corpus "
                          f"{corpus or 'default'!r}; the longest is {longest:.1f} s")
    return kept


def _header_duration(c: ClipRef) -> float | None:
    """A clip's duration in s from its file's header; None if the header cannot be read."""
    import soundfile as sf

    try:
        return float(sf.info(str(c.path)).duration)
    except (OSError, RuntimeError):
        return None


def _shortest_clip(clips: list[ClipRef]) -> tuple[float, str] | None:
    """(duration in s, id) of the shortest clip, from the files' headers; None if none can be read (the clips'
    own errors then come as rows)."""
    out = None
    for c in clips:
        d = _header_duration(c)
        if d is None:
            continue
        if out is None or d < out[0]:
            out = (d, c.id)
    return out


def seed_chunks(seeds: int, tasks_per_seed: int, most: int = JOB_TASKS) -> list[list[int]]:
    """Seeds 0..seeds-1 in consecutive runs of about equal length, each run at most ``most`` tasks (at least one
    seed a run)."""
    n = max(1, -(-seeds * tasks_per_seed // most))
    n = min(n, seeds)
    bounds = np.linspace(0, seeds, n + 1).round().astype(int)
    return [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def file_hash(path: Path) -> str:
    """sha256 (first 16 hex digits) of a model file; 'missing' if it cannot be read."""
    try:
        st = Path(path).stat()
    except OSError:
        return "missing"
    return _hash_file(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _hash_file(path: str, mtime_ns: int, size: int) -> str:
    from lossbench.files import file_hash

    try:
        return file_hash(path)
    except OSError:
        return "missing"


def describe_plan(plan: Plan) -> dict[str, Any]:
    return {
        "clips": len(plan.clips),
        "codec_configs": len({j.codec_spec for j in plan.jobs}),
        "channels": len(plan.channels),
        "seeds": plan.spec.seeds,
        "jobs": len(plan.jobs),
        "tasks": plan.num_tasks,
        "skipped_pairs": plan.skipped_pairs,
    }
