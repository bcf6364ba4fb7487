"""Loss models by name: the registry, ``NAME:k=v,...`` specs and netem lines.

A loss-model spec is a string a user can type::

    bernoulli:p=0.1
    gilbert:loss_rate=0.1,mean_burst=3
    gilbert-elliott:p=0.05,r=0.4,loss_good=0.01,loss_bad=0.8
    markov3                         (the WLAN setting)
    markov3:loss_rate=0.2,mean_burst=2.5
    lossgen:loss_rate=0.1              (Opus 1.5's learned model of real VoIP loss)
    netem:loss state 1% 30% 10% 40% 0.5%
    trace:file=traces/x.txt,offset=100
    schedule:0=bernoulli(p=0);5=bernoulli(p=0.3);10=bernoulli(p=0)

``name(k=v,...)`` is accepted as well as ``name:k=v,...``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError
from lossbench.netsim.models import (
    Bernoulli,
    GilbertElliott,
    LossGen,
    LossModel,
    Netem4State,
    Schedule,
    ThreeStateMarkov,
    TraceReplay,
)
from lossbench.netsim.network import AdaptivePlayout, FixedPlayout, Jitter, OnOffTraffic, PoissonTraffic
from lossbench.registry import Registry
from lossbench.specs import _number, build, call_factory, convert_param, parse_value, split_spec  # noqa: F401  (re-exported)

LossModelFactory = Callable[..., LossModel]

#: Registry of loss-model factories; plug-ins use the ``lossbench.channels`` group.
LOSS_MODELS: Registry[LossModelFactory] = Registry("loss model", "lossbench.channels")


@LOSS_MODELS.register("bernoulli", "random", "iid")
def make_bernoulli(p: float | None = None, loss_rate: float | None = None) -> LossModel:
    """Independent losses. Parameters: p (or loss_rate)."""
    if (p is None) == (loss_rate is None):
        raise ConfigError("bernoulli: give exactly one of p or loss_rate")
    return Bernoulli(p if p is not None else loss_rate)  # type: ignore[arg-type]  # exactly one is given (checked above)


@LOSS_MODELS.register("gilbert")
def make_gilbert(
    p: float | None = None, r: float | None = None, loss_rate: float | None = None, mean_burst: float | None = None
) -> LossModel:
    """Gilbert model (loss only in Bad). Parameters: p, r | loss_rate, mean_burst."""
    if p is not None and r is not None and loss_rate is None and mean_burst is None:
        return GilbertElliott.gilbert(p, r)
    if loss_rate is not None and p is None and r is None:
        return GilbertElliott.from_rate_burst(loss_rate, 2.0 if mean_burst is None else mean_burst)
    raise ConfigError("gilbert: give p and r, or loss_rate (and mean_burst, default 2)")


@LOSS_MODELS.register("gilbert-elliott", "ge")
def make_gilbert_elliott(
    p: float | None = None,
    r: float | None = None,
    loss_good: float = 0.0,
    loss_bad: float = 1.0,
    loss_rate: float | None = None,
    mean_burst: float | None = None,
) -> LossModel:
    """Gilbert–Elliott. Parameters: p, r | loss_rate, mean_burst; plus loss_good, loss_bad."""
    if p is not None and r is not None and loss_rate is None and mean_burst is None:
        return GilbertElliott(p, r, loss_good, loss_bad)
    if loss_rate is not None and p is None and r is None:
        return GilbertElliott.from_rate_burst(loss_rate, 2.0 if mean_burst is None else mean_burst, loss_good, loss_bad)
    raise ConfigError("gilbert-elliott: give p and r, or loss_rate (and mean_burst, default 2)")


@LOSS_MODELS.register("markov3", "wlan", "milner-james")
def make_markov3(
    p11: float | None = None,
    p21: float | None = None,
    p22: float | None = None,
    p33: float | None = None,
    loss_rate: float | None = None,
    mean_burst: float | None = None,
    exit_to_1: float | None = None,
) -> LossModel:
    """Three-state WLAN model. Parameters: p11, p21, p22, p33 (default: WLAN) | loss_rate, mean_burst."""
    direct = {k: v for k, v in dict(p11=p11, p21=p21, p22=p22, p33=p33).items() if v is not None}
    if loss_rate is None and mean_burst is None and exit_to_1 is None:
        return ThreeStateMarkov(**direct)
    if loss_rate is None:
        raise ConfigError("markov3: mean_burst/exit_to_1 need loss_rate as well")
    if p11 is not None or p21 is not None or p22 is not None:
        raise ConfigError("markov3: give either p11, p21, p22, p33 or loss_rate, mean_burst (with optional p33, exit_to_1)")
    kw: dict[str, float] = {}
    if p33 is not None:
        kw["p33"] = p33
    if exit_to_1 is not None:
        kw["exit_to_1"] = exit_to_1
    default_burst = 1.0 / (1.0 - ThreeStateMarkov().p22)
    return ThreeStateMarkov.from_rate_burst(loss_rate, default_burst if mean_burst is None else mean_burst, **kw)


@LOSS_MODELS.register("lossgen")
def make_lossgen(loss_rate: float = 0.1) -> LossModel:
    """Opus 1.5's LossGen, a GRU trained on real VoIP traces. Parameter: loss_rate (asked, not delivered)."""
    return LossGen(loss_rate)


