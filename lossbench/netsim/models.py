"""Packet-loss models.

Each model is an immutable description (a frozen dataclass) with

- ``sample(n, rng, slot_s)``: a vectorised :class:`~lossbench.core.LossTrace`
  of n slots, starting in the stationary distribution;
- ``process(rng)``: a per-packet state machine whose ``step(t_s)`` says
  whether the packet sent at ``t_s`` is lost (what the simulator uses);
- ``stats()``: closed-form stationary statistics where they exist.

Models: :class:`Bernoulli`, :class:`GilbertElliott` (and the Gilbert special
case), :class:`ThreeStateMarkov` (Milner & James; the WLAN setting of
SoundSpring's evaluation), :class:`Netem4State` (Linux netem ``loss state``),
:class:`TraceReplay` and :class:`Schedule` (piecewise over time).
"""

from __future__ import annotations

import abc
import bisect
import ctypes
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lossbench.core import LossTrace
from lossbench.errors import ConfigError
from lossbench.netsim.markov import ChainStats, chain_stats, emit, sample_states, stationary, validate_chain


class LossProcess(Protocol):
    """Per-packet loss decisions, in send-time order."""

    def step(self, t_s: float) -> bool:
        """True if the packet sent at time ``t_s`` is lost."""
        ...


def _prob(name: str, value: float, *, what: str, open_low: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= v <= 1.0) or math.isnan(v) or (open_low and v == 0.0):
        rng = "(0, 1]" if open_low else "[0, 1]"
        raise ConfigError(f"{what}: {name} must lie in {rng}, got {value!r}")
    return v


class LossModel(abc.ABC):
    """Base class of all loss models."""

    name: str = ""

    @abc.abstractmethod
    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        """A loss pattern of ``n`` slots of ``slot_s`` seconds."""

    @abc.abstractmethod
    def process(self, rng: np.random.Generator) -> LossProcess:
        """A fresh per-packet state machine driven by ``rng``."""

    def stats(self) -> ChainStats | None:
        """Closed-form stationary statistics, or None where none exist."""
        return None

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters as plain values (for spec files and result tables)."""

    def describe(self) -> str:
        ps = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params().items())
        return f"{self.name}({ps})"

    def _trace(self, lost: np.ndarray, slot_s: float) -> LossTrace:
        return LossTrace(lost, slot_s, meta={"model": self.name, **self.params()})


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# --------------------------------------------------------------------------- Markov family


class _MarkovProcess:
    __slots__ = ("_cum", "_e", "_rng", "_x", "_K")

    def __init__(self, P: np.ndarray, e: np.ndarray, rng: np.random.Generator) -> None:
        self._K = P.shape[0]
        self._cum = np.cumsum(P, axis=1).tolist()
        self._e = e.tolist()
        self._rng = rng
        self._x = int(rng.choice(self._K, p=stationary(P))) if self._K > 1 else 0

    def step(self, t_s: float) -> bool:
        rnd = self._rng.random
        x = self._x
        ex = self._e[x]
        lost = ex >= 1.0 or (ex > 0.0 and rnd() < ex)
        if self._K > 1:
            u = rnd()
            row = self._cum[x]
            nx = 0
            while nx < self._K - 1 and u >= row[nx]:
                nx += 1
            self._x = nx
        return lost


class MarkovLossModel(LossModel):
    """A loss model given by a finite Markov chain (transition matrix, per-state loss)."""

    @abc.abstractmethod
    def chain(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, e): K x K transition matrix and K per-state loss probabilities."""

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        n = _check_n(n)
        P, e = self.chain()
        states = sample_states(P, n, rng)
        return self._trace(emit(states, e, rng), slot_s)

    def process(self, rng: np.random.Generator) -> LossProcess:
        P, e = self.chain()
        return _MarkovProcess(P, e, rng)

    def stats(self) -> ChainStats:
        P, e = self.chain()
        return chain_stats(P, e)

    def stationary(self) -> np.ndarray:
        return stationary(self.chain()[0])


def _check_n(n: int) -> int:
    if int(n) != n or n < 0:
        raise ConfigError(f"number of packets must be a non-negative integer, got {n!r}")
    return int(n)


