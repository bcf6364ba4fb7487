"""The table the bundled trace library is generated from, and its generator (``lossbench traces build-library``).

It lives in ``netsim`` because it samples the loss models; the files it
writes are read by :mod:`lossbench.traces.library`, which needs no model.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lossbench.core import LossTrace
from lossbench.netsim.spec import make_loss_model
from lossbench.traces.formats import write_trace
from lossbench.traces.library import LIBRARY_DIR


@dataclass(frozen=True)
class TraceSet:
    """A family of traces from one model spec, ``count`` seeds of ``packets`` slots."""

    name: str
    spec: str
    count: int
    packets: int = 3000
    slot_s: float = 0.02
    description: str = ""


LIBRARY: tuple[TraceSet, ...] = (
    TraceSet("bernoulli-05", "bernoulli:p=0.05", 5, description="independent loss, 5 %"),
    TraceSet("bernoulli-10", "bernoulli:p=0.10", 5, description="independent loss, 10 %"),
    TraceSet("bernoulli-20", "bernoulli:p=0.20", 5, description="independent loss, 20 %"),
    TraceSet("bernoulli-30", "bernoulli:p=0.30", 5, description="independent loss, 30 %"),
    TraceSet("wlan", "markov3", 25, description="three-state WLAN Markov model (SoundSpring's setting), ~13.8 %"),
    TraceSet(
        "ge-10-b4", "gilbert:loss_rate=0.10,mean_burst=4", 5, description="Gilbert, 10 % loss in bursts of 4 on average"
    ),
    TraceSet(
        "ge-20-b8", "gilbert:loss_rate=0.20,mean_burst=8", 5, description="Gilbert, 20 % loss in bursts of 8 on average"
    ),
    TraceSet(
        "ge-soft-10",
        "gilbert-elliott:loss_rate=0.10,mean_burst=2,loss_good=0.01,loss_bad=0.7",
        5,
        description="Gilbert–Elliott with loss in both states, 10 %",
    ),
    TraceSet("lossgen-10", "lossgen:loss_rate=0.10", 10,
             description="Opus 1.5's LossGen (a generative model trained on real VoIP loss traces), 10 %"),
    TraceSet("lossgen-20", "lossgen:loss_rate=0.20", 10,
             description="Opus 1.5's LossGen (a generative model trained on real VoIP loss traces), 20 %"),
)


def trace_rng(seed: int, set_name: str, index: int) -> np.random.Generator:
    """The generator for trace ``index`` of set ``set_name`` under ``seed``."""
    return np.random.default_rng([int(seed), zlib.crc32(set_name.encode()), int(index)])


def generate_set(ts: TraceSet, seed: int = 0) -> list[LossTrace]:
    model = make_loss_model(ts.spec)
    out = []
    for i in range(ts.count):
        t = model.sample(ts.packets, trace_rng(seed, ts.name, i), ts.slot_s)
        meta = {"set": ts.name, "index": i, "spec": ts.spec, "seed": [int(seed), ts.name, i], **t.meta}
        if ts.description:
            meta["description"] = ts.description
        out.append(LossTrace(t.lost, t.slot_s, meta=meta))
    return out


def build_library(out_dir: Path = LIBRARY_DIR, seed: int = 0) -> list[Path]:
    """(Re)generate every set of :data:`LIBRARY` under ``out_dir``."""
    paths = []
    for ts in LIBRARY:
        for i, t in enumerate(generate_set(ts, seed)):
            paths.append(write_trace(t, out_dir / ts.name / f"{ts.name}_{i:02d}.txt", sidecar=True))
    return paths