@LOSS_MODELS.register("netem-state", "netem4")
def make_netem_state(
    p13: float, p31: float | None = None, p32: float | None = None, p23: float | None = None, p14: float | None = None
) -> LossModel:
    """netem 4-state model, values in percent as on the tc line; netem's defaults."""
    return Netem4State.from_netem(p13, p31, p32, p23, p14)


@LOSS_MODELS.register("netem-gemodel")
def make_netem_gemodel(
    p: float, r: float | None = None, one_minus_h: float | None = None, one_minus_k: float | None = None
) -> LossModel:
    """netem Gilbert–Elliott, values in percent as on the tc line; netem's defaults."""
    return GilbertElliott.from_netem(p, r, one_minus_h, one_minus_k)


@LOSS_MODELS.register("netem")
def make_netem(line: str) -> LossModel:
    """A netem ``loss ...`` clause pasted from a tc command line."""
    return parse_netem(line)


@LOSS_MODELS.register("trace", "replay")
def make_trace(file: str, offset: int = 0, cycle: bool = True) -> LossModel:
    """Replay a trace file (any supported format). Parameters: file, offset, cycle."""
    from lossbench.traces.formats import read_trace

    return TraceReplay(read_trace(Path(file)), offset=int(offset), cycle=bool(cycle))


@LOSS_MODELS.register("nr", "5g-nr")
def make_nr_link(**params: Any) -> LossModel:
    """A 5G NR link on Sionna (fading, link adaptation, BLER, HARQ): snr_db, speed_kmh, profile, la, harq, ...;
    preset=glaris."""
    from lossbench.extras import check_modules
    from lossbench.netsim.nr import make_nr

    check_modules(("sionna", "h5py", "torch"), "the nr: channel (Sionna)")
    return make_nr(**params)


def _nr_signature() -> None:
    import inspect

    from lossbench.netsim.nr import make_nr

    make_nr_link.__signature__ = inspect.signature(make_nr)  # type: ignore[attr-defined]  # the spec checker reads it
    make_nr_link.__annotations__ = dict(make_nr.__annotations__)


_nr_signature()


@LOSS_MODELS.register("schedule", "time-varying")
def make_schedule(segments: str) -> LossModel:
    """Piecewise schedule: ``START_S=MODEL(k=v,...);START_S=...``."""
    starts: list[float] = []
    models: list[LossModel] = []
    for part in [p.strip() for p in segments.split(";") if p.strip()]:
        m = re.fullmatch(r"([0-9.eE+-]+)\s*s?\s*=\s*(.+)", part)
        if not m:
            raise ConfigError(f"schedule: segment {part!r} is not of the form START_S=MODEL(k=v,...)")
        starts.append(_number(m.group(1), "schedule start"))
        models.append(make_loss_model(m.group(2)))
    return Schedule(tuple(starts), tuple(models))


def rate_models() -> list[str]:
    """Loss models (registered names) that build from ``loss_rate`` alone: the ones a ``--loss`` sweep can drive.

    Found by asking each factory, so a model registered later (or by a plug-in) is included without a list.
    """
    out = []
    for name in LOSS_MODELS.names():
        try:
            LOSS_MODELS.get(name)(loss_rate=0.1)
        except (ConfigError, TypeError):
            continue
        out.append(name)
    return out


def make_loss_model(spec: str | Mapping[str, Any] | LossModel) -> LossModel:
    """Build a loss model from a spec string, a ``{"model": name, ...}`` mapping, or a model."""
    if isinstance(spec, LossModel):
        return spec
    return build(LOSS_MODELS, spec, "model")


# --------------------------------------------------------------------------- netem