@dataclass(frozen=True)
class Bernoulli(MarkovLossModel):
    """Independent losses with probability ``p``."""

    p: float
    name = "bernoulli"

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", _prob("p", self.p, what="bernoulli"))

    def chain(self) -> tuple[np.ndarray, np.ndarray]:
        return np.ones((1, 1)), np.array([self.p])

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        n = _check_n(n)
        return self._trace(rng.random(n) < self.p, slot_s)

    def process(self, rng: np.random.Generator) -> LossProcess:
        return _BernoulliProcess(self.p, rng)

    def stats(self) -> ChainStats:
        p = self.p
        return ChainStats(
            loss_rate=p,
            mean_burst=1.0 / (1.0 - p) if p < 1 else float("inf"),
            mean_gap=1.0 / p if p > 0 else float("inf"),
            p_loss_given_loss=p if p > 0 else float("nan"),
        )

    def params(self) -> dict[str, Any]:
        return {"p": self.p}


class _BernoulliProcess:
    __slots__ = ("_p", "_rng")

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        self._p = p
        self._rng = rng

    def step(self, t_s: float) -> bool:
        return self._rng.random() < self._p


@dataclass(frozen=True)
class GilbertElliott(MarkovLossModel):
    """Two-state Gilbert–Elliott channel.

    States Good and Bad; ``p`` = P(Good -> Bad), ``r`` = P(Bad -> Good);
    a packet is lost with probability ``loss_good`` in Good (netem's 1-k) and
    ``loss_bad`` in Bad (netem's 1-h). The Gilbert model is the special case
    loss_good = 0, loss_bad = 1: mean burst 1/r, loss rate p / (p + r).
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0
    name = "gilbert-elliott"

    def __post_init__(self) -> None:
        w = "gilbert-elliott"
        object.__setattr__(self, "p", _prob("p", self.p, what=w))
        object.__setattr__(self, "r", _prob("r", self.r, what=w))
        object.__setattr__(self, "loss_good", _prob("loss_good", self.loss_good, what=w))
        object.__setattr__(self, "loss_bad", _prob("loss_bad", self.loss_bad, what=w))

    def chain(self) -> tuple[np.ndarray, np.ndarray]:
        P = np.array([[1 - self.p, self.p], [self.r, 1 - self.r]])
        return P, np.array([self.loss_good, self.loss_bad])

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "r": self.r, "loss_good": self.loss_good, "loss_bad": self.loss_bad}

    @classmethod
    def gilbert(cls, p: float, r: float) -> GilbertElliott:
        return cls(p, r, 0.0, 1.0)

    @classmethod
    def from_rate_burst(
        cls, loss_rate: float, mean_burst: float, loss_good: float = 0.0, loss_bad: float = 1.0
    ) -> GilbertElliott:
        """Solve (p, r) for a stationary loss rate and mean loss-burst length.

        Raises:
            ConfigError: when no (p, r) in [0, 1]^2 gives both values.
        """
        w = "gilbert-elliott"
        L = _prob("loss_rate", loss_rate, what=w)
        eg = _prob("loss_good", loss_good, what=w)
        eb = _prob("loss_bad", loss_bad, what=w)
        B = float(mean_burst)
        if not B >= 1.0:
            raise ConfigError(f"{w}: mean_burst must be >= 1 packet, got {mean_burst!r}")
        if L == 0.0:
            return cls(0.0, 1.0, eg, eb)
        if eg == 0.0 and eb == 1.0:
            r = 1.0 / B
            p = L * r / (1.0 - L) if L < 1 else 1.0
            if p > 1.0:
                raise ConfigError(
                    f"{w}: no Gilbert parameters give loss_rate={L:g} with mean_burst={B:g}: "
                    f"p = loss_rate/(1-loss_rate)/mean_burst = {p:.4g} > 1; "
                    f"use mean_burst >= {L / (1 - L):.4g}"
                )
            return cls(p, r, eg, eb)
        if not (min(eg, eb) < L < max(eg, eb)):
            raise ConfigError(
                f"{w}: loss_rate={L:g} must lie strictly between loss_good={eg:g} and loss_bad={eb:g}"
            )
        pib = (L - eg) / (eb - eg)  # stationary P(Bad)
        r_max = min(1.0, (1 - pib) / pib)

        def burst(r: float) -> float:
            return cls(r * pib / (1 - pib), r, eg, eb).stats().mean_burst

        lo, hi = 1e-9, r_max
        b_lo, b_hi = burst(lo), burst(hi)
        if not (min(b_lo, b_hi) <= B <= max(b_lo, b_hi)):
            raise ConfigError(
                f"{w}: with loss_rate={L:g}, loss_good={eg:g}, loss_bad={eb:g} the mean burst can only "
                f"range over [{min(b_lo, b_hi):.4g}, {max(b_lo, b_hi):.4g}] packets, got mean_burst={B:g}"
            )
        from scipy.optimize import brentq

        r = brentq(lambda x: burst(x) - B, lo, hi, xtol=1e-12)
        return cls(r * pib / (1 - pib), r, eg, eb)

    @classmethod
    def from_netem(
        cls,
        p_pct: float,
        r_pct: float | None = None,
        one_minus_h_pct: float | None = None,
        one_minus_k_pct: float | None = None,
    ) -> GilbertElliott:
        """From netem's ``loss gemodel p [r [1-h [1-k]]]`` (all in percent).

        netem's defaults: r = 100 - p, 1-h = 100 (always lose in Bad),
        1-k = 0 (never lose in Good).
        """
        p = p_pct / 100.0
        r = 1.0 - p if r_pct is None else r_pct / 100.0
        eb = 1.0 if one_minus_h_pct is None else one_minus_h_pct / 100.0
        eg = 0.0 if one_minus_k_pct is None else one_minus_k_pct / 100.0
        return cls(p, r, eg, eb)


#: The WLAN setting used by SoundSpring's authors for the Milner & James model.
WLAN_P11, WLAN_P21, WLAN_P22, WLAN_P33 = 0.9363, 0.3631, 0.4072, 0.5662


@dataclass(frozen=True)
class ThreeStateMarkov(MarkovLossModel):
    """Three-state Markov model of WLAN loss (Milner & James, Interspeech 2004).

    States 1 and 3 receive, state 2 loses. State 1 moves only to 2
    (P(1->2) = 1 - p11), state 3 only to 2 (P(3->2) = 1 - p33), state 2 to 1
    with p21, stays with p22, and moves to 3 with 1 - p21 - p22. The defaults
    are the WLAN setting of SoundSpring's evaluation: loss rate about 13.8 %,
    mean loss burst about 1.69 packets.
    """

    p11: float = WLAN_P11
    p21: float = WLAN_P21
    p22: float = WLAN_P22
    p33: float = WLAN_P33
    name = "markov3"

    def __post_init__(self) -> None:
        w = "markov3"
        for k in ("p11", "p21", "p22", "p33"):
            object.__setattr__(self, k, _prob(k, getattr(self, k), what=w))
        if self.p21 + self.p22 > 1.0 + 1e-12:
            raise ConfigError(f"{w}: p21 + p22 must be <= 1 (the rest goes to state 3), got {self.p21 + self.p22:g}")

    @property
    def p23(self) -> float:
        return max(0.0, 1.0 - self.p21 - self.p22)

    def chain(self) -> tuple[np.ndarray, np.ndarray]:
        P = np.array(
            [
                [self.p11, 1 - self.p11, 0.0],
                [self.p21, self.p22, self.p23],
                [0.0, 1 - self.p33, self.p33],
            ]
        )
        return validate_chain(P, np.array([0.0, 1.0, 0.0]), "markov3")

    def params(self) -> dict[str, Any]:
        return {"p11": self.p11, "p21": self.p21, "p22": self.p22, "p33": self.p33}

    @classmethod
    def from_rate_burst(
        cls,
        loss_rate: float,
        mean_burst: float,
        p33: float = WLAN_P33,
        exit_to_1: float = WLAN_P21 / (1 - WLAN_P22),
    ) -> ThreeStateMarkov:
        """Solve for a parameter set with the given loss rate and mean burst.

        The loss burst is the sojourn in state 2, so p22 = 1 - 1/mean_burst.
        ``exit_to_1`` (the share of exits from state 2 that go to state 1)
        and ``p33`` keep the shape of the WLAN setting unless given; p11 is
        then the unique value giving ``loss_rate``.

        Raises:
            ConfigError: when no valid p11 exists for these values.
        """
        w = "markov3"
        L = _prob("loss_rate", loss_rate, what=w, open_low=True)
        a = _prob("exit_to_1", exit_to_1, what=w)
        p33 = _prob("p33", p33, what=w)
        B = float(mean_burst)
        if not B >= 1.0:
            raise ConfigError(f"{w}: mean_burst must be >= 1 packet, got {mean_burst!r}")
        if L >= 1.0:
            raise ConfigError(f"{w}: loss_rate must be < 1, got {L:g}")
        p22 = 1.0 - 1.0 / B
        out = 1.0 - p22
        p21, p23 = out * a, out * (1 - a)
        # pi2 = 1 / (1 + p21/(1-p11) + p23/(1-p33))
        ratio3 = p23 / (1 - p33) if p33 < 1 else (float("inf") if p23 > 0 else 0.0)
        R = 1.0 / L - 1.0 - ratio3
        if p21 <= 0:
            raise ConfigError(f"{w}: exit_to_1 must be > 0 to solve for a loss rate, got {a:g}")
        if R <= 0 or p21 / R > 1.0:
            # p11 -> 1 drives the loss rate to 0; p11 = 0 gives the largest one
            hi = 1.0 / (1.0 + p21 + ratio3)
            raise ConfigError(
                f"{w}: no three-state parameters give loss_rate={L:g} with mean_burst={B:g} "
                f"(p33={p33:g}, exit_to_1={a:g}): reachable loss rates are (0, {hi:.4g}]; "
                f"change mean_burst, p33 or exit_to_1"
            )
        p11 = 1.0 - p21 / R
        return cls(p11=p11, p21=p21, p22=p22, p33=p33)


@dataclass(frozen=True)
class Netem4State(MarkovLossModel):
    """Linux netem's 4-state GI model (``loss state p13 p31 p32 p23 p14``).

    States: 1 = received in a gap, 2 = received in a burst, 3 = lost in a
    burst, 4 = isolated loss. Probabilities are fractions in [0, 1]; use
    :meth:`from_netem` for netem's percent values and defaults.
    """

    p13: float
    p31: float
    p32: float = 0.0
    p23: float = 1.0
    p14: float = 0.0
    name = "netem-state"

    def __post_init__(self) -> None:
        w = "netem-state"
        for k in ("p13", "p31", "p32", "p23", "p14"):
            object.__setattr__(self, k, _prob(k, getattr(self, k), what=w))
        if self.p13 + self.p14 > 1 + 1e-12:
            raise ConfigError(f"{w}: p13 + p14 must be <= 1, got {self.p13 + self.p14:g}")
        if self.p31 + self.p32 > 1 + 1e-12:
            raise ConfigError(f"{w}: p31 + p32 must be <= 1, got {self.p31 + self.p32:g}")

    def chain(self) -> tuple[np.ndarray, np.ndarray]:
        P = np.array(
            [
                [1 - self.p13 - self.p14, 0.0, self.p13, self.p14],
                [0.0, 1 - self.p23, self.p23, 0.0],
                [self.p31, self.p32, 1 - self.p31 - self.p32, 0.0],
                [1.0, 0.0, 0.0, 0.0],
            ]
        )
        return validate_chain(P, np.array([0.0, 0.0, 1.0, 1.0]), "netem-state")

    def params(self) -> dict[str, Any]:
        return {"p13": self.p13, "p31": self.p31, "p32": self.p32, "p23": self.p23, "p14": self.p14}

    @classmethod
    def from_netem(
        cls,
        p13_pct: float,
        p31_pct: float | None = None,
        p32_pct: float | None = None,
        p23_pct: float | None = None,
        p14_pct: float | None = None,
    ) -> Netem4State:
        """From netem's percent values, with netem's defaults for omitted ones.

        netem (iproute2) sets p31 = 100 - p13, p32 = 0, p23 = 100, p14 = 0.
        """
        p13 = p13_pct / 100.0
        return cls(
            p13=p13,
            p31=(1.0 - p13) if p31_pct is None else p31_pct / 100.0,
            p32=0.0 if p32_pct is None else p32_pct / 100.0,
            p23=1.0 if p23_pct is None else p23_pct / 100.0,
            p14=0.0 if p14_pct is None else p14_pct / 100.0,
        )


# --------------------------------------------------------------------------- trace replay


@dataclass(frozen=True)
class TraceReplay(LossModel):
    """Replay a recorded :class:`LossTrace`, from ``offset`` slots in.

    With ``cycle`` the trace wraps around; without it, asking for more slots
    than remain is an error.
    """

    trace: LossTrace
    offset: int = 0
    cycle: bool = True
    name = "trace"

    def __post_init__(self) -> None:
        if len(self.trace) == 0:
            raise ConfigError("trace replay: the trace is empty")
        if int(self.offset) != self.offset or self.offset < 0:
            raise ConfigError(f"trace replay: offset must be a non-negative integer, got {self.offset!r}")
        if not self.cycle and self.offset >= len(self.trace):
            raise ConfigError(
                f"trace replay: offset {self.offset} is past the end of a {len(self.trace)}-slot trace"
            )

    def _indices(self, idx: np.ndarray) -> np.ndarray:
        idx = idx + int(self.offset)
        n = len(self.trace)
        if self.cycle:
            return idx % n
        if idx.size and idx.max() >= n:
            raise ConfigError(
                f"trace replay: slot {int(idx.max())} requested but the trace has only {n} slots "
                f"(offset {self.offset}); use cycle=true or a longer trace"
            )
        return idx

    def sample(self, n: int, rng: np.random.Generator, slot_s: float | None = None) -> LossTrace:
        n = _check_n(n)
        lost = self.trace.lost[self._indices(np.arange(n))]
        return self._trace(lost, self.trace.slot_s if slot_s is None else slot_s)

    def process(self, rng: np.random.Generator) -> LossProcess:
        return _TraceProcess(self)

    def stats(self) -> ChainStats:
        from lossbench.traces.stats import trace_stats

        s = trace_stats(self.trace, cyclic=True)
        return ChainStats(s.loss_rate, s.mean_burst, s.mean_gap, s.p_loss_given_loss)

    def params(self) -> dict[str, Any]:
        src = self.trace.meta.get("source", "<in-memory>")
        return {"source": str(src), "offset": int(self.offset), "cycle": bool(self.cycle)}


class _TraceProcess:
    __slots__ = ("_lost", "_slot", "_model")

    def __init__(self, model: TraceReplay) -> None:
        self._model = model
        self._lost = model.trace.lost
        self._slot = model.trace.slot_s

    def step(self, t_s: float) -> bool:
        m = self._model
        i = int(math.floor(t_s / self._slot + 1e-9)) + int(m.offset)
        n = len(self._lost)
        if m.cycle:
            i %= n
        elif i >= n:
            raise ConfigError(
                f"trace replay: slot {i} requested but the trace has only {n} slots; "
                "use cycle=true or a longer trace"
            )
        return bool(self._lost[i])


# --------------------------------------------------------------------------- time-varying


@dataclass(frozen=True)
class Schedule(LossModel):
    """A piecewise schedule: segment i uses ``models[i]`` from ``starts_s[i]`` on.

    Each segment starts its model afresh in its stationary distribution.
    Example: 0 % for 5 s, 30 % for 5 s, then 0 % again::

        Schedule((0.0, 5.0, 10.0), (Bernoulli(0), Bernoulli(0.3), Bernoulli(0)))
    """

    starts_s: tuple[float, ...]
    models: tuple[LossModel, ...]
    name = "schedule"

    def __post_init__(self) -> None:
        starts = tuple(float(s) for s in self.starts_s)
        object.__setattr__(self, "starts_s", starts)
        object.__setattr__(self, "models", tuple(self.models))
        if not starts or len(starts) != len(self.models):
            raise ConfigError("schedule: needs one start time per model, and at least one segment")
        if starts[0] != 0.0:
            raise ConfigError(f"schedule: the first segment must start at 0 s, got {starts[0]:g}")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ConfigError(f"schedule: start times must increase strictly, got {list(starts)}")
        for m in self.models:
            if isinstance(m, Schedule):
                raise ConfigError("schedule: segments cannot themselves be schedules")

    def segment_at(self, t_s: float) -> int:
        return max(0, bisect.bisect_right(self.starts_s, t_s + 1e-12) - 1)

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        n = _check_n(n)
        lost = np.zeros(n, dtype=bool)
        bounds = [int(math.ceil(s / slot_s - 1e-9)) for s in self.starts_s] + [n]
        for i, m in enumerate(self.models):
            a, b = min(bounds[i], n), min(max(bounds[i + 1], bounds[i]), n)
            if b > a:
                lost[a:b] = m.sample(b - a, rng, slot_s).lost
        return self._trace(lost, slot_s)

    def process(self, rng: np.random.Generator) -> LossProcess:
        return _ScheduleProcess(self, rng)

    def params(self) -> dict[str, Any]:
        return {"segments": "; ".join(f"{s:g}={m.describe()}" for s, m in zip(self.starts_s, self.models))}

    def loss_rate_at(self, t_s: float) -> float:
        """Stationary loss rate of the segment active at ``t_s`` (NaN if unknown)."""
        st = self.models[self.segment_at(t_s)].stats()
        return st.loss_rate if st is not None else float("nan")


@dataclass
class _ScheduleProcess:
    model: Schedule
    rng: np.random.Generator
    _procs: dict[int, LossProcess] = field(default_factory=dict)

    def step(self, t_s: float) -> bool:
        i = self.model.segment_at(t_s)
        p = self._procs.get(i)
        if p is None:
            p = self._procs[i] = self.model.models[i].process(self.rng)
        return p.step(t_s)


# --------------------------------------------------------------------------- LossGen


@dataclass(frozen=True)
class LossGen(LossModel):
    """Opus 1.5's LossGen: a small GRU network trained on real VoIP loss traces.

    ``loss_rate`` is the rate asked of the network (its conditioning input),
    not a guarantee: the delivered rate differs a little, and has no closed
    form (see ``docs/opus.md`` for the measured mapping). Each packet's
    loss is drawn from the network's probability with a uniform number taken
    from ``rng``, never from the C library's global ``rand()``, so a
    sequence is reproducible for a seed and safe in threads. As upstream,
    the first 100 steps of a fresh state warm the GRUs up and are dropped.
    Runs the C model of the project's Opus 1.5.2 build (``make setup``).
    """

    loss_rate: float
    name = "lossgen"

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_rate", _prob("loss_rate", self.loss_rate, what="lossgen"))

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        n = _check_n(n)
        proc = _LossGenProcess(self.loss_rate, rng)
        return self._trace(proc.draw(n), slot_s)

    def process(self, rng: np.random.Generator) -> LossProcess:
        return _LossGenProcess(self.loss_rate, rng)

    def params(self) -> dict[str, Any]:
        return {"loss_rate": self.loss_rate}


class _LossGenProcess:
    """A LossGen state; ``step`` serves packets from blocks drawn ahead (same draws as ``draw``)."""

    __slots__ = ("_lib", "_state", "_p", "_rng", "_warm", "_buf", "_pos")

    def __init__(self, loss_rate: float, rng: np.random.Generator) -> None:
        from lossbench.native import lossgen_lib

        self._lib = lossgen_lib()
        self._state = ctypes.create_string_buffer(self._lib.lb_lossgen_state_size())
        self._lib.lb_lossgen_init(self._state)
        self._p = float(loss_rate)
        self._rng = rng
        self._warm = False
        self._buf = np.zeros(0, dtype=bool)
        self._pos = 0

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` losses of this state (the first call also draws the 100 warm-up steps)."""
        extra = 0 if self._warm else 100
        u = self._rng.random(n + extra, dtype=np.float32)
        out = np.zeros(n, dtype=np.uint8)
        used = self._lib.lb_lossgen_sample(self._state, ctypes.c_float(self._p), n, u.ctypes.data, out.ctypes.data)
        if used != n + extra:
            raise RuntimeError(f"lossgen shim consumed {used} draws, expected {n + extra}")
        self._warm = True
        return out.astype(bool)

    def step(self, t_s: float) -> bool:
        if self._pos >= self._buf.size:
            self._buf = self.draw(256)
            self._pos = 0
        v = bool(self._buf[self._pos])
        self._pos += 1
        return v