def _pct(tok: str, what: str) -> float:
    t = tok.strip()
    if t.endswith("%"):
        t = t[:-1]
    try:
        v = float(t)
    except ValueError:
        raise ConfigError(f"netem: {what} must be a percentage like '1.5%', got {tok!r}") from None
    if not 0.0 <= v <= 100.0:
        raise ConfigError(f"netem: {what} must lie in [0%, 100%], got {tok!r}")
    return v


def _is_number(tok: str) -> bool:
    return bool(re.fullmatch(r"[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?%?", tok.strip(), flags=re.I))


def parse_netem(line: str) -> LossModel:
    """Parse the ``loss`` clause of a ``tc qdisc ... netem`` line.

    Accepts ``loss state p13 [p31 [p32 [p23 [p14]]]]``, ``loss gemodel p [r [1-h [1-k]]]``,
    ``loss random P`` and ``loss P``, with the surrounding tc words allowed.
    Values are percentages, as netem reads them.
    """
    toks = line.replace(",", " ").split()
    try:
        i = next(k for k, t in enumerate(toks) if t.lower() in ("loss", "drop"))
        toks = toks[i + 1 :]
    except StopIteration:
        pass  # the clause without the word "loss"
    if not toks:
        raise ConfigError(f"netem: no loss model in {line!r}; expected 'loss state ...' or 'loss gemodel ...'")
    kind = toks[0].lower()
    nums: list[str] = []
    rest = toks[1:] if not _is_number(toks[0]) else toks
    for t in rest:
        if not _is_number(t):
            break
        nums.append(t)
    if kind == "state":
        names = ["p13", "p31", "p32", "p23", "p14"]
        if not 1 <= len(nums) <= 5:
            raise ConfigError(f"netem: 'loss state' takes 1 to 5 percentages (p13 p31 p32 p23 p14), got {nums}")
        vals = [_pct(t, n) for t, n in zip(nums, names)]
        return Netem4State.from_netem(*vals)
    if kind == "gemodel":
        names = ["p", "r", "1-h", "1-k"]
        if not 1 <= len(nums) <= 4:
            raise ConfigError(f"netem: 'loss gemodel' takes 1 to 4 percentages (p r 1-h 1-k), got {nums}")
        vals = [_pct(t, n) for t, n in zip(nums, names)]
        return GilbertElliott.from_netem(*vals)
    if kind == "random" or _is_number(toks[0]):
        if len(nums) > 1:
            raise ConfigError(
                "netem: loss correlation ('loss random P CORR') is not modelled (netem's own "
                "correlation is known not to produce the asked-for statistics); use 'loss gemodel'"
            )
        if not nums:
            raise ConfigError(f"netem: 'loss random' needs a percentage, got {line!r}")
        return Bernoulli(_pct(nums[0], "loss") / 100.0)
    raise ConfigError(f"netem: unknown loss model {toks[0]!r}; valid: 'state', 'gemodel', 'random'")


# --------------------------------------------------------------------------- network options typed by users
# (delay, jitter, bottleneck rate, cross traffic, playout buffer): strings -> the objects of netsim.network


def _num(text: str, what: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{what} must be finite, got {text!r}")
    return v


def parse_seconds(text: str | float) -> float:
    """Parse ``20ms``, ``0.02s``, ``150us`` or a plain number of seconds."""
    if isinstance(text, bool):
        raise ConfigError(f"{text!r} is not a duration (examples: 20ms, 0.02s, 150us)")
    if isinstance(text, (int, float)):
        return float(text)
    t = text.strip().lower()
    for suffix, mult in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], mult
            break
    else:
        scale = 1.0
    try:
        v = float(t) * scale
    except ValueError:
        raise ConfigError(f"{text!r} is not a duration (examples: 20ms, 0.02s, 150us)") from None
    if not math.isfinite(v):
        raise ConfigError(f"{text!r} is not a finite duration (examples: 20ms, 0.02s, 150us)")
    return v


def parse_jitter(spec: str | None) -> Jitter:
    """``normal:10ms``, ``exponential:0.005``, ``pareto:8ms:2.2``, ``lognormal:10ms:0.8``, ``ar1:10ms:0.9``,
    ``spikes:300ms:0.2`` (300 ms spikes, 0.2 per second), ``periodic:200ms:5s``, ``none``."""
    if not spec or spec.strip().lower() == "none":
        return Jitter()
    parts = spec.strip().split(":")
    kind = parts[0].lower()
    if kind not in Jitter.KINDS:
        raise ConfigError(f"unknown jitter kind {kind!r}; valid kinds: {', '.join(Jitter.KINDS)}")
    two = kind in Jitter.SHAPES
    if len(parts) > (3 if two else 2):
        raise ConfigError(f"jitter {spec!r}: too many ':' fields; examples: normal:10ms, pareto:8ms:2.2, "
                          f"ar1:10ms:0.9, spikes:300ms:0.2")
    scale = parse_seconds(parts[1]) if len(parts) > 1 else 0.0
    if two:
        if len(parts) > 2:
            what = f"{kind} jitter {Jitter.SHAPES[kind][1].split(' ')[0]}"
            shape = parse_seconds(parts[2]) if kind == "periodic" else _num(parts[2], what)
        else:
            shape = Jitter.SHAPES[kind][0]
        return Jitter(kind, scale, shape)
    return Jitter(kind, scale)


def parse_rate(text: str) -> float:
    """``1mbit``, ``500kbit``, ``64kbps`` (bytes!), ``2e6`` -> bit/s."""
    t = text.strip().lower()
    m = re.fullmatch(r"([0-9.eE+-]+)\s*([a-z]*)", t)
    units = {"": 1, "bit": 1, "bps": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "k": 1e3, "m": 1e6, "g": 1e9,
             "kbps": 8e3, "mbps": 8e6}
    bad = ConfigError(f"{text!r} is not a rate; examples: 1mbit, 500kbit, 2e6 (bit/s); valid units: "
                      f"{', '.join(u for u in units if u)}")
    if not m or m.group(2) not in units:
        raise bad
    try:
        v = float(m.group(1)) * units[m.group(2)]
    except ValueError:
        raise bad from None
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{text!r}: a rate must be a finite number > 0")
    return v


def parse_cross(spec: str):

    name, p = split_spec(spec)
    keys = {"poisson": ("rate", "size"), "onoff": ("on", "off", "rate", "size"), "on-off": ("on", "off", "rate", "size")}
    allowed = keys.get(name.lower())
    if allowed is not None:
        unknown = [k for k in p if k not in allowed]
        if unknown:
            raise ConfigError(f"{name} cross traffic: unknown parameter {unknown[0]!r}; valid: {', '.join(allowed)}")
        what = f"{name} cross traffic"
        num = {k: convert_param(v, float, k, what) for k, v in p.items() if k != "size"}
        size = convert_param(p.get("size", 1200), int, "size", what)
    if name.lower() == "poisson":
        return PoissonTraffic(rate_pps=num.get("rate", 100.0), size_bytes=size)
    if name.lower() in ("onoff", "on-off"):
        return OnOffTraffic(on_mean_s=num.get("on", 0.5), off_mean_s=num.get("off", 0.5),
                            rate_pps=num.get("rate", 200.0), size_bytes=size)
    raise ConfigError(f"unknown cross-traffic source {name!r}; valid: 'poisson:rate=PPS,size=BYTES', "
                      f"'onoff:on=S,off=S,rate=PPS,size=BYTES'")


def parse_playout(spec: str | None):

    if not spec or spec.strip().lower() == "none":
        return None
    head, _, rest = spec.strip().partition(":")
    if head.lower() == "fixed":
        return FixedPlayout(parse_seconds(rest) if rest else 0.06)
    if head.lower() == "adaptive":
        _, p = split_spec(spec)
        kw = {}
        for k, v in p.items():
            if k not in ("alpha", "safety", "adapt_every_s", "initial_delay_s", "min_delay_s"):
                raise ConfigError(f"adaptive playout: unknown parameter {k!r}; valid: alpha, safety, adapt_every_s, "
                                  f"initial_delay_s, min_delay_s")
            kw[k] = convert_param(v, float, k, "adaptive playout")
        return AdaptivePlayout(**kw)
    if head.lower() in ("tsm", "speex"):
        from lossbench.playout.speex import SpeexPlayout
        from lossbench.playout.tsm import TsmPlayout

        cls = TsmPlayout if head.lower() == "tsm" else SpeexPlayout
        ints = {"timescale_gap", "max_late_rate", "late_cost"}
        _, p = split_spec(spec)
        kw = {}
        for k, v in p.items():
            if k not in cls.PARAMS:
                raise ConfigError(f"{head.lower()} playout: unknown parameter {k!r}; valid: {', '.join(cls.PARAMS)}")
            kw[k] = convert_param(v, int if k in ints else float, k, f"{head.lower()} playout")
        return cls(**kw)
    raise ConfigError(f"unknown playout buffer {spec!r}; valid: 'none', 'fixed:60ms', 'adaptive[:k=v,...]', "
                      "'tsm[:k=v,...]', 'speex[:k=v,...]'")
